"""`pretrain(data, out, latent=...)`: stage 1, a JEPA world model learned from frames without actions.

What `forethought pretrain` calls. The dataset may be action-free (`collect --drop-actions`,
`import-video`) or labelled (its actions are then ignored, except on the `label_fraction` of
training episodes used for label supervision). The run folder is a training run folder plus the
inverse model::

    model/       the stage-1 WorldModel (predictor action_dim = the latent action dim; no action
                 statistics), loadable with WorldModel.from_pretrained
    inverse/     the InverseModel (model.safetensors + config.json: LatentActionConfig)
    ckpt/ metrics.jsonl train_config.json run.json   as `forethought train` writes them

`run.json` records `"stage": "pretrain"`, the latent action config, the episode split and the
labelled episodes. Stage 2 (`forethought train --init OUT --data LABELLED`) starts from it; its
quality is measured by `forethought latent-actions`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forethought.training.api import EXIT_NON_FINITE, _model_config, _optional_val_set, seed_everything
from forethought.training.config import TrainConfig
from forethought.training.distributed import barrier, init_distributed, shutdown
from forethought.training.run_folder import write_run_info
from forethought.training.trainer import NonFiniteLossError, StepCallback, Trainer

INVERSE_DIR = "inverse"


class LabelledWindows(torch.utils.data.Dataset):
    """Windows of a dataset, each with ``labelled`` (a bool tensor): whether its episode's actions
    may be used (label supervision). Without labelled episodes, windows carry no actions at all."""

    def __init__(self, windows: Any, labelled: set[int]) -> None:
        self.windows, self.labelled = windows, labelled

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.windows[index]
        if self.labelled or "action" in item:
            episode, _ = self.windows.locate(index if index >= 0 else index + len(self))
            item["labelled"] = torch.tensor(episode in self.labelled)
        return item


def labelled_episodes(train_ids: list[int], fraction: float, seed: int) -> list[int]:
    """``round(fraction * len(train_ids))`` training episodes (at least 1 when ``fraction > 0``), seeded."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"--label-fraction: must be in [0, 1], got {fraction}")
    if fraction == 0 or not train_ids:
        return []
    n = max(1, int(round(fraction * len(train_ids))))
    pick = np.random.default_rng(seed + 7919).permutation(len(train_ids))[:n]
    return sorted(int(train_ids[i]) for i in pick)


