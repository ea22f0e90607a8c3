"""SSD: pre-drafted (cache hit) and freshly drafted (miss) rounds give the same rollout."""

from __future__ import annotations

import torch

from forethought.speculative.draft import DraftConfig, DraftPredictor
from forethought.speculative.ssd import SSDStats, ssd_rollout
from tests.speculative.conftest import A, D, HIST, SmoothDraft, TargetAsDraft, inputs
from tests.speculative.test_rollout import _one_step_deviation


def test_hits_and_misses_give_the_same_result(model):
    z, a, past = inputs(3, HIST, 40, seed=6)
    draft = SmoothDraft(model.predictor, 0.1)
    kw = dict(gamma=4, epsilon=0.05, scale=1.0)
    with_cache, without = SSDStats(), SSDStats()
    out = ssd_rollout(model.predictor, draft, z, a, past, stats=with_cache, **kw)
    ref = ssd_rollout(model.predictor, draft, z, a, past, stats=without, pre_draft=False, **kw)
    assert with_cache.hits > 0 and with_cache.misses > 0  # both paths ran
    assert without.hits == 0
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    one = ssd_rollout(model.predictor, draft, z[:1], a[:1], past[:1], **kw)  # B = 1: the same ops, bit for bit
    assert torch.equal(one, ssd_rollout(model.predictor, draft, z[:1], a[:1], past[:1], pre_draft=False, **kw))
    assert _one_step_deviation(model, z, a, past, out).max() <= 0.05 * (1 + 1e-4)


def test_perfect_draft_always_hits_and_epsilon_zero_is_plain(model):
    z, a, past = inputs(2, HIST, 21, seed=7)
    st = SSDStats()
    perfect = TargetAsDraft(model.predictor)
    out = ssd_rollout(model.predictor, perfect, z, a, past, gamma=4, epsilon=1e-4, scale=1.0, stats=st)
    ref = model.rollout(z, a, past)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert st.hit_rate == 1.0 - 2 / (st.hits + st.misses)  # every round after the first hits (2 rows)
    exact = ssd_rollout(model.predictor, DraftPredictor(DraftConfig(D, A, HIST)), z, a, past, gamma=3, epsilon=0.0)
    torch.testing.assert_close(exact, ref, rtol=1e-4, atol=1e-4)
