"""`train(data, out, ...)`: dataset folder in, trained world model folder out. What the CLI calls.

A run folder `<out>/` holds::

    model/               the final WorldModel (save_pretrained; load with WorldModel.from_pretrained)
    ckpt/step_XXXXXXX/   training checkpoints (see checkpoint.py), resumable with resume=True
    metrics.jsonl        one JSON record per logged step; tb/ holds the same for TensorBoard
    train_config.json    the TrainConfig; run.json the preset, data path and episode split (run_folder.py)

Under `torchrun --nproc_per_node=N` the same call trains with DistributedDataParallel: every rank
runs it, rank 0 writes the folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from forethought.training.arguments import OVERRIDES
from forethought.training.config import TrainConfig
from forethought.training.distributed import barrier, init_distributed, shutdown
from forethought.training.run_folder import write_run_info
from forethought.training.trainer import NonFiniteLossError, StepCallback, Trainer

if TYPE_CHECKING:
    from forethought.models import WorldModelConfig

EXIT_NON_FINITE = 3


def seed_everything(seed: int) -> None:
    """Seed python `random`, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(data: str | Path, out: str | Path, *, preset: str = "small", regularizer: str = "sigreg",
          steps: int | None = None, resume: bool = False, device: str | None = None, progress: bool = True,
          tensorboard: bool = True, model_overrides: dict[str, Any] | None = None,
          on_step: StepCallback | None = None, verify_data: str = "cheap", drop_bad_episodes: bool = False,
          episodes: int | None = None, **overrides: Any) -> Path:
    """Train a world model on the dataset folder `data` into the run folder `out`; returns `<out>/model`.

    `preset` picks both the model (`WorldModelConfig.preset`) and the training settings
    (`TrainConfig.preset`); `overrides` are `TrainConfig` fields (e.g. `batch_size=16`, `bf16=True`,
    `lr=1e-4`), `model_overrides` `WorldModelConfig` fields. `resume=True` continues the newest
    checkpoint of `out` exactly (same settings required). Raises `NonFiniteLossError` on a NaN/inf
    loss, leaving the last good checkpoint in place.

    The dataset is checked first (`verify_data`: "cheap" = every chunk file present with its recorded
    size, "full" = every byte against its checksums; `DatasetCorruptError` names a damaged file), then
    for NaN/inf values (a `DatasetError` naming the episode and step, unless `drop_bad_episodes`
    leaves those episodes out of the split and the statistics; run.json lists them). ``episodes``
    trains on the first N episodes only (split, statistics and all; a labelled-data curve).
    """
    from forethought.data.errors import require_actions
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset, split_episodes
    from forethought.data.finite import check_training_data
    from forethought.models import WorldModel
    from forethought.training.jepa_objective import JEPATrainingObjective

    cfg = TrainConfig.preset(preset, regularizer=regularizer, steps=steps, **overrides)
    out = Path(out)
    dist = init_distributed(device)
    try:
        store = EpisodeStore.open(data)
        require_actions(store, "train needs action labels (or --init RUN, a pretrained run, and labelled data)")
        dropped = check_training_data(store, verify_data, drop_bad_episodes)  # {} or {"episodes", "reason"}
        n = store.num_episodes if episodes is None else int(episodes)
        if not 1 <= n <= store.num_episodes:
            raise ValueError(f"--episodes: must be in [1, {store.num_episodes}] (the episodes of {data}), got {episodes}")
        skip = set(dropped.get("episodes", ())) | set(range(n, store.num_episodes))
        normalizer = store.stats
        if skip:  # stats.json may include them: fit on what is trained on
            normalizer = store.compute_stats(episodes=sorted(set(range(store.num_episodes)) - skip))
        elif normalizer is None:
            warnings.warn(f"{data} has no stats.json; fitting normalization statistics on the whole dataset now",
                          stacklevel=2)
            normalizer = store.compute_stats()
        train_ids, val_ids = split_episodes(n, cfg.val_fraction, seed=cfg.seed)
        train_ids, val_ids = [i for i in train_ids if i not in skip], [i for i in val_ids if i not in skip]
        heads: dict[str, Any] = {}  # optional model parts: the state readout, the pixel decoder
        if cfg.state_weight > 0:
            if normalizer.state is None:
                raise ValueError(f"{data}: --state-weight needs a dataset that stores states; this one has none")
            heads["readout_dim"] = normalizer.state.dim
        if cfg.recon_weight > 0:
            from forethought.models.decoder import DecoderConfig

            heads["decoder"] = DecoderConfig()
        proprio_dims = (model_overrides or {}).get("proprio_dims")
        if proprio_dims is not None:
            if normalizer.state is None:
                raise ValueError(f"{data}: --proprio-dims needs a dataset that stores states; this one has none")
            if max(proprio_dims) >= normalizer.state.dim:
                raise ValueError(f"{data}: --proprio-dims {list(proprio_dims)} but the stored state has "
                                 f"{normalizer.state.dim} dims (indices 0..{normalizer.state.dim - 1})")
        keys = ("obs", "action", "state") if cfg.state_weight > 0 or proprio_dims is not None else ("obs", "action")
        window_args = dict(history=cfg.history, horizon=cfg.horizon, frameskip=cfg.frameskip,
                           keys=keys, in_memory=cfg.in_memory)
        train_set = WindowDataset(store, episodes=train_ids, **window_args)
        val_set = _optional_val_set(WindowDataset, store, val_ids, window_args)
        obs_shape = tuple(train_set[0]["obs"].shape[1:])  # (C, H, W) or (S,)
        action_dim = cfg.frameskip * train_set.action_dim
        model_cfg = _model_config(preset, obs_shape, action_dim, cfg.history,
                                  {"frameskip": cfg.frameskip, "env_id": store.meta.get("env_id"), **heads,
                                   **(model_overrides or {})})
        seed_everything(cfg.seed)  # model init is part of the run's determinism
        model = WorldModel(model_cfg)
        objective = JEPATrainingObjective(model, normalizer, regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                                          total_steps=cfg.steps, seed=cfg.seed, rollout_weight=cfg.rollout_weight,
                                          state_weight=cfg.state_weight, recon_weight=cfg.recon_weight)
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            run_info = {"data": str(Path(data).resolve()), "preset": preset, "world_size": dist.world_size,
                        "model_config": model_cfg.to_dict(), "train_episodes": train_ids, "val_episodes": val_ids,
                        "num_parameters": model.num_parameters()}
            if dropped:
                run_info["dropped_episodes"] = dropped
            if episodes is not None:
                run_info["episodes"] = n
            write_run_info(out, run_info)
        trainer = Trainer(objective, train_set, cfg, out, val_set=val_set, dist=dist, progress=progress,
                          tensorboard=tensorboard, on_step=on_step, meta={"preset": preset})
        trainer.fit(resume=resume)
        if dist.is_main:
            model.save_pretrained(out / "model")
        barrier(dist)
        return out / "model"
    finally:
        shutdown(dist)


