"""Collapse diagnostics for embeddings: effective rank and per-dimension spread.

Collapse shows up here before it shows up in the losses: a complete collapse drives the
per-dimension std to 0, a dimensional collapse drives the effective rank far below ``D``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(z: Tensor) -> Tensor:
    if z.ndim not in (2, 3):
        raise ValueError(f"expected embeddings (N, D) or (B, T, D), got shape {tuple(z.shape)}")
    return z.detach().reshape(-1, z.shape[-1]).float()


@torch.no_grad()
def effective_rank(z: Tensor, eps: float = 1e-12) -> float:
    """``exp(entropy(s / sum(s)))`` of the singular values ``s`` of the centered embeddings.

    Roy & Vetterli (2007). In ``[1, min(N, D)]``: ``D`` for isotropic data, 1 for a rank-1 batch.
    """
    x = _flat(z)
    x = x - x.mean(dim=0)
    s = torch.linalg.svdvals(x)
    if float(s.sum()) <= eps:
        return 0.0  # every sample identical: no spread at all
    p = s / s.sum()
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return float(torch.exp(entropy))


@torch.no_grad()
def per_dim_std(z: Tensor) -> dict[str, float]:
    """Min / mean / max over dimensions of the per-dimension std across samples."""
    std = _flat(z).std(dim=0)
    return {"min": float(std.min()), "mean": float(std.mean()), "max": float(std.max())}


@torch.no_grad()
def collapse_diagnostics(
    z: Tensor, prediction_error: float | Tensor | None = None, regularizer: float | Tensor | None = None
) -> dict[str, float]:
    """Everything worth logging about embeddings ``z``, keyed ``diag/...``."""
    std = per_dim_std(z)
    out = {
        "diag/effective_rank": effective_rank(z),
        "diag/std_min": std["min"],
        "diag/std_mean": std["mean"],
        "diag/std_max": std["max"],
    }
    if prediction_error is not None:
        out["diag/prediction_error"] = float(prediction_error)
    if regularizer is not None:
        out["diag/regularizer"] = float(regularizer)
    return out
