"""Model-predictive path integral control (Williams et al. 2017; as in TD-MPC2's planner).

Per episode: sample ``samples`` sequences around the mean, keep the ``elites`` cheapest (as
TD-MPC2 does), weight them by ``softmax(-s / temperature)`` and move the mean and std to their
weighted average and spread. ``s = (cost - min) / (max - min)`` over the episode's elites, so the
temperature is scale free (the same setting works for L1 and L2 latent costs and for a cost
that shrinks as the plan improves); low temperatures approach the single best sample, high ones
plain CEM. The mean is one of the samples; the best sequence seen is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.planning.common import GaussianSearch, check_sampling


@dataclass(frozen=True)
class MPPIConfig:
    """MPPI settings; the budget is ``samples * iterations`` objective evaluations per episode.

    Attributes:
        samples: candidate sequences per iteration and episode (the mean is one of them).
        iterations: updates of the sampling distribution.
        elites: cheapest candidates that get a weight (default: 10% of samples, at least 2).
        temperature: softmax temperature relative to the elites' cost range (smaller = greedier).
        init_std: initial standard deviation in normalized action units.
        min_std: floor of the standard deviation.
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
    temperature: float = 0.5
    init_std: float = 1.0
    min_std: float = 0.05
    noise_beta: float = 0.0
    frameskip: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(self, "MPPI")
        if not self.temperature > 0:
            raise ValueError(f"MPPI temperature must be > 0 (it is relative to the elites' cost range; try 0.1-1), "
                             f"got {self.temperature}")

class MPPI(GaussianSearch):
    """Information-theoretic MPC: exponentially weighted averaging of sampled sequences."""

    config_class = MPPIConfig
    config: MPPIConfig

    def refit(self, mean: Tensor, std: Tensor, elites: Tensor, elite_costs: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi = elite_costs[:, :1], elite_costs[:, -1:]
        score = ((elite_costs - lo) / (hi - lo).clamp_min(1e-12)).nan_to_num(nan=1.0)  # in [0, 1]
        w = torch.softmax(-score / self.config.temperature, dim=1)[:, :, None, None]  # (B, K, 1, 1)
        mean = (w * elites).sum(dim=1)
        std = (w * (elites - mean[:, None]).pow(2)).sum(dim=1).sqrt().clamp_min(self.config.min_std)
        return mean, std
