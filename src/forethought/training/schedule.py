"""Learning-rate schedule: linear warm-up, then cosine decay.

The schedule is a pure function of the step, so resuming needs no scheduler state beyond the step
itself (and a checkpoint cannot disagree with the optimizer about where the schedule is).
"""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, *, base_lr: float, warmup_steps: int, total_steps: int,
                  min_lr_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (0-based: the lr used by the `step + 1`-th update).

    Linear warm-up from `base_lr / warmup_steps` to `base_lr` over `warmup_steps` steps, then a
    half cosine from `base_lr` to `min_lr_ratio * base_lr` at `total_steps`; constant after that.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    if step < warmup_steps:
        # (step + 1): the first update already moves, a zero lr would waste a step.
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
    floor = min_lr_ratio * base_lr
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set `lr` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
