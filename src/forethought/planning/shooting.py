"""Random shooting: the baseline every planner must beat at equal budget.

Draws ``samples * iterations`` sequences uniformly in the action box (``iterations`` chunks of
``samples``, so memory stays that of one CEM iteration) and keeps the cheapest; the initial plan
is evaluated too, so a warm start is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.planning.common import Best, Seeded, anytime, check_problem, score_candidates
from forethought.planning.protocols import Objective, PlanResult


@dataclass(frozen=True)
class ShootingConfig:
    """Random-shooting settings; the budget is ``samples * iterations`` evaluations per episode.

    Attributes:
        samples: sequences per objective call (the initial plan is the first one).
        iterations: objective calls.
        seed: seed of the planner's random stream.
    """

    samples: int = 300
    iterations: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 2 or self.iterations < 1:
            raise ValueError(f"random shooting needs samples >= 2 and iterations >= 1, got {self.samples}, {self.iterations}")


class RandomShooting(Seeded):
    """Uniform samples in the bounds, keep the best."""

    config_class = ShootingConfig
    config: ShootingConfig

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor, *,
             deadline: float | None = None) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner` (anytime with a ``deadline``)."""
        cfg = self.config
        init, low, high = check_problem(init, low, high)
        B, H, A = init.shape
        gen = self.generator(init.device)
        best = Best(init)
        with torch.inference_mode():
            for _ in anytime(cfg.iterations, deadline, init.device):
                u = torch.rand((B, cfg.samples - 1, H, A), generator=gen, device=init.device, dtype=init.dtype)
                cand = torch.cat([best.actions[:, None], low + (high - low) * u], dim=1)
                best.update(cand, score_candidates(objective, cand))
                best.end_iteration()
        return PlanResult(best.actions.clone(), best.cost.clone(), torch.stack(best.trace), cfg.samples * len(best.trace))
