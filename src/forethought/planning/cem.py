"""Cross-entropy method (Rubinstein 1999; the planner of PlaNet, DINO-WM, LeWM).

Per episode: sample ``samples`` sequences from a diagonal Gaussian ``N(mean, std)`` clamped to
the bounds, keep the ``elites`` cheapest, refit ``mean``/``std`` on them (optionally blended with
the previous mean by ``momentum``), repeat. The current mean is always one of the samples, so the
best-so-far never gets worse than the warm start. Elites are chosen and averaged per episode
(``topk`` along the candidate axis): averaging across the batch axis would give every episode the
same plan (a pitfall listed in DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.planning.common import Best, Seeded, check_problem, check_sampling, evaluate, gaussian_candidates
from forethought.planning.protocols import Objective, PlanResult


@dataclass(frozen=True)
class CEMConfig:
    """CEM settings; the budget is ``samples * iterations`` objective evaluations per episode.

    Attributes:
        samples: candidate sequences per iteration and episode (the mean is one of them).
        iterations: refits of the sampling distribution.
        elites: cheapest candidates the distribution is refitted on (default: 10% of samples, at least 2).
        momentum: weight of the previous mean in the new one (0 = plain CEM).
        init_std: initial standard deviation in normalized action units.
        min_std: floor of the standard deviation, so the search never freezes completely.
        seed: seed of the planner's random stream.
    """

    samples: int = 300
    iterations: int = 30
    elites: int | None = None
    momentum: float = 0.0
    init_std: float = 1.0
    min_std: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(self, "CEM")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"CEM momentum must be in [0, 1), got {self.momentum}")

class CEM(Seeded):
    """Cross-entropy method over ``(B, samples, H, A)`` candidates per iteration."""

    config_class = CEMConfig
    config: CEMConfig

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner`."""
        cfg = self.config
        mean, low, high = check_problem(init, low, high)
        B, H, A = mean.shape
        gen = self.generator(mean.device)
        std = torch.full_like(mean, cfg.init_std)
        best = Best(mean)
        with torch.inference_mode():
            for _ in range(cfg.iterations):
                cand = gaussian_candidates(mean, std, cfg.samples, gen, low, high)  # (B, N, H, A)
                costs = evaluate(objective, cand)  # (B, N)
                best.update(cand, costs)
                best.end_iteration()
                idx = costs.topk(cfg.elites, dim=1, largest=False).indices  # (B, K): per episode
                elites = torch.gather(cand, 1, idx[:, :, None, None].expand(B, cfg.elites, H, A))
                new_mean = elites.mean(dim=1)  # over the elites of each episode, never over B
                std = elites.std(dim=1, unbiased=False).clamp_min(cfg.min_std) if cfg.elites > 1 else std
                mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
        return PlanResult(best.actions.clone(), best.cost.clone(), torch.stack(best.trace), cfg.samples * cfg.iterations)
