"""Deterministic speculative rollout: exactness at epsilon 0, the epsilon bound, per-row batching."""

from __future__ import annotations

import math

import pytest
import torch

from forethought.models.rollout import autoregressive_rollout
from forethought.speculative.draft import DraftConfig, DraftPredictor
from forethought.speculative.rollout import SpeculativeStats, speculative_rollout
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


def test_world_model_rollout_dispatch(model):
    z, a, past = inputs(2, 3, 9)
    draft = DraftPredictor(DraftConfig(D, A, HIST))
    with torch.no_grad():
        plain = model.rollout(z, a, past)
        # Without a draft: the fast rollout (KV cache for a local predictor), equal to float rounding.
        torch.testing.assert_close(plain, autoregressive_rollout(model.predictor, z, a, past), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.rollout(z, a, past, draft=draft, epsilon=0.0), plain, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="load_draft"):
        model.rollout(z, a, past, draft=DraftPredictor(DraftConfig(D + 1, A, HIST)))


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


def test_fused_verification_equals_predict_sequence(model):
    from forethought.speculative.rollout import _windows, verify_round

    g = torch.Generator().manual_seed(12)
    zc, drafts = torch.randn(2, HIST, D, generator=g), torch.randn(2, 4, D, generator=g)
    ac = torch.randn(2, HIST + 4, A, generator=g)
    seq = torch.cat([zc, drafts], dim=1)
    with torch.no_grad():
        fused = verify_round(model.predictor, zc, drafts, ac)  # eval, no grad: the fused path
        ref = model.predictor.predict_sequence(_windows(seq, HIST), _windows(ac, HIST))[:, -1].view(2, 5, D)
        full = model.predictor.predict_sequence(seq, ac)[:, HIST - 1 :]  # the sliding-window contract
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused, full, rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # with gradients enabled it is predict_sequence itself
        plain = full if model.predictor.attention == "local" else ref  # local: one pass, no windows
        assert torch.equal(verify_round(model.predictor, zc, drafts, ac), plain)
