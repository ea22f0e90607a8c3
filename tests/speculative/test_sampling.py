"""Exact speculative sampling: two-sample tests against plain target sampling, with negative controls.

The statistic: two-sample Kolmogorov-Smirnov distances on each coordinate of the whole sampled
trajectory and on fixed random projections of it, compared with the KS critical value at
alpha = 1e-3 Bonferroni-corrected over all statistics. Seeds are fixed, so the tests are
deterministic; the negative controls (the draft's own distribution, and resampling from p instead
of the residual after a rejection, the classic bug) must fail the same test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from forethought.speculative.rounds import SpeculativeStats
from forethought.speculative.sampling import (
    GaussianHead,
    autoregressive_sample,
    gaussian_log_prob,
    sample_residual,
    speculative_sample,
)
from tests.speculative.conftest import D, inputs, tiny_model

N = 4000  # trajectories per sampler


class ShiftedMean(nn.Module):
    """A draft mean: the target's prediction shifted by ``shift`` along a fixed direction."""

    def __init__(self, target: nn.Module, shift: float) -> None:
        super().__init__()
        self.target, self.history = target, target.history
        u = torch.randn(D, generator=torch.Generator().manual_seed(5))
        self.offset = shift * u / u.norm()

    def step(self, z: Tensor, a: Tensor) -> Tensor:
        return self.target.predict_sequence(z, a)[:, -1] + self.offset


def heads(shift: float = 0.3):
    model = tiny_model()
    target = GaussianHead(model.predictor, D, init_std=0.3)
    with torch.no_grad():  # an input-dependent std, so the test covers heteroscedastic heads
        target.std.weight.normal_(0, 0.02, generator=torch.Generator().manual_seed(1))
    draft = GaussianHead(ShiftedMean(model.predictor, shift), D, init_std=0.3)
    draft.std.load_state_dict(target.std.state_dict())  # same std map: p and q differ by the shifted mean
    return target.eval(), draft.eval()


def ks_max_ratio(x: Tensor, y: Tensor, projections: int = 16) -> float:
    """Largest two-sample KS distance divided by its Bonferroni-corrected critical value (alpha 1e-3).

    ``x (n, F)``, ``y (m, F)``; statistics on each of the ``F`` coordinates and ``projections``
    random unit directions. > 1 rejects "same distribution".
    """
    dirs = torch.randn(x.shape[1], projections, generator=torch.Generator().manual_seed(0))
    dirs = dirs / dirs.norm(dim=0)
    xs, ys = torch.cat([x, x @ dirs], 1), torch.cat([y, y @ dirs], 1)
    n, m, k = xs.shape[0], ys.shape[0], xs.shape[1]
    worst = 0.0
    for f in range(k):
        a, b = xs[:, f].sort().values, ys[:, f].sort().values
        grid = torch.cat([a, b])
        cdf_a = torch.searchsorted(a, grid, right=True) / n
        cdf_b = torch.searchsorted(b, grid, right=True) / m
        worst = max(worst, float((cdf_a - cdf_b).abs().max()))
    alpha = 1e-3 / k
    crit = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
    return worst / crit


def trajectories(sampler, seed: int, H: int = 4) -> Tensor:
    z, a, past = inputs(1, 3, H, seed=11)
    rep = lambda t: t.expand(N, *t.shape[1:]).contiguous()  # noqa: E731
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return sampler(rep(z), rep(a), rep(past), gen).flatten(1)  # (N, H * D)


def test_speculative_sampling_matches_the_target_distribution():
    target, draft = heads()
    st = SpeculativeStats()
    ref = trajectories(lambda z, a, p, g: autoregressive_sample(target, z, a, p, g), seed=1)
    spec = trajectories(lambda z, a, p, g: speculative_sample(target, draft, z, a, p, gamma=2, gen=g, stats=st), seed=2)
    assert 0.1 < st.acceptance_rate < 0.9  # acceptances, rejections (residual) and bonuses all occur
    assert ks_max_ratio(spec, ref) < 1.0
    # The test has power: a second plain-target sample passes, the draft's own distribution fails.
    assert ks_max_ratio(trajectories(lambda z, a, p, g: autoregressive_sample(target, z, a, p, g), seed=3), ref) < 1.0
    assert ks_max_ratio(trajectories(lambda z, a, p, g: autoregressive_sample(draft, z, a, p, g), seed=4), ref) > 1.0


def test_resampling_from_p_after_a_rejection_is_detected():
    """Negative control: the classic bug (redraw from p, not from the residual) biases toward q."""
    target, draft = heads(shift=0.3)

    def from_p(p, q, gen):
        return p[0] + p[1] * torch.randn(p[0].shape, generator=gen)

    ref = trajectories(lambda z, a, p, g: autoregressive_sample(target, z, a, p, g), seed=1)
    wrong = trajectories(lambda z, a, p, g: speculative_sample(target, draft, z, a, p, gamma=2, gen=g,
                                                               residual_sampler=from_p), seed=2)
    right = trajectories(lambda z, a, p, g: speculative_sample(target, draft, z, a, p, gamma=2, gen=g), seed=2)
    assert ks_max_ratio(wrong, ref) > 1.0
    assert ks_max_ratio(right, ref) < 1.0


def test_sample_residual_has_the_residual_density():
    """1-D check against the analytic CDF of (p - q)_+ for p = N(0, 1), q = N(1, 1)."""
    gen = torch.Generator().manual_seed(0)
    n = 20000
    p = (torch.zeros(n, 1), torch.ones(n, 1))
    q = (torch.ones(n, 1), torch.ones(n, 1))
    y = sample_residual(p, q, gen)[:, 0].sort().values
    # (p - q)_+ lives on y < 1/2; its CDF is (Phi(y) - Phi(y - 1)) / (Phi(1/2) - Phi(-1/2)) there.
    phi = lambda t: 0.5 * (1 + torch.erf(t / math.sqrt(2)))  # noqa: E731
    cdf = (phi(y) - phi(y - 1)) / (phi(torch.tensor(0.5)) - phi(torch.tensor(-0.5)))
    emp = torch.arange(1, n + 1) / n
    assert y.max() < 0.5
    assert (cdf - emp).abs().max() < 1.95 * math.sqrt(1 / n)  # KS one-sample, alpha 1e-3


def test_gaussian_log_prob_matches_torch_distributions():
    mean, std, x = torch.randn(5, D), torch.rand(5, D) + 0.1, torch.randn(5, D)
    ref = torch.distributions.Normal(mean, std).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(x, mean, std), ref)


def test_bad_heads_raise():
    with pytest.raises(ValueError, match="init_std"):
        GaussianHead(tiny_model().predictor, D, init_std=0.0)
