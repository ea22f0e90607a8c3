"""Training a small part (a proposal, a diffusion dynamics model) with the ordinary trainer, in one process.

The part's loss module goes through :class:`~forethought.training.trainer.Trainer` like a world
model does (warm-up + cosine, clipping, atomic checkpoints, ``--resume``, ``metrics.jsonl``), with
settings that suit a few-thousand-step run: no validation split, no collapse regularizer, no weight
decay, a checkpoint every quarter of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


def fit_module(objective: nn.Module, dataset: torch.utils.data.Dataset, out: str | Path, *, steps: int,
               batch_size: int = 256, lr: float = 1e-3, seed: int = 0, device: str | None = None,
               progress: bool = True, tensorboard: bool = False, resume: bool = False,
               meta: dict[str, Any] | None = None, command: str = "this command") -> dict[str, float]:
    """Train ``objective`` (``forward(batch) -> {"loss": ...}``) on ``dataset`` into the run folder ``out``;
    returns the last logged metrics. ``objective`` is left in eval mode."""
    from forethought.training.config import TrainConfig
    from forethought.training.distributed import init_distributed, shutdown
    from forethought.training.trainer import Trainer

    cfg = TrainConfig(steps=steps, batch_size=min(batch_size, len(dataset)), lr=lr,
                      warmup_steps=min(100, steps // 10), weight_decay=0.0, ckpt_every=max(steps // 4, 1),
                      log_every=max(1, min(50, steps // 10)), eval_every=0, seed=seed, regularizer="none",
                      val_fraction=0.0)
    dist = init_distributed(device)
    try:
        if dist.world_size > 1:
            raise ValueError(f"{command} runs in one process; start it without torchrun")
        torch.manual_seed(seed)
        trainer = Trainer(objective, dataset, cfg, out, dist=dist, progress=progress, tensorboard=tensorboard,
                          meta=meta or {})
        result = trainer.fit(resume=resume)
    finally:
        shutdown(dist)
    objective.eval()
    return result.metrics
