"""The transformer's fast candidate rollout (issue 4): equal to the reference rollout in float32
and close in bfloat16, cached low-precision weights that follow parameter updates, gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from forethought.models import PredictorConfig, TransformerPredictor
from forethought.models.rollout import rollout_candidates

D, A = 8, 3


def _predictor(history: int, depth: int = 2, width: int = 32, attention: str = "window") -> TransformerPredictor:
    torch.manual_seed(0)
    p = TransformerPredictor(D, A, history, PredictorConfig(width=width, depth=depth, heads=4, attention=attention))
    with torch.no_grad():  # zero-initialised gates and head would hide every block: randomise
        for param in p.parameters():
            param.normal_(0, 0.3)
    return p.eval()


@pytest.mark.parametrize("attention", ["window", "local"])
@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("history", [1, 2, 3, 4])
def test_fast_equals_reference_float32(depth: int, history: int, attention: str) -> None:
    p = _predictor(history, depth, attention=attention)
    B, N, H = 2, 5, 6
    for L in range(1, history + 1):
        z, past, acts = torch.randn(B, L, D), torch.randn(B, L - 1, A), torch.randn(B, N, H, A)
        with torch.inference_mode():
            fast = rollout_candidates(p, z, acts, past, fast=True)
            ref = rollout_candidates(p, z, acts, past, fast=False)
        assert fast.dtype == torch.float32 and fast.shape == (B, N, H, D)
        # Float32 reassociation only (an error of the algorithm would be ~0.1 with these weights).
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("attention", ["window", "local"])
def test_fast_bf16_is_close_to_float32_and_to_autocast_reference(attention: str) -> None:
    p = _predictor(3, depth=3, attention=attention)
    z, past, acts = torch.randn(2, 3, D), torch.randn(2, 2, A), torch.randn(2, 16, 5, A)
    with torch.inference_mode():
        ref32 = rollout_candidates(p, z, acts, past, fast=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast16 = rollout_candidates(p, z, acts, past, fast=True)
            ref16 = rollout_candidates(p, z, acts, past, fast=False)
    assert fast16.dtype == torch.float32  # the latents accumulate in float32
    scale = ref32.abs().max()
    err_fast, err_ref = (fast16 - ref32).abs().max(), (ref16 - ref32).abs().max()
    assert err_fast > 0  # it did run in bfloat16
    # bf16 error of the same order as autocast's own (both are ~1e-2 relative here).
    assert err_fast < 0.05 * scale and err_fast < 3 * err_ref + 1e-3 * scale


def test_cached_weights_follow_parameter_updates() -> None:
    p = _predictor(2)
    z, past, acts = torch.randn(1, 2, D), torch.randn(1, 1, A), torch.randn(1, 4, 3, A)
    for dtype in (torch.float32, torch.bfloat16):
        bf16 = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
        with torch.inference_mode(), bf16:
            before = rollout_candidates(p, z, acts, past)  # builds and caches the cast weights
        with torch.no_grad():
            p.blocks[0].mlp.fc2.weight.mul_(2.0)  # in place: same storage, new version
        twin = copy.deepcopy(p)  # new storage, and deepcopy drops the cache
        with torch.inference_mode(), bf16:
            after, fresh = rollout_candidates(p, z, acts, past), rollout_candidates(twin, z, acts, past)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, fresh, rtol=0, atol=0)
    p.load_state_dict(_predictor(2).state_dict())  # a fresh copy of the original weights
    with torch.inference_mode():
        torch.testing.assert_close(rollout_candidates(p, z, acts, past), rollout_candidates(p, z, acts, past, fast=False))


@pytest.mark.parametrize("attention", ["window", "local"])
def test_fast_rollout_gradients_match_reference(attention: str) -> None:
    p = _predictor(3, attention=attention)
    z, past = torch.randn(2, 3, D), torch.randn(2, 2, A)
    acts = torch.randn(2, 4, 3, A, requires_grad=True)
    (g_fast,) = torch.autograd.grad(rollout_candidates(p, z, acts, past).pow(2).sum(), acts)
    (g_ref,) = torch.autograd.grad(rollout_candidates(p, z, acts, past, fast=False).pow(2).sum(), acts)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)
    # Parameter gradients flow too (the weights are not the detached cache here).
    rollout_candidates(p, z, acts.detach(), past).sum().backward()
    assert p.blocks[0].modulation.weight.grad is not None and p.blocks[0].modulation.weight.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's first import touches torch.jit
def test_compiled_rollout_is_opt_in_not_copied_and_skipped_for_gradients() -> None:
    p = _predictor(3)
    z, past = torch.randn(2, 3, D), torch.randn(2, 2, A)
    acts = torch.randn(2, 4, 3, A, requires_grad=True)
    (g_eager,) = torch.autograd.grad(rollout_candidates(p, z, acts, past).pow(2).sum(), acts)
    p.compile_rollout()  # lazy: nothing compiles until a gradient-free call
    assert "_compiled_rollout" in vars(p) and "_compiled_rollout" not in vars(copy.deepcopy(p))
    # With gradients enabled the eager path runs (no compilation here: this test stays fast).
    (g,) = torch.autograd.grad(rollout_candidates(p, z, acts, past).pow(2).sum(), acts)
    torch.testing.assert_close(g, g_eager, rtol=0, atol=0)
    p.compile_rollout(False)
    assert "_compiled_rollout" not in vars(p)


@pytest.mark.slow  # inductor compiles C++ for a few graphs: ~1 min on one shared core
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("attention", ["window", "local"])
def test_compiled_rollout_equals_eager_and_follows_weight_changes(attention: str) -> None:
    p = _predictor(3, attention=attention)
    z, past, acts = torch.randn(2, 3, D), torch.randn(2, 2, A), torch.randn(2, 5, 4, A)
    with torch.inference_mode():
        eager = rollout_candidates(p, z, acts, past)
        p.compile_rollout()
        compiled = rollout_candidates(p, z, acts, past)
        ref = rollout_candidates(p, z, acts, past, fast=False)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the weights are frozen into the graph: a change must rebuild it, not go stale
        p.blocks[0].mlp.fc2.weight.mul_(2.0)
    with torch.inference_mode():
        torch.testing.assert_close(rollout_candidates(p, z, acts, past), rollout_candidates(p, z, acts, past, fast=False),
                                   rtol=1e-5, atol=1e-5)
