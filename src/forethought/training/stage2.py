"""`train_from_init(init, data, out)`: stage 2, an action-conditioned world model from a pretrained run.

What `forethought train --init RUN --data LABELLED` calls (V-JEPA 2-AC's recipe at our scale:
stage 1 on action-free video, stage 2 on a little action-labelled data). From the stage-1 run
(`forethought pretrain`):

* the encoder (and its BatchNorm statistics) and the whole predictor are copied;
* a linear **action encoder** ``u = E a + e`` maps the real, frameskip-concatenated, normalized
  action ``a`` into the latent-action space that the predictor was trained on. It is *folded*
  into the predictor's first action layer (:mod:`forethought.models.action_encoder`), so the
  saved model is an ordinary ``WorldModel`` with the dataset's action space that ``forethought
  eval`` plans with unchanged. ``E, e`` start at the least-squares map from the labelled actions to
  the inverse model's latent actions on the same windows (its R² is in ``run.json``).

Why this rather than a fresh action embedding fine-tuned with the predictor: the result is the
same kind of model, but the new parameters are ``(kA + 1) * dim`` (88 for TwoRoom with 8-d latent
actions) instead of ``kA * width``, they start where the inverse model says real actions land,
and the stage-1 layer that reads latent actions is kept: what a few labelled episodes can fit.

Then the usual JEPA loss on the first ``episodes`` labelled episodes trains the action encoder and
everything not frozen: ``freeze_encoder`` keeps the encoder bit-identical (its regularizer is then
off, as in ``adapt``), ``freeze_predictor`` keeps the predictor trunk (only ``E, e`` train). The
normalization statistics are fitted on those episodes. ``run.json`` records the stage-1 run, what
was trained and frozen, and the SHA-256 of every part.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forethought._files import read_json
from forethought.models.action_encoder import action_layer, fit_linear_map, fold_action_encoder, install_action_encoder
from forethought.training.api import _optional_val_set, seed_everything
from forethought.training.config import TrainConfig
from forethought.training.distributed import barrier, init_distributed, shutdown
from forethought.training.pretrain import INVERSE_DIR
from forethought.training.run_folder import RunPaths, write_run_info
from forethought.training.trainer import StepCallback, Trainer

_INIT_WINDOWS = 4096  # at most this many labelled windows for the least-squares start of the action encoder


def load_stage1(init: str | Path) -> tuple[Any, Any, RunPaths]:
    """The stage-1 ``(WorldModel, InverseModel, paths)`` of a ``forethought pretrain`` run folder."""
    from forethought.models import WorldModel
    from forethought.models.latent_actions import InverseModel

    p = Path(init)
    run = next((r for r in (p, p.parent) if (r / INVERSE_DIR / "config.json").is_file()), None)
    if run is None:
        raise FileNotFoundError(f"--init: {init} is not a pretrained run (no {INVERSE_DIR}/ folder with the inverse "
                                "model); make one with `forethought pretrain --data VIDEO --out RUN`")
    paths = RunPaths.resolve(run)
    return WorldModel.from_pretrained(paths.model), InverseModel.from_pretrained(run / INVERSE_DIR), paths


@torch.no_grad()
def inferred_latent_actions(model: Any, inverse: Any, windows: Any, normalizer: Any, limit: int = _INIT_WINDOWS,
                            seed: int = 0, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a (N, kA), u (N, dim))``: normalized real actions and the inverse model's latent actions
    (deterministic) of up to ``limit`` windows' transitions."""
    model.eval()
    n = len(windows)
    ids = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].tolist()
    a_all, u_all = [], []
    for s in range(0, len(ids), batch):
        items = [windows[i] for i in ids[s : s + batch]]
        obs = torch.stack([it["obs"] for it in items])
        act = normalizer.normalize_action(torch.stack([it["action"] for it in items]).float())
        z = model.encode(obs)
        u = inverse.infer(z[:, :-1], z[:, 1:]).mean
        a_all.append(act.reshape(-1, act.shape[-1]))
        u_all.append(u.reshape(-1, u.shape[-1]))
    return torch.cat(a_all), torch.cat(u_all)


