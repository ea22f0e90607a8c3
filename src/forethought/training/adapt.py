"""`adapt(model, data, out, only=...)`: fine-tune part of a trained world model on new data (`forethought adapt`).

The DMPC recipe for changed physics (Zhou et al. 2025): the encoder (what the world looks like)
and the action proposal (how the agent tends to move) stay; only the dynamics are fine-tuned on a
little play data of the changed system. `only` picks what trains:

| `only` | trained | frozen (bit-identical to the parent) |
|---|---|---|
| `dynamics`, `predictor` | the predictor | encoder (weights and BatchNorm statistics), readout, decoder |
| `all` | everything, from the parent's weights, with the parent's loss | nothing |

The JEPA predictor is the model's dynamics, so `dynamics` and `predictor` train the same part
today; `dynamics` will also name other dynamics models as they are added. The loop is the
`Trainer` over `JEPATrainingObjective`, with the frozen parts' parameters out of the optimizer
(``requires_grad=False``) and kept in eval mode. The dynamics-only loss is the prediction loss
alone: the collapse regularizer acts on the frozen encoder's latents and cannot change them.

The new run folder is an ordinary run folder (`eval`, `train-proposal`, `surprise-*` take it)
with the parent's normalization statistics (the action space the proposal was trained in) and,
in `run.json`, the parent model, the data used, what was trained and the SHA-256 of every part,
so that what was frozen is checkable: ``run.json["parts"]["encoder"]["sha256"]`` equals
``run.json["parent"]["parts"]["encoder"]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forethought._files import read_json

ONLY = {"dynamics": ("predictor",), "predictor": ("predictor",), "all": ("encoder", "predictor", "readout", "decoder")}
PARTS = ("encoder", "predictor", "readout", "decoder")


def part_fingerprints(model: Any) -> dict[str, str]:
    """SHA-256 of each part of a world model that exists (``encoder``, ``predictor``, ``readout``, ``decoder``)."""
    from forethought.models.serialization import weights_fingerprint

    return {name: weights_fingerprint(getattr(model, name)) for name in PARTS if getattr(model, name, None) is not None}


def _parent_config(run_dir: Path | None, model: Any) -> tuple[Any, str]:
    """The parent's `TrainConfig` (its train_config.json) and preset, or the `small` preset fitted to the model."""
    from forethought.training.config import TrainConfig

    preset = "small"
    if run_dir is not None:
        info = read_json(run_dir / "run.json", what="a training run's record") if (run_dir / "run.json").is_file() else {}
        preset = str(info.get("preset", preset))
        path = run_dir / "train_config.json"
        if path.is_file():
            return TrainConfig.from_dict(read_json(path, what="a run's training settings"), source=str(path)), preset
    frameskip = getattr(model.config, "frameskip", None) or TrainConfig.preset("small").frameskip
    return TrainConfig.preset(preset if preset in ("tiny", "small", "base") else "small", history=model.history,
                              frameskip=frameskip), preset


