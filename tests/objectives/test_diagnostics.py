"""Collapse diagnostics: effective rank and per-dimension std."""

from __future__ import annotations

import torch

from forethought.objectives import collapse_diagnostics, effective_rank, per_dim_std


def test_effective_rank_extremes() -> None:
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(4096, 32, generator=g)
    assert 28 < effective_rank(iso) <= 32
    rank1 = torch.randn(512, 1, generator=g) * torch.randn(32, generator=g)
    assert effective_rank(rank1) < 1.05
    rank4 = torch.randn(4096, 4, generator=g) @ torch.randn(4, 32, generator=g)
    assert 2 < effective_rank(rank4) < 4.5
    assert effective_rank(torch.ones(16, 8)) == 0.0


def test_std_and_bundle() -> None:
    z = torch.randn(64, 3, 8) * torch.linspace(0.1, 2.0, 8)
    std = per_dim_std(z)
    assert std["min"] < 0.2 < 1.5 < std["max"]
    d = collapse_diagnostics(z, prediction_error=torch.tensor(0.5), regularizer=1.2)
    assert set(d) == {
        "diag/effective_rank", "diag/std_min", "diag/std_mean", "diag/std_max",
        "diag/prediction_error", "diag/regularizer",
    }
    assert d["diag/prediction_error"] == 0.5
