"""SIGReg: null value, sensitivity to collapse/shift/scale, invariances, fresh directions, gradients.

Reference (docs/design.md): LeJEPA's statistic (17 points on [0, 3], batch-size scaled) is ~1.1 on
N(0, I) and ~200 on a rank-1 batch, for D=64, N=512.
"""

from __future__ import annotations

import pytest
import torch

from forethought.objectives import SIGReg

D, N, M = 64, 512, 256


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _stat(x: torch.Tensor, seed: int = 0) -> float:
    return float(SIGReg(num_projections=M)(x, generator=_gen(seed)))


def test_null_value_on_isotropic_gaussian() -> None:
    vals = [_stat(torch.randn(N, D, generator=_gen(10 + i)), seed=i) for i in range(5)]
    mean = sum(vals) / len(vals)
    # E[N |phi_N - phi|^2] = 1 - exp(-t^2); the weighted integral over R is ~1.05.
    assert 0.8 < mean < 1.4, vals


def test_large_on_collapsed_shifted_and_scaled() -> None:
    g = _gen(1)
    x = torch.randn(N, D, generator=g)
    u = torch.randn(D, generator=g)
    rank1 = torch.randn(N, 1, generator=g) * (u / u.norm())
    assert 150 < _stat(rank1) < 260  # reference ~200
    assert _stat(torch.zeros(N, D)) > 150  # complete collapse
    assert _stat(x + 1.0) > 50  # shifted
    assert _stat(2.0 * x) > 50  # scaled up: no per-projection standardization
    assert _stat(0.5 * x) > 30  # scaled down


def test_sine_term_is_kept() -> None:
    """A half-normal has exactly the cosine transform of N(0, 1); only the sine term sees it."""
    x = torch.randn(N, 1, generator=_gen(3)).abs()
    assert _stat(x) > 20


def test_permutation_invariant_and_deterministic_with_generator() -> None:
    x = torch.randn(N, D, generator=_gen(4))
    perm = torch.randperm(N, generator=_gen(5))
    torch.testing.assert_close(SIGReg(num_projections=M)(x[perm], generator=_gen(0)), SIGReg(num_projections=M)(x, generator=_gen(0)))


def test_fresh_directions_each_call_and_reproducible_by_seed() -> None:
    x = torch.randn(64, D, generator=_gen(6))
    reg = SIGReg(num_projections=16, seed=7)
    a, b = float(reg(x)), float(reg(x))
    assert a != b  # new directions on the second call
    reg2 = SIGReg(num_projections=16, seed=7)
    assert [float(reg2(x)), float(reg2(x))] == [a, b]  # same seed, same sequence (DDP ranks agree)


def test_per_step_averages_over_time() -> None:
    z = torch.randn(N, 3, 8, generator=_gen(8))
    z[:, 1] = 0.0  # step 1 collapsed
    reg = SIGReg(num_projections=32)
    per_step = float(reg(z, generator=_gen(0)))
    steps = [float(reg(z[:, t], generator=_gen(0))) for t in range(3)]
    assert per_step == pytest.approx(sum(steps) / 3, rel=1e-5)


def test_gradient_descent_undoes_collapse() -> None:
    """The gradient is useful: from a nearly collapsed start, descent spreads the samples."""
    x = (0.01 * torch.randn(256, 8, generator=_gen(9))).requires_grad_()
    reg = SIGReg(num_projections=64, seed=0)
    start = float(reg(x.detach(), generator=_gen(0)))
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(150):
        loss = reg(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = float(reg(x.detach(), generator=_gen(0)))
    assert start > 50 and end < 3.0, (start, end)
    assert 0.7 < float(x.detach().std(dim=0).mean()) < 1.3


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        SIGReg()(torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(N, D\) or \(B, T, D\)"):
        SIGReg()(torch.randn(2, 3, 4, 5))
