"""Objectives over *states*, written in Python and given at run time (`forethought eval --objective module:function`).

DMPC's second promise (Zhou et al. 2025): a new reward at test time, planned for with no
retraining. Here the user writes a cost over the model's state readout (the head trained with
``forethought train --state-weight``, privileged supervision, reported as such) in the env's own
units::

    def my_cost(states, actions, goal=None, past=None):   # -> (B, N), lower is better
        ...

* ``states (B, N, H, S)``: the readout of every imagined latent, denormalized to env units;
* ``actions (B, N, H, A)``: the candidates in env units (a model action is ``frameskip`` env
  actions concatenated, docs/conventions.md);
* ``goal (B, S)`` (optional parameter): the readout of the goal image's latent;
* ``past (B, L, S)`` (optional parameter): the readout of every model frame the agent has seen
  since ``reset``, oldest first (for objectives with memory, e.g. "pass a waypoint first").

The function only receives the parameters it declares. An attribute ``my_cost.success(states
(T+1, S), actions (T, A), goal_state (S,), env) -> bool`` (optional) is for the evaluation, which
judges an episode with it from the *true* states and the executed env actions after it ended;
planning never calls it. :class:`StateObjective` is the objective factory the agent takes; examples for TwoRoom and
Reacher are in ``forethought/examples/objectives.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from forethought.data.normalization import Normalizer
from forethought.models.protocols import LatentWorldModel
from forethought.planning.costs import goal_cost
from forethought.planning.objectives import LatentGoalObjective
from forethought.planning.protocols import Objective

CONTEXT = ("goal", "past")


def load_callable(spec: str, what: str = "--objective") -> Callable[..., Any]:
    """``"package.module:name"`` or ``"path/to/file.py:name"`` -> the function it names."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"{what}: {spec!r} is not MODULE:FUNCTION (e.g. my_objectives:avoid_zone or "
                         "path/to/objectives.py:avoid_zone)")
    module_name, name = spec.split(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: {path} does not exist")
        unit = importlib.util.spec_from_file_location(f"forethought_user_{path.stem}", path)
        module = importlib.util.module_from_spec(unit)  # type: ignore[arg-type]
        sys.modules[unit.name] = module  # type: ignore[union-attr]
        unit.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ImportError(f"{what}: cannot import {module_name!r} ({e}); put it on PYTHONPATH or give a file "
                              "path/to/objectives.py:FUNCTION") from e
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{what}: {module_name} has no function {name!r}")
    return fn


class StateObjective:
    """An :class:`~forethought.planning.objectives.ObjectiveFactory` that scores imagined *state* trajectories.

    Candidates are rolled out by the world model exactly as :class:`LatentGoalObjective` does
    (KV-cached, ``bf16`` / ``compile`` as there), or by ``dynamics`` (diffusion dynamics,
    :class:`~forethought.planning.diffusion_dynamics.DiffusionDynamicsObjective` with ``dynamics_settings``); the readout maps every imagined latent to a state,
    and ``cost_fn`` (module docstring) scores them. ``latent_weight`` adds that multiple of the summed
    L2 latent distance to the goal image. Holds the readouts of the frames seen since :meth:`reset`
    (``past``); the MPC agent calls ``reset`` at every new batch of episodes.
    """

    def __init__(self, model: LatentWorldModel, cost_fn: Callable[..., Tensor], *, latent_weight: float = 0.0,
                 bf16: bool = False, compile: bool = False, dynamics: Any = None,
                 dynamics_settings: dict[str, Any] | None = None) -> None:
        if getattr(model, "readout", None) is None:
            raise ValueError("--objective scores states read from the latents: it needs a model trained with "
                             "--state-weight > 0 (this one has no readout head)")
        if model.normalization is None or model.normalization.get("state") is None:
            raise ValueError("--objective needs the model's state statistics (a dataset that stores states)")
        if not callable(cost_fn):
            raise TypeError(f"cost_fn must be callable, got {type(cost_fn).__name__}")
        if not latent_weight >= 0:
            raise ValueError(f"latent_weight must be >= 0, got {latent_weight}")
        self.model, self.cost_fn, self.latent_weight = model, cost_fn, float(latent_weight)
        self.normalizer = Normalizer.from_dict(model.normalization)
        params = inspect.signature(cost_fn).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.context = tuple(k for k in CONTEXT if k in params or takes_all)
        if dynamics is None:
            self._inner = LatentGoalObjective(model, self._make_cost, bf16=bf16, compile=compile)
        else:  # candidates imagined by diffusion dynamics (forethought eval --dynamics)
            from forethought.planning.diffusion_dynamics import DiffusionDynamicsObjective

            self._inner = DiffusionDynamicsObjective(model, dynamics, self._make_cost, **(dynamics_settings or {}))
        self._past: list[Tensor] = []
        self._current: Tensor | None = None

    def reset(self) -> None:
        """Forget the frames seen (a new batch of episodes starts)."""
        self._past, self._current = [], None

    def read(self, z: Tensor) -> Tensor:
        """Latents ``(..., D)`` -> states in env units ``(..., S)``."""
        return self.normalizer.denormalize_state(self.model.readout(z.float()))

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        current = self.read(z_hist[:, -1])  # (B, S)
        if self._past and self._past[-1].shape[0] != current.shape[0]:
            self.reset()
        self._past.append(current)
        return self._inner(z_hist, a_hist, goal_z)

    def _make_cost(self, goal_z: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        context = {"goal": self.read(goal_z), "past": torch.stack(self._past, dim=1) if self._past else None}
        kwargs = {k: context[k] for k in self.context}
        latent = goal_cost(goal_z, "l2", "sum") if self.latent_weight else None

        def cost(latents: Tensor, actions: Tensor) -> Tensor:
            states = self.read(latents)  # (B, N, H, S)
            env_actions = self.normalizer.denormalize_action(actions.float())  # (B, N, H, k * env_A)
            total = self.cost_fn(states, env_actions, **kwargs)
            if not isinstance(total, Tensor) or total.shape != latents.shape[:2]:
                raise ValueError(f"--objective must return costs of shape (B, N) = {tuple(latents.shape[:2])}, got "
                                 f"{getattr(total, 'shape', type(total).__name__)}")
            return total + self.latent_weight * latent(latents, actions) if latent is not None else total

        return cost

    def describe(self) -> dict[str, Any]:
        """JSON-safe settings, for reports."""
        name = getattr(self.cost_fn, "__qualname__", type(self.cost_fn).__name__)
        return {"kind": "state", "objective": f"{getattr(self.cost_fn, '__module__', '?')}:{name}",
                "latent_weight": self.latent_weight, "context": list(self.context)}
