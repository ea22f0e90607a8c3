"""Cross-entropy method (Rubinstein 1999; the planner of PlaNet, DINO-WM, LeWM).

Per episode: sample ``samples`` sequences from a diagonal Gaussian ``N(mean, std)`` clamped to
the bounds, keep the ``elites`` cheapest, refit ``mean``/``std`` on them (optionally blended with
the previous mean by ``momentum``), repeat. The current mean is always one of the samples, so the
best-so-far never gets worse than the warm start. Elites are chosen and averaged per episode
(``topk`` along the candidate axis): averaging across the batch axis would give every episode the
same plan (a pitfall listed in docs/design.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from forethought.planning.common import GaussianSearch, SamplingConfig


@dataclass(frozen=True)
class CEMConfig(SamplingConfig):
    """CEM settings: the shared sampling fields (:class:`~forethought.planning.common.SamplingConfig`;
    the distribution is refitted on the ``elites``) and

    Attributes:
        momentum: weight of the previous mean in the new one (0 = plain CEM).
    """

    momentum: float = 0.0
    method: ClassVar[str] = "CEM"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"CEM momentum must be in [0, 1), got {self.momentum}")


class CEM(GaussianSearch):
    """Cross-entropy method over ``(B, samples, H, A)`` candidates per iteration."""

    config_class = CEMConfig
    config: CEMConfig

    def refit(self, mean: Tensor, std: Tensor, elites: Tensor, elite_costs: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.config
        new_mean = elites.mean(dim=1)  # over the elites of each episode, never over B
        std = elites.std(dim=1, unbiased=False).clamp_min(cfg.min_std) if cfg.elites > 1 else std
        return cfg.momentum * mean + (1 - cfg.momentum) * new_mean, std
