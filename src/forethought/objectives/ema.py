"""EMA target encoder with stop-gradient (BYOL, I-JEPA): the third way to avoid collapse.

The prediction targets come from a slowly moving copy of the online encoder,
``theta_target <- m * theta_target + (1 - m) * theta_online``, with the momentum ``m`` raised from
``base`` to ``final`` by a cosine schedule (BYOL eq. 3 schedule). The target never receives
gradients; its buffers (BatchNorm running statistics) are copied from the online encoder.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn


def ema_momentum(step: int, total_steps: int | None, base: float = 0.996, final: float = 1.0) -> float:
    """Cosine schedule from ``base`` (step 0) to ``final`` (``total_steps``); ``base`` if no total."""
    if total_steps is None or total_steps <= 0:
        return base
    progress = min(max(step / total_steps, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class EMATarget(nn.Module):
    """A frozen, exponentially averaged copy of ``online``; calling it returns detached outputs.

    Args:
        online: the module to track (the world model's encoder).
        base_momentum, final_momentum, total_steps: the momentum schedule (see :func:`ema_momentum`).
    """

    def __init__(
        self,
        online: nn.Module,
        base_momentum: float = 0.996,
        final_momentum: float = 1.0,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= base_momentum <= final_momentum <= 1.0:
            raise ValueError(
                f"need 0 <= base_momentum <= final_momentum <= 1, got {base_momentum}, {final_momentum}"
            )
        self.target = copy.deepcopy(online)
        self.target.requires_grad_(False)
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.total_steps = total_steps

    @torch.no_grad()
    def update(self, online: nn.Module, step: int) -> float:
        """One EMA step toward ``online``; returns the momentum used."""
        m = ema_momentum(step, self.total_steps, self.base_momentum, self.final_momentum)
        for p_t, p_o in zip(self.target.parameters(), online.parameters(), strict=True):
            p_t.lerp_(p_o.detach(), 1.0 - m)
        for b_t, b_o in zip(self.target.buffers(), online.buffers(), strict=True):
            b_t.copy_(b_o)
        return m

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        with torch.no_grad():  # stop-gradient
            return self.target(*args, **kwargs).detach()
