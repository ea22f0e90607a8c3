"""The KV-cached candidate rollout and planning's CandidateRollout (cast-once weights, opt-in
torch.compile): each held equal to the step-by-step reference rollout."""

from __future__ import annotations

import pytest
import torch

from forethought.models import MLPPredictor, PredictorConfig, TransformerPredictor
from forethought.models.fast_rollout import CandidateRollout
from forethought.models.rollout import rollout_candidates

D, A = 8, 3


def _predictor(history: int, depth: int = 2, width: int = 32) -> TransformerPredictor:
    torch.manual_seed(0)
    p = TransformerPredictor(D, A, history, PredictorConfig(width=width, depth=depth, heads=4))
    with torch.no_grad():  # zero-initialised gates and head would hide every block: randomise
        for param in p.parameters():
            param.normal_(0, 0.3)
    return p.eval()


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("history", [1, 2, 3, 4])
def test_cached_rollout_equals_reference_float32(depth: int, history: int) -> None:
    p = _predictor(history, depth)
    fast_planner = CandidateRollout(p)
    B, N, H = 2, 5, 6
    for L in range(1, history + 1):
        z, past, acts = torch.randn(B, L, D), torch.randn(B, L - 1, A), torch.randn(B, N, H, A)
        with torch.inference_mode():
            fast = rollout_candidates(p, z, acts, past, fast=True)
            ref = rollout_candidates(p, z, acts, past, fast=False)
            planner = fast_planner(z, acts, past)
        assert fast.dtype == torch.float32 and fast.shape == (B, N, H, D)
        # Float32 reassociation only (an error of the algorithm would be ~0.1 with these weights).
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(planner, ref, rtol=1e-4, atol=1e-4)


def test_bf16_is_close_to_float32_and_to_autocast_reference() -> None:
    p = _predictor(3, depth=3)
    z, past, acts = torch.randn(2, 3, D), torch.randn(2, 2, A), torch.randn(2, 16, 5, A)
    with torch.inference_mode():
        ref32 = rollout_candidates(p, z, acts, past, fast=False)
        fast16 = CandidateRollout(p, torch.bfloat16)(z, acts, past)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto16 = rollout_candidates(p, z, acts, past, fast=True)
            ref16 = rollout_candidates(p, z, acts, past, fast=False)
    assert fast16.dtype == torch.float32  # the latents accumulate in float32
    torch.testing.assert_close(auto16, fast16, rtol=0, atol=0)  # autocast runs the same bf16 weights
    scale = ref32.abs().max()
    err_fast, err_ref = (fast16 - ref32).abs().max(), (ref16 - ref32).abs().max()
    assert err_fast > 0  # it did run in bfloat16
    # bf16 error of the same order as autocast's own (both are ~1e-2 relative here).
    assert err_fast < 0.05 * scale and err_fast < 3 * err_ref + 1e-3 * scale


def test_cast_weights_follow_parameter_updates() -> None:
    p = _predictor(2)
    z, past, acts = torch.randn(1, 2, D), torch.randn(1, 1, A), torch.randn(1, 4, 3, A)
    for dtype in (torch.float32, torch.bfloat16):
        fast = CandidateRollout(p, dtype)
        with torch.inference_mode():
            before = fast(z, acts, past)  # builds and caches the cast weights
        with torch.no_grad():
            p.blocks[0].mlp.fc2.weight.mul_(2.0)  # in place: same storage, new version
        with torch.inference_mode():
            after, fresh = fast(z, acts, past), CandidateRollout(p, dtype)(z, acts, past)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, fresh, rtol=0, atol=0)
    p.load_state_dict(_predictor(2).state_dict())  # new tensors, same values as at the start
    fast = CandidateRollout(p)
    with torch.inference_mode():
        torch.testing.assert_close(fast(z, acts, past), rollout_candidates(p, z, acts, past, fast=False),
                                   rtol=1e-4, atol=1e-4)