def train_from_init(init: str | Path, data: str | Path, out: str | Path, *, preset: str = "small",
                    steps: int | None = None, episodes: int | None = None, freeze_encoder: bool = False,
                    freeze_predictor: bool = False, resume: bool = False, device: str | None = None,
                    progress: bool = True, tensorboard: bool = True, on_step: StepCallback | None = None,
                    verify_data: str = "cheap", **overrides: Any) -> Path:
    """Stage 2 from the pretrained run ``init`` on the first ``episodes`` episodes of the labelled dataset
    ``data`` into the run folder ``out``; returns ``<out>/model`` (an ordinary WorldModel).

    ``preset`` picks the training settings (steps, batch, lr...); the architecture, history and
    frameskip are the stage-1 run's. ``overrides`` are `TrainConfig` fields.
    """
    from forethought.data.errors import require_actions
    from forethought.data.finite import check_training_data
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset, split_episodes
    from forethought.models import WorldModel
    from forethought.training.adapt import part_fingerprints
    from forethought.training.jepa_objective import JEPATrainingObjective

    stage1, inverse, paths = load_stage1(init)
    frameskip = inverse.config.frameskip
    for name in ("history", "frameskip"):
        given = overrides.get(name)
        wanted = stage1.history if name == "history" else frameskip
        if given is not None and given != wanted:
            raise ValueError(f"--{name}: {given} differs from the pretrained run's {wanted}; leave --{name} out")
    if overrides.get("state_weight") or stage1.config.readout_dim is not None:
        raise ValueError("--state-weight is not supported with --init; leave it out")
    store = EpisodeStore.open(data)
    require_actions(store, "stage 2 (train --init) needs action labels")
    n = store.num_episodes if episodes is None else int(episodes)
    if not 1 <= n <= store.num_episodes:
        raise ValueError(f"--episodes: must be in [1, {store.num_episodes}] (the episodes of {data}), got {episodes}")
    settings = {k: v for k, v in overrides.items() if v is not None}
    settings.update(history=stage1.history, frameskip=frameskip)
    if freeze_encoder:  # the regularizer acts on the frozen latents
        settings.update(regularizer="none", reg_weight=None)
    cfg = TrainConfig.preset(preset, steps=steps, **settings)
    check_training_data(store, verify_data, False)
    train_ids, val_ids = split_episodes(n, cfg.val_fraction, seed=cfg.seed)
    normalizer = store.compute_stats(episodes=list(range(n)))  # the labelled episodes used, nothing else
    window_args = dict(history=cfg.history, horizon=cfg.horizon, frameskip=cfg.frameskip, keys=("obs", "action"),
                       in_memory=cfg.in_memory)
    train_set = WindowDataset(store, episodes=train_ids, **window_args)
    val_set = _optional_val_set(WindowDataset, store, val_ids, window_args)
    action_dim = cfg.frameskip * train_set.action_dim
    obs_shape = tuple(train_set[0]["obs"].shape[1:])
    if obs_shape != stage1.config.obs_shape:
        raise ValueError(f"{data}: observations are {obs_shape}, the pretrained model's {stage1.config.obs_shape}; "
                         "collect the labelled data with the same image size")

    out = Path(out)
    dist = init_distributed(device)
    try:
        if dist.world_size > 1:
            raise ValueError("forethought train --init runs in one process; start it without torchrun")
        seed_everything(cfg.seed)
        model_cfg = _stage2_config(stage1.config, action_dim, cfg.frameskip, store.meta.get("env_id"))
        model = WorldModel(model_cfg)
        container, index, _ = action_layer(stage1.predictor, stage1.latent_dim)
        skip = _action_layer_keys(model, stage1.latent_dim)
        state = {k: v for k, v in stage1.state_dict().items() if k not in skip}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if set(missing) != skip or unexpected:  # a bug, not a user error
            raise RuntimeError(f"stage-1 weights do not fit: missing {missing}, unexpected {unexpected}")
        a, u = inferred_latent_actions(stage1, inverse, train_set, normalizer, seed=cfg.seed)
        w, b, r2 = fit_linear_map(a, u)
        encoder = nn.Linear(action_dim, inverse.dim)
        with torch.no_grad():
            encoder.weight.copy_(w)
            encoder.bias.copy_(b)
        install_action_encoder(model.predictor, copy.deepcopy(container[index]), encoder, model.latent_dim)
        before = part_fingerprints(stage1)
        trained = _freeze(model, freeze_encoder, freeze_predictor)
        objective = JEPATrainingObjective(model, normalizer, regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                                          total_steps=cfg.steps, seed=cfg.seed, rollout_weight=cfg.rollout_weight)
        out.mkdir(parents=True, exist_ok=True)
        pre_info = read_json(paths.run / "run.json", what="a training run's record") if paths.run is not None and \
            (paths.run / "run.json").is_file() else {}
        info = {"data": str(Path(data).resolve()), "preset": preset, "world_size": 1,
                "model_config": model_cfg.to_dict(), "train_episodes": train_ids, "val_episodes": val_ids,
                "num_parameters": model.num_parameters(),
                "init": {"run": str((paths.run or paths.model.parent).resolve()), "model": str(paths.model.resolve()),
                         "data": pre_info.get("data"), "latent": inverse.config.to_dict(), "parts": before},
                "stage2": {"episodes": n, "freeze_encoder": freeze_encoder, "freeze_predictor": freeze_predictor,
                           "trained": trained, "action_encoder_init_r2": r2, "init_windows": len(a),
                           "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}}
        write_run_info(out, info)
        trainer = Trainer(objective, train_set, cfg, out, val_set=val_set, dist=dist, progress=progress,
                          tensorboard=tensorboard, on_step=on_step, meta={"preset": preset, "stage": "stage2"})
        trainer.fit(resume=resume)
        model.requires_grad_(True)
        fold_action_encoder(model.predictor, model.latent_dim)
        info["parts"] = part_fingerprints(model)
        if freeze_encoder and info["parts"]["encoder"] != before["encoder"]:  # a bug: never write such a model
            raise RuntimeError("the frozen encoder changed during stage 2")
        write_run_info(out, info)
        with torch.no_grad():
            model.save_pretrained(out / "model")
        barrier(dist)
        return out / "model"
    finally:
        shutdown(dist)


def _stage2_config(stage1_config: Any, action_dim: int, frameskip: int, env_id: str | None) -> Any:
    """The stage-1 architecture with the labelled data's action space and env."""
    import dataclasses

    return dataclasses.replace(stage1_config, action_dim=action_dim, frameskip=frameskip, env_id=env_id)


def _action_layer_keys(model: Any, latent_dim: int) -> set[str]:
    """State-dict keys of ``model``'s predictor action layer (rebuilt for real actions in stage 2)."""
    container, index, _ = action_layer(model.predictor, latent_dim)
    layer = container[index]
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(layer.weight)], names[id(layer.bias)]}


def _freeze(model: Any, freeze_encoder: bool, freeze_predictor: bool) -> list[str]:
    """Set ``requires_grad``; returns what trains (the action encoder always does)."""
    model.encoder.requires_grad_(not freeze_encoder)
    model.predictor.requires_grad_(not freeze_predictor)
    container, index, _ = action_layer(model.predictor, model.latent_dim)
    container[index].encoder.requires_grad_(True)
    return ["action_encoder"] + (["encoder"] if not freeze_encoder else []) + \
        (["predictor"] if not freeze_predictor else [])