def adapt(model: str | Path, data: str | Path, out: str | Path, *, only: str = "dynamics", steps: int = 500,
          episodes: int | None = None, resume: bool = False, device: str | None = None, progress: bool = True,
          tensorboard: bool = True, force: bool = False, verify_data: str = "cheap", **overrides: Any) -> Path:
    """Fine-tune the parts of the world model at ``model`` (a run or model folder) that ``only`` names
    on the dataset ``data``; returns ``<out>/model``.

    ``episodes`` uses the first N episodes of ``data`` only (so one collection serves the 10 / 30 /
    100-episode rows of an adaptation table). ``overrides`` are `TrainConfig` fields (``lr``,
    ``batch_size``, ``warmup_steps``, ``seed``, ...); the rest are the parent's, except ``steps``, a
    warm-up of at most a tenth of them, and (dynamics-only) no regularizer and no readout loss.
    The dataset must come from the model's env (its ``env_id``; ``force`` overrides) with the
    same observation shape and action dimension.
    """
    import torch

    from forethought.data.errors import require_actions
    from forethought.data.finite import check_training_data
    from forethought.data.normalization import Normalizer
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset, split_episodes
    from forethought.models import WorldModel
    from forethought.training.api import _optional_val_set, seed_everything
    from forethought.training.distributed import init_distributed, shutdown
    from forethought.training.jepa_objective import JEPATrainingObjective
    from forethought.training.run_folder import RunPaths, write_run_info
    from forethought.training.trainer import Trainer

    if only not in ONLY:
        raise ValueError(f"--only: unknown part {only!r}; choose one of {', '.join(ONLY)}")
    paths = RunPaths.resolve(model)
    parent = WorldModel.from_pretrained(paths.model)
    if parent.normalization is None:
        raise ValueError(f"{paths.model}: the model carries no normalization statistics; adapt needs the ones it was "
                         "trained with (retrain it with `forethought train`)")
    store = EpisodeStore.open(data)
    require_actions(store, "adapt needs action labels")
    env_id, model_env = store.meta.get("env_id"), getattr(parent.config, "env_id", None)
    if model_env is not None and env_id != model_env and not force:
        raise ValueError(f"{data}: holds episodes of {env_id!r}, the model was trained on {model_env!r}. Collect play "
                         "data on the model's env (a changed-physics variant is the same env id with other "
                         "--env-kwargs), or pass --force")
    parent_cfg, preset = _parent_config(paths.run, parent)
    settings: dict[str, Any] = {"steps": steps, "warmup_steps": min(parent_cfg.warmup_steps, steps // 10),
                                "history": parent.history}
    if only != "all":  # the regularizer acts on the frozen latents; the readout is frozen
        settings.update(regularizer="none", reg_weight=None, state_weight=0.0)
    cfg = parent_cfg.replace(**{**settings, **{k: v for k, v in overrides.items() if v is not None}})
    stored = getattr(parent.config, "frameskip", None)
    if stored is not None and cfg.frameskip != stored:
        raise ValueError(f"frameskip {cfg.frameskip} differs from the model's {stored}; leave --frameskip out")

    n = store.num_episodes if episodes is None else int(episodes)
    if not 1 <= n <= store.num_episodes:
        raise ValueError(f"--episodes must be in [1, {store.num_episodes}] (the episodes of {data}), got {episodes}")
    dropped = check_training_data(store, verify_data, drop_bad_episodes=False)
    train_ids, val_ids = split_episodes(n, cfg.val_fraction, seed=cfg.seed)
    normalizer = Normalizer.from_dict(parent.normalization)  # the parent's action space, never refitted
    window_args = dict(history=cfg.history, horizon=cfg.horizon, frameskip=cfg.frameskip, in_memory=cfg.in_memory,
                       keys=("obs", "action", "state") if cfg.state_weight > 0 else ("obs", "action"))
    train_set = WindowDataset(store, episodes=train_ids, **window_args)
    val_set = _optional_val_set(WindowDataset, store, val_ids, window_args)
    if cfg.frameskip * train_set.action_dim != parent.action_dim:
        raise ValueError(f"{data}: its actions give {cfg.frameskip * train_set.action_dim}-d model actions, the model "
                         f"takes {parent.action_dim}; collect play data on the model's env")

    out = Path(out)
    dist = init_distributed(device)
    try:
        if dist.world_size > 1:
            raise ValueError("forethought adapt runs in one process; start it without torchrun")
        seed_everything(cfg.seed)
        before = part_fingerprints(parent)
        trainable = ONLY[only]
        for name in PARTS:
            part = getattr(parent, name, None)
            if part is not None:
                part.requires_grad_(name in trainable)
        objective = JEPATrainingObjective(parent, normalizer, regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                                          total_steps=cfg.steps, seed=cfg.seed, rollout_weight=cfg.rollout_weight,
                                          state_weight=cfg.state_weight)
        out.mkdir(parents=True, exist_ok=True)
        info = {"data": str(Path(data).resolve()), "preset": preset, "world_size": 1,
                "model_config": parent.config.to_dict(), "train_episodes": train_ids, "val_episodes": val_ids,
                "num_parameters": parent.num_parameters(),
                "parent": {"model": str(paths.model.resolve()), "run": str(paths.run.resolve()) if paths.run else None,
                           "data": str(paths.data) if paths.data else None, "parts": before},
                "adapt": {"only": only, "trained": [p for p in trainable if p in before],
                          "frozen": [p for p in before if p not in trainable], "episodes": n, "steps": cfg.steps,
                          "trainable_parameters": sum(p.numel() for p in parent.parameters() if p.requires_grad)}}
        if dropped:
            info["dropped_episodes"] = dropped
        write_run_info(out, info)
        trainer = Trainer(objective, train_set, cfg, out, val_set=val_set, dist=dist, progress=progress,
                          tensorboard=tensorboard, meta={"preset": preset, "adapt": only})
        trainer.fit(resume=resume)
        parent.requires_grad_(True)
        after = part_fingerprints(parent)
        changed = [p for p in info["adapt"]["frozen"] if after[p] != before[p]]
        if changed:  # a bug, not a user error: never write a model whose frozen parts moved
            raise RuntimeError(f"frozen parts changed during adaptation: {changed}")
        info["parts"] = after
        write_run_info(out, info)
        with torch.no_grad():
            parent.save_pretrained(out / "model")
        return out / "model"
    finally:
        shutdown(dist)


def run_adapt_from_args(args: argparse.Namespace) -> int:
    """`forethought adapt`: the parsed `add_adapt_arguments` options -> :func:`adapt`."""
    from forethought.training.trainer import NonFiniteLossError

    overrides = {name: getattr(args, name) for name in ("lr", "batch_size", "warmup_steps", "seed", "horizon",
                                                        "rollout_weight")}
    try:
        path = adapt(args.model, args.data, args.out, only=args.only, steps=args.steps, episodes=args.episodes,
                     resume=args.resume, device=args.device, progress=args.progress, tensorboard=args.tensorboard,
                     force=args.force, **overrides)
    except NonFiniteLossError as e:
        print(f"forethought adapt: {e}", file=sys.stderr)
        return 3
    print(f"adapted model saved to {path}")
    return 0
