"""VICReg variance + covariance regularizer (Bardes, Ponce & LeCun 2022), without the invariance term.

The prediction loss plays the role of VICReg's invariance term. VICReg weighs invariance,
variance and covariance 25 : 25 : 1; with the prediction loss at weight 1 that is
``variance_weight=1`` and ``covariance_weight=0.04``, the defaults here.

    variance   = mean_d relu(gamma - sqrt(Var(z_d) + eps))
    covariance = sum_{i != j} Cov(z)_{ij}^2 / D

Under ``torch.distributed`` the embeddings are all-gathered (differentiably) so the statistics are
those of the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.objectives.collectives import all_gather_cat


def variance_loss(x: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """Hinge on the per-dimension std of ``x (N, D)`` -> scalar."""
    std = torch.sqrt(x.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_loss(x: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances of ``x (N, D)`` divided by ``D`` -> scalar."""
    n, d = x.shape
    xc = x - x.mean(dim=0)
    cov = (xc.T @ xc) / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.square().sum() / d


class VICReg(nn.Module):
    """``variance_weight * variance + covariance_weight * covariance`` of embeddings.

    Input ``(N, D)`` or ``(B, T, D)``; for the latter the frames are pooled (``B*T`` samples): the
    variance and covariance estimates do not assume independent samples the way SIGReg's
    ``N``-scaled statistic does.
    """

    name = "vicreg"
    needs_target_encoder = False
    weight = 1.0  # the variance/covariance weights above already carry VICReg's 25:25:1 ratios

    def __init__(
        self, variance_weight: float = 1.0, covariance_weight: float = 0.04, gamma: float = 1.0, eps: float = 1e-4
    ) -> None:
        super().__init__()
        if variance_weight < 0 or covariance_weight < 0 or gamma <= 0:
            raise ValueError("VICReg weights must be >= 0 and gamma > 0")
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.gamma = gamma
        self.eps = eps

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim not in (2, 3):
            raise ValueError(f"VICReg expects embeddings (N, D) or (B, T, D), got shape {tuple(z.shape)}")
        x = all_gather_cat(z.reshape(-1, z.shape[-1]).float())
        if x.shape[0] < 2:
            raise ValueError("VICReg needs at least 2 samples")
        return self.variance_weight * variance_loss(x, self.gamma, self.eps) + self.covariance_weight * covariance_loss(x)
