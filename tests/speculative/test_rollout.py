"""Deterministic speculative rollout: exactness at epsilon 0, the epsilon bound, per-row batching."""

from __future__ import annotations

import math

import pytest
import torch

from forethought.models.rollout import autoregressive_rollout
from forethought.speculative.draft import DraftConfig, DraftPredictor
from forethought.speculative.rollout import speculative_rollout, verify_round
from forethought.speculative.rounds import SpeculativeStats
from tests.speculative.conftest import A, D, HIST, SmoothDraft, TargetAsDraft, inputs, tiny_model


@pytest.mark.parametrize("L", [1, 2, 3, 5])
@pytest.mark.parametrize("gamma", [1, 4])
def test_epsilon_zero_equals_plain_rollout(model, L, gamma):
    z, a, past = inputs(3, L, 13)
    draft = DraftPredictor(DraftConfig(D, A, HIST))  # copy-last draft: never exactly right
    with torch.no_grad():
        ref = model.rollout(z, a, past)
        st = SpeculativeStats()
        out = speculative_rollout(model.predictor, draft, z, a, past, gamma=gamma, epsilon=0.0, stats=st)
    assert st.accepted == 0
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert (ref[:, -1] - ref[:, 0]).abs().max() > 0.1  # the dynamics are not trivial


def test_plain_and_speculative_rollouts_are_separate_calls(model):
    """``model.rollout`` is the plain rollout; speculation is ``speculative_rollout`` on the predictor."""
    z, a, past = inputs(2, 3, 9)
    draft = DraftPredictor(DraftConfig(D, A, HIST))
    with torch.no_grad():
        plain = model.rollout(z, a, past)
        # The fast rollout (KV cache for a local predictor), equal to the step-by-step one to float rounding.
        torch.testing.assert_close(plain, autoregressive_rollout(model.predictor, z, a, past), rtol=1e-4, atol=1e-4)
        spec = speculative_rollout(model.predictor, draft, z, a, past, gamma=4, epsilon=0.0)
        torch.testing.assert_close(spec, plain, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="load_draft"):
        speculative_rollout(model.predictor, DraftPredictor(DraftConfig(D + 1, A, HIST)), z, a, past)
    with pytest.raises(ValueError, match="load_draft"):
        speculative_rollout(model.predictor, DraftPredictor(DraftConfig(D, A + 1, HIST)), z, a, past)


@pytest.mark.parametrize("H,gamma", [(12, 3), (10, 4), (1, 5), (7, 8)])
def test_perfect_draft_accepts_every_draft_and_uses_the_bonus(model, H, gamma):
    z, a, past = inputs(2, HIST, H)
    st = SpeculativeStats()
    with torch.no_grad():
        out = speculative_rollout(model.predictor, TargetAsDraft(model.predictor), z, a, past,
                                  gamma=gamma, epsilon=1e-3, scale=1.0, stats=st)  # latents up to ~70: float noise
        ref = model.rollout(z, a, past)
    assert st.acceptance_rate == 1.0
    assert st.target_calls == math.ceil(H / (gamma + 1))  # gamma drafts + the target's bonus per call
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def _one_step_deviation(model, z, a, past, out):
    """``||out_k - target(out_{<k})||`` for every step: ``(B, H)``."""
    seq = torch.cat([z, out], dim=1)
    acts = torch.cat([past, a], dim=1)
    pred = model.predictor.predict_sequence(seq[:, :-1], acts)[:, z.shape[1] - 1 :]
    return (pred - out).norm(dim=-1)


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_output_is_an_epsilon_pseudo_trajectory(model, eps):
    z, a, past = inputs(4, HIST, 30, seed=1)
    scale = 2.0
    draft = TargetAsDraft(model.predictor, noise=2 * eps * scale, seed=3)  # about half the drafts pass
    st = SpeculativeStats()
    with torch.no_grad():
        out = speculative_rollout(model.predictor, draft, z, a, past, gamma=4, epsilon=eps, scale=scale, stats=st)
        dev = _one_step_deviation(model, z, a, past, out)
    assert 0.2 < st.acceptance_rate < 0.8  # both branches ran
    assert dev.max() <= eps * scale * (1 + 1e-4)
    assert dev.max() > 0.2 * eps * scale  # accepted drafts really deviate: the bound is not vacuous


def test_a_tighter_epsilon_rejects_what_a_looser_one_accepts(model):
    z, a, past = inputs(4, HIST, 30, seed=2)
    rates = []
    for eps in (0.01, 0.05, 1.0):
        st = SpeculativeStats()
        with torch.no_grad():
            speculative_rollout(model.predictor, SmoothDraft(model.predictor, 0.1), z, a, past,
                                gamma=4, epsilon=eps, scale=1.0, stats=st)
        rates.append(st.acceptance_rate)
    assert 0 < rates[0] < rates[1] < rates[2] == 1.0


def test_rows_are_independent(model):
    """Per-row accepted lengths: a batch equals its rows rolled out one at a time."""
    z, a, past = inputs(5, HIST, 25, seed=4)
    draft = SmoothDraft(model.predictor, 0.1)
    kw = dict(gamma=5, epsilon=0.05, scale=1.0)
    with torch.no_grad():
        st = SpeculativeStats()
        batch = speculative_rollout(model.predictor, draft, z, a, past, stats=st, **kw)
        rows = torch.cat([speculative_rollout(model.predictor, draft, z[i : i + 1], a[i : i + 1], past[i : i + 1], **kw)
                          for i in range(5)])
    assert 0.0 < st.acceptance_rate < 1.0
    torch.testing.assert_close(batch, rows, rtol=1e-4, atol=1e-4)


def test_bad_arguments_raise(model):
    z, a, past = inputs(1, HIST, 4)
    draft = DraftPredictor(DraftConfig(D, A, HIST))
    for kw, msg in (({"gamma": 0}, "gamma"), ({"epsilon": -1.0}, "epsilon"), ({"scale": 0.0}, "scale")):
        with pytest.raises(ValueError, match=msg):
            speculative_rollout(model.predictor, draft, z, a, past, **kw)
    with pytest.raises(ValueError, match="history"):
        speculative_rollout(tiny_model(history=2).predictor, draft, z, a, past)


def test_verification_gives_every_draft_its_own_window(model):
    """One causal pass over context + drafts equals the target run on each ``h``-frame window apart."""
    g = torch.Generator().manual_seed(12)
    zc, drafts = torch.randn(2, HIST, D, generator=g), torch.randn(2, 4, D, generator=g)
    ac = torch.randn(2, HIST + 4, A, generator=g)
    seq = torch.cat([zc, drafts], dim=1)  # (2, h + gamma, D)
    with torch.no_grad():
        out = verify_round(model.predictor, zc, drafts, ac)  # (2, gamma + 1, D)
        per_window = torch.stack([model.predictor.predict_sequence(seq[:, j : j + HIST], ac[:, j : j + HIST])[:, -1]
                                  for j in range(5)], dim=1)
    assert out.shape == (2, 5, D)
    torch.testing.assert_close(out, per_window, rtol=1e-5, atol=1e-5)
    assert (per_window[:, 1:] - per_window[:, :1]).abs().max() > 1e-2  # the windows really differ