def _optional_val_set(cls: Any, store: Any, val_ids: list[int], window_args: dict[str, Any]) -> Any:
    if not val_ids:
        return None
    try:
        return cls(store, episodes=val_ids, **window_args)
    except ValueError as e:  # held-out episodes too short for one window
        warnings.warn(f"no validation windows ({e}); validation is skipped", stacklevel=3)
        return None


def _model_config(preset: str, obs_shape: tuple[int, ...], action_dim: int, history: int,
                  overrides: dict[str, Any]) -> WorldModelConfig:
    """The preset's model with ``overrides``; a dict under ``"predictor"`` changes only those fields."""
    from forethought.models import WorldModelConfig

    overrides = {"history": history, **overrides}
    fields = overrides.get("predictor")
    if isinstance(fields, dict):
        base = WorldModelConfig.preset(preset, obs_shape=obs_shape, action_dim=action_dim).predictor
        overrides["predictor"] = dataclasses.replace(base, **fields)
    return WorldModelConfig.preset(preset, obs_shape=obs_shape, action_dim=action_dim, **overrides)


def run_from_args(args: argparse.Namespace) -> int:
    """Run `train` from parsed `add_train_arguments` options; returns the process exit status."""
    overrides = {name: getattr(args, name) for name, _, _ in OVERRIDES}
    overrides.update(bf16=args.bf16, in_memory=args.in_memory)
    stage2 = {"freeze_encoder": getattr(args, "freeze_encoder", False),
              "freeze_predictor": getattr(args, "freeze_predictor", False)}
    if getattr(args, "init", None) is None and any(stage2.values()):
        print("forethought train: --freeze-encoder/--freeze-predictor: they need --init RUN (a pretrained run). Add "
              "--init, or leave them out", file=sys.stderr)
        return 2
    try:
        if getattr(args, "init", None) is not None:  # stage 2 from a `forethought pretrain` run
            from forethought.training.stage2 import train_from_init

            if args.proprio_dims or args.drop_bad_episodes or args.regularizer != "sigreg":
                raise ValueError("--init: --proprio-dims, --drop-bad-episodes and --regularizer are not supported "
                                 "in stage 2; leave them out")
            path = train_from_init(args.init, args.data, args.out, preset=args.preset, steps=args.steps,
                                   episodes=args.episodes, resume=args.resume, device=args.device,
                                   progress=args.progress, tensorboard=args.tensorboard,
                                   verify_data=args.verify_data, **stage2, **overrides)
            print(f"model saved to {path}")
            return 0
        path = train(args.data, args.out, episodes=getattr(args, "episodes", None), preset=args.preset, regularizer=args.regularizer, steps=args.steps,
                     resume=args.resume, device=args.device, progress=args.progress,
                     tensorboard=args.tensorboard, verify_data=args.verify_data,
                     drop_bad_episodes=args.drop_bad_episodes,
                     model_overrides={"proprio_dims": args.proprio_dims} if args.proprio_dims else None,
                     **overrides)
    except NonFiniteLossError as e:
        print(f"forethought train: {e}", file=sys.stderr)
        return EXIT_NON_FINITE
    except (ValueError, FileExistsError) as e:
        print(f"forethought train: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:  # one line per torchrun job, not per rank
        print(f"model saved to {path}")
    return 0