def test_cached_rollout_gradients_match_reference() -> None:
    p = _predictor(3)
    z, past = torch.randn(2, 3, D), torch.randn(2, 2, A)
    acts = torch.randn(2, 4, 3, A, requires_grad=True)
    (g_ref,) = torch.autograd.grad(rollout_candidates(p, z, acts, past, fast=False).pow(2).sum(), acts)
    (g_fast,) = torch.autograd.grad(rollout_candidates(p, z, acts, past).pow(2).sum(), acts)
    (g_cast,) = torch.autograd.grad(CandidateRollout(p)(z, acts, past).pow(2).sum(), acts)  # the gradient planner's
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(g_cast, g_ref, rtol=1e-4, atol=1e-4)
    # Parameter gradients flow through the module's own rollout (not a detached cast).
    rollout_candidates(p, z, acts.detach(), past).sum().backward()
    assert p.blocks[0].modulation.weight.grad is not None and p.blocks[0].modulation.weight.grad.abs().sum() > 0


def test_candidate_rollout_falls_back_for_predictors_without_a_cache() -> None:
    torch.manual_seed(0)
    p = MLPPredictor(D, A, 2, PredictorConfig(kind="mlp", width=16, depth=1)).eval()
    z, past, acts = torch.randn(2, 2, D), torch.randn(2, 1, A), torch.randn(2, 3, 4, A)
    with torch.inference_mode():
        torch.testing.assert_close(CandidateRollout(p)(z, acts, past), rollout_candidates(p, z, acts, past))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's first import touches torch.jit
def test_compiled_rollout_is_skipped_for_gradients() -> None:
    p = _predictor(3)
    z, past = torch.randn(2, 3, D), torch.randn(2, 2, A)
    acts = torch.randn(2, 4, 3, A, requires_grad=True)
    (g_eager,) = torch.autograd.grad(CandidateRollout(p)(z, acts, past).pow(2).sum(), acts)
    compiled = CandidateRollout(p, compile=True)  # lazy: nothing compiles until a gradient-free call
    (g,) = torch.autograd.grad(compiled(z, acts, past).pow(2).sum(), acts)
    torch.testing.assert_close(g, g_eager, rtol=0, atol=0)
    assert compiled._compiled is None


@pytest.mark.slow  # inductor compiles C++ for a few graphs: ~1 min on one shared core
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compiled_rollout_equals_eager_and_follows_weight_changes() -> None:
    p = _predictor(3)
    z, past, acts = torch.randn(2, 3, D), torch.randn(2, 2, A), torch.randn(2, 5, 4, A)
    compiled = CandidateRollout(p, compile=True)
    with torch.inference_mode():
        out = compiled(z, acts, past)
        ref = rollout_candidates(p, z, acts, past, fast=False)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the weights are frozen into the graph: a change must rebuild it, not go stale
        p.blocks[0].mlp.fc2.weight.mul_(2.0)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(z, acts, past), rollout_candidates(p, z, acts, past, fast=False),
                                   rtol=1e-5, atol=1e-5)


def test_compiling_allows_a_shape_per_history_length_and_batch() -> None:
    """dynamo's default of 8 compiled shapes ran later shapes eagerly (seen in `forethought scale`)."""
    import torch._dynamo.config as dynamo_config

    from forethought.models.fast_rollout import RECOMPILE_LIMIT, _allow_recompiles

    before = dynamo_config.recompile_limit
    try:
        dynamo_config.recompile_limit = 8
        _allow_recompiles()
        assert dynamo_config.recompile_limit == RECOMPILE_LIMIT >= 3 * 5 + 3  # 3 history lengths x 5 pairs + anytime
        dynamo_config.recompile_limit = 1000
        _allow_recompiles()
        assert dynamo_config.recompile_limit == 1000  # never lowered
    finally:
        dynamo_config.recompile_limit = before
