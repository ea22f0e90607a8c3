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
from typing import ClassVar

import torch
from torch import Tensor

from forethought.planning.common import GaussianSearch, SamplingConfig


@dataclass(frozen=True)
class MPPIConfig(SamplingConfig):
    """MPPI settings: the shared sampling fields (:class:`~forethought.planning.common.SamplingConfig`;
    the ``elites`` are the candidates that get a weight) and

    Attributes:
        temperature: softmax temperature relative to the elites' cost range (smaller = greedier).
    """

    temperature: float = 0.5
    method: ClassVar[str] = "MPPI"

    def __post_init__(self) -> None:
        super().__post_init__()
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