def pretrain(data: str | Path, out: str | Path, *, latent: str = "continuous", latent_dim: int = 8, codes: int = 8,
             preset: str = "small", regularizer: str = "sigreg", steps: int | None = None,
             label_fraction: float = 0.0, label_weight: float = 1.0, kl_weight: float | None = None,
             inverse_hidden: int = 256, resume: bool = False, device: str | None = None, progress: bool = True,
             tensorboard: bool = True, on_step: StepCallback | None = None, verify_data: str = "cheap",
             model_overrides: dict[str, Any] | None = None, **overrides: Any) -> Path:
    """Pretrain a world model and an inverse model on the frames of ``data`` into the run folder ``out``.

    ``latent``: ``continuous`` (a ``latent_dim``-d variational bottleneck, KL weight ``kl_weight``) or
    ``vq`` (``codes`` codes of dimension ``latent_dim``). ``label_fraction`` of the training episodes
    keep their actions for an auxiliary loss (weight ``label_weight``) tying the latent action to the
    real one (the dataset must have actions). ``overrides`` are `TrainConfig` fields, as in `train`.
    Returns ``<out>/model``.
    """
    from forethought.data.errors import require_actions
    from forethought.data.finite import check_training_data
    from forethought.data.normalization import Normalizer
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset, split_episodes
    from forethought.models import WorldModel
    from forethought.models.latent_actions import LatentActionConfig, InverseModel
    from forethought.training.latent_objective import LatentActionTrainingObjective

    cfg = TrainConfig.preset(preset, regularizer=regularizer, steps=steps, **overrides)
    if cfg.rollout_weight or cfg.state_weight:
        raise ValueError("--rollout-weight and --state-weight are not supported by pretrain; leave them out")
    out = Path(out)
    dist = init_distributed(device)
    try:
        store = EpisodeStore.open(data)
        if label_fraction > 0:
            require_actions(store, "--label-fraction needs action labels on that fraction of episodes")
        check_training_data(store, verify_data, False)
        normalizer = store.stats
        if normalizer is None:
            warnings.warn(f"{data} has no stats.json; fitting normalization statistics on the whole dataset now",
                          stacklevel=2)
            normalizer = store.compute_stats()
        train_ids, val_ids = split_episodes(store.num_episodes, cfg.val_fraction, seed=cfg.seed)
        labelled = labelled_episodes(train_ids, label_fraction, cfg.seed)
        keys = ("obs", "action") if labelled else ("obs",)
        window_args = dict(history=cfg.history, horizon=cfg.horizon, frameskip=cfg.frameskip, keys=keys,
                           in_memory=cfg.in_memory)
        train_set = LabelledWindows(WindowDataset(store, episodes=train_ids, **window_args), set(labelled))
        val_windows = _optional_val_set(WindowDataset, store, val_ids, window_args)
        # Every validation window with actions is scored by the label head (held out: never trained on).
        val_set = None if val_windows is None else LabelledWindows(val_windows, set(val_ids) if labelled else set())
        obs_shape = tuple(train_set[0]["obs"].shape[1:])
        model_cfg = _model_config(preset, obs_shape, latent_dim, cfg.history,
                                  {"frameskip": None, "env_id": store.meta.get("env_id"), **(model_overrides or {})})
        label_dim = cfg.frameskip * int(store.layout["action_dim"]) if labelled else None
        latent_cfg = LatentActionConfig(
            kind=latent, dim=latent_dim, codes=codes, latent_dim=model_cfg.latent_dim, hidden=inverse_hidden,
            label_dim=label_dim, frameskip=cfg.frameskip,
            **({"kl_weight": kl_weight} if kl_weight is not None else {}))
        seed_everything(cfg.seed)
        model, inverse = WorldModel(model_cfg), InverseModel(latent_cfg)
        # The latent actions have no statistics: a stage-1 model cannot be given real actions by mistake.
        model.normalization = Normalizer(action=None, state=normalizer.state).to_dict()
        objective = LatentActionTrainingObjective(model, inverse, normalizer, regularizer=cfg.regularizer,
                                                  reg_weight=cfg.reg_weight, seed=cfg.seed, label_weight=label_weight)
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_run_info(out, {
                "stage": "pretrain", "data": str(Path(data).resolve()), "preset": preset,
                "world_size": dist.world_size, "model_config": model_cfg.to_dict(), "latent": latent_cfg.to_dict(),
                "dataset_has_actions": store.has_actions, "train_episodes": train_ids, "val_episodes": val_ids,
                "labelled_episodes": labelled, "label_fraction": label_fraction, "label_weight": label_weight,
                "num_parameters": model.num_parameters(),
                "inverse_parameters": sum(p.numel() for p in inverse.parameters())})
        trainer = Trainer(objective, train_set, cfg, out, val_set=val_set, dist=dist, progress=progress,
                          tensorboard=tensorboard, on_step=on_step, meta={"preset": preset, "stage": "pretrain"})
        trainer.fit(resume=resume)
        if dist.is_main:
            model.save_pretrained(out / "model")
            inverse.save_pretrained(out / INVERSE_DIR)
        barrier(dist)
        return out / "model"
    finally:
        shutdown(dist)


def run_pretrain_from_args(args: argparse.Namespace) -> int:
    """`forethought pretrain`: the parsed `add_pretrain_arguments` options -> :func:`pretrain`."""
    from forethought.training.arguments import OVERRIDES

    overrides = {name: getattr(args, name) for name, _, _ in OVERRIDES if hasattr(args, name)}
    overrides.update(bf16=args.bf16, in_memory=args.in_memory)
    try:
        path = pretrain(args.data, args.out, latent=args.latent, latent_dim=args.latent_dim, codes=args.codes,
                        preset=args.preset, regularizer=args.regularizer, steps=args.steps,
                        label_fraction=args.label_fraction, label_weight=args.label_weight, kl_weight=args.kl_weight,
                        inverse_hidden=args.inverse_hidden, resume=args.resume, device=args.device,
                        progress=args.progress, tensorboard=args.tensorboard, verify_data=args.verify_data,
                        **overrides)
    except NonFiniteLossError as e:
        print(f"forethought pretrain: {e}", file=sys.stderr)
        return EXIT_NON_FINITE
    print(f"pretrained model saved to {path} (inverse model: {path.parent / INVERSE_DIR})")
    return 0
