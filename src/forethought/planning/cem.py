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

from torch import Tensor

from forethought.planning.common import GaussianSearch, check_sampling


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
        noise_beta: exponent of the perturbations' power spectrum over time, ``1 / f**beta``
            (:func:`~forethought.planning.common.colored_noise`; iCEM): 0 = white noise (the
            classic method), 2-4 = smooth samples that keep a direction for many steps.
        frameskip: env steps per model action (``model.action_dim // env_action_dim``), so that
            colored noise runs over env steps; irrelevant for white noise.
        seed: seed of the planner's random stream.
    """

    samples: int = 300
    iterations: int = 30
    elites: int | None = None
    momentum: float = 0.0
    init_std: float = 1.0
    min_std: float = 0.05
    noise_beta: float = 0.0
    frameskip: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(self, "CEM")
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
