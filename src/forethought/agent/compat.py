"""Does a world model fit an environment? One check for every command that runs a model on an env.

`check_model_env(model, env_id, env, model_dir=...)` compares what the model was trained on with the
env it is about to be run on:

* the env id (``model.config.env_id``, stored by ``forethought train``; models saved before it
  was stored have ``None`` and skip this check),
* the observation shape, after the layout transform the data pipeline applies (pixels are
  ``(H, W, C)`` in the env and ``(C, H, W)`` in the model; state vectors ``(S,)`` in both),
* the action dimension: a model action is ``frameskip`` concatenated env actions.

A mismatch raises :class:`ModelEnvMismatch` (a ``ValueError``: the CLI exits 2) naming the model
folder, both values and the fix. ``force=True`` turns an env-id mismatch into a returned warning
(a renamed or re-registered env with the same spaces can be fine); a shape or action-dimension
mismatch is refused even then, because the model cannot read the observations or write the actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forethought.models.protocols import LatentWorldModel


class ModelEnvMismatch(ValueError):
    """The model was trained on another environment than the one it is given."""


def env_obs_shape_for_model(env_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The model's ``obs_shape`` for an env observation space shape: ``(H, W, C) -> (C, H, W)``; ``(S,)`` as is."""
    shape = tuple(int(s) for s in env_shape)
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _bare_id(env_id: str) -> str:
    """``"my_pkg.envs:Dot-v0"`` -> ``"Dot-v0"``: the module prefix only says what to import."""
    return env_id.rsplit(":", 1)[-1]


def check_model_env(model: LatentWorldModel, env_id: str, env: Any, *, model_dir: str | Path,
                    force: bool = False) -> list[str]:
    """Refuse to run ``model`` on ``env`` (made from ``env_id``) when it was trained on another env.

    Returns the warnings to report: ``[]`` when everything matches, one sentence for an env-id
    mismatch overridden with ``force``. Raises :class:`ModelEnvMismatch` otherwise.
    """
    cfg = model.config
    norm = getattr(model, "normalization", None)
    if isinstance(norm, dict) and "action" in norm and norm["action"] is None:  # latent actions (stage 1)
        raise ModelEnvMismatch(f"{model_dir}: the model takes latent actions (it was pretrained without actions, "
                               "`forethought pretrain`), not the env's; train stage 2 on action-labelled data first: "
                               f"forethought train --init {Path(model_dir).parent} --data LABELLED --out RUN")
    problems: list[str] = []
    trained_on = getattr(cfg, "env_id", None)
    other_id = trained_on is not None and _bare_id(trained_on) != _bare_id(env_id)
    if other_id:
        problems.append(f"it was trained on {trained_on}")
    env_shape = getattr(getattr(env, "observation_space", None), "shape", None)
    shape_differs = env_shape is not None and tuple(cfg.obs_shape) != env_obs_shape_for_model(env_shape)
    if shape_differs:
        layout = f", {env_obs_shape_for_model(env_shape)} in the model's (C, H, W) layout" if len(env_shape) == 3 else ""
        problems.append(f"it reads observations of shape {tuple(cfg.obs_shape)}, the env gives {tuple(env_shape)}{layout}")
    action_shape = getattr(getattr(env, "action_space", None), "shape", None)
    action_differs = False
    if action_shape is not None and len(action_shape) == 1:
        env_dim, k = int(action_shape[0]), getattr(cfg, "frameskip", None)
        if k is not None and cfg.action_dim != k * env_dim:
            action_differs = True
            problems.append(f"its {cfg.action_dim}-d model actions are frameskip {k} x {cfg.action_dim // k}-d env "
                            f"actions, the env's actions are {env_dim}-d")
        elif k is None and cfg.action_dim % env_dim:
            action_differs = True
            problems.append(f"its {cfg.action_dim}-d model actions are not a whole number of the env's "
                            f"{env_dim}-d actions")
    if not problems:
        return []
    what = f"{model_dir}: the model does not fit the env {env_id}: {'; '.join(problems)}."
    if shape_differs or action_differs:
        on = f" ({trained_on})" if trained_on is not None else ""
        raise ModelEnvMismatch(
            f"{what} Run it on the env and env kwargs it was trained on{on}, as recorded in its dataset's meta.json "
            "(or drop --env / --env-kwargs), or train a model on this env. --force cannot override this: the model "
            "could not read the observations or write the actions.")
    if not force:
        raise ModelEnvMismatch(f"{what} Run it on {trained_on} (drop --env, or pass --env {trained_on}), or pass "
                               "--force to run it anyway (the warning goes into the report).")
    return [f"--force: {model_dir} was trained on {trained_on} but runs on {env_id} here; the numbers are for a "
            "model on an env it was not trained on."]
