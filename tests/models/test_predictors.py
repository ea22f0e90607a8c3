"""Predictors: causality in time, sliding-window consistency, rollout = repeated predict."""

from __future__ import annotations

import pytest
import torch

from forethought.models import (
    MLPPredictor,
    PredictorConfig,
    TransformerPredictor,
    WorldModelConfig,
    autoregressive_rollout,
)
from forethought.models.transformer import band_bias, layer_windows

D, A, H = 8, 3, 3


KINDS = ["transformer", "mlp"]


def _predictor(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = PredictorConfig(kind=kind, width=32, depth=2, heads=4, residual=True)
    cls = MLPPredictor if kind == "mlp" else TransformerPredictor
    p = cls(D, A, H, cfg)
    # Fresh adaLN-zero / zero heads would make every output independent of the actions; randomise
    # all weights so that a causality leak cannot hide behind a zero.
    with torch.no_grad():
        for param in p.parameters():
            param.normal_(0, 0.3)
    return p.eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [3, 6])  # one window, and sliding windows
def test_predictor_is_causal_in_actions_and_latents(kind: str, T: int) -> None:
    p = _predictor(kind)
    z, a = torch.randn(2, T, D), torch.randn(2, T, A)
    base = p.predict_sequence(z, a)
    for t in range(T):
        a2 = a.clone()
        a2[:, t] += 1.0
        out = p.predict_sequence(z, a2)
        # Positions before t predict frames <= t: they must not see a_t.
        assert torch.equal(out[:, :t], base[:, :t]), (kind, T, t)
        # Position t predicts frame t+1 from a_t: it must change.
        assert (out[:, t] - base[:, t]).abs().max() > 1e-4, (kind, T, t)
        z2 = z.clone()
        z2[:, t] += 1.0
        assert torch.equal(p.predict_sequence(z2, a)[:, :t], base[:, :t])


@pytest.mark.parametrize("kind", KINDS)
def test_history_window_is_h(kind: str) -> None:
    """With T > h, position t only sees the last h steps: changing step t-h leaves it unchanged."""
    p = _predictor(kind)
    z, a = torch.randn(2, 7, D), torch.randn(2, 7, A)
    base = p.predict_sequence(z, a)
    z2, a2 = z.clone(), a.clone()
    z2[:, 1] += 1.0
    a2[:, 1] += 1.0
    out = p.predict_sequence(z2, a2)
    assert torch.equal(out[:, 1 + H :], base[:, 1 + H :])
    assert (out[:, 1 + H - 1] - base[:, 1 + H - 1]).abs().max() > 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_sliding_windows_match_separate_calls(kind: str) -> None:
    p = _predictor(kind)
    z, a = torch.randn(2, 6, D), torch.randn(2, 6, A)
    full = p.predict_sequence(z, a)
    for t in range(6):
        lo = max(0, t - H + 1)
        ref = p.predict_sequence(z[:, lo : t + 1], a[:, lo : t + 1])[:, -1]
        torch.testing.assert_close(full[:, t], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_rollout_equals_feeding_predictions_back(kind: str) -> None:
    p = _predictor(kind)
    B, steps = 3, 4
    z_hist, past, acts = torch.randn(B, H, D), torch.randn(B, H - 1, A), torch.randn(B, steps, A)
    out = autoregressive_rollout(p, z_hist, acts, past)
    assert out.shape == (B, steps, D)
    zs, as_ = z_hist, past
    for k in range(steps):
        a_win = torch.cat([as_, acts[:, k : k + 1]], 1)
        nxt = p.predict_sequence(zs[:, -H:], a_win[:, -H:])[:, -1]
        torch.testing.assert_close(out[:, k], nxt, rtol=1e-5, atol=1e-5)
        zs, as_ = torch.cat([zs, nxt[:, None]], 1), a_win
    # Batched = one at a time.
    one = autoregressive_rollout(p, z_hist[1:2], acts[1:2], past[1:2])
    torch.testing.assert_close(one, out[1:2], rtol=1e-5, atol=1e-5)


def test_fresh_residual_predictor_is_copy_last() -> None:
    p = TransformerPredictor(D, A, H, PredictorConfig(width=32, heads=4))
    z = torch.randn(2, 3, D)
    assert torch.equal(p.predict_sequence(z, torch.randn(2, 3, A)), z)


def test_local_windows_add_up_to_the_history() -> None:
    assert layer_windows(3, 2) == (2, 2) and layer_windows(3, 1) == (3,) and layer_windows(1, 2) == (1, 1)
    assert layer_windows(3, 6) == (2, 2, 1, 1, 1, 1) and layer_windows(5, 3) == (3, 2, 2)
    for h in range(1, 7):
        for depth in range(1, 5):
            assert sum(w - 1 for w in layer_windows(h, depth)) == h - 1


def test_band_bias_hides_keys_outside_the_window() -> None:
    rel = torch.tensor([[0.5, -1.0]])  # one head: offset 0 (itself) and 1 (the previous token)
    inf = float("-inf")
    expected = torch.tensor([[[-1.0, 0.5, inf], [inf, -1.0, 0.5]]])  # the last 2 of 3 tokens
    torch.testing.assert_close(band_bias(rel, 2, queries=2, keys=3), expected)


def test_window_attention_models_are_refused_with_how_to_retrain() -> None:
    cfg = WorldModelConfig.preset("small", (3, 64, 64), 10).to_dict()
    for old in ({**cfg["predictor"], "attention": "window"}, {k: v for k, v in cfg["predictor"].items() if k != "attention"}):
        with pytest.raises(ValueError, match="window attention was removed.*retrain"):
            WorldModelConfig.from_dict({**cfg, "predictor": old})
    with pytest.raises(ValueError, match="available: local"):
        PredictorConfig(attention="global")


def test_predictor_config_errors() -> None:
    with pytest.raises(ValueError, match="available: transformer, mlp"):
        PredictorConfig(kind="rnn")
    with pytest.raises(ValueError, match="divisible by heads"):
        PredictorConfig(width=30, heads=4)


def _reference_transformer(p: TransformerPredictor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The predictor written naively from the paper (DiT adaLN-Zero blocks, local attention), with
    the module's own parameters: an independent check of forethought.models.transformer's fused math."""
    import torch.nn.functional as F

    T = z.shape[1]
    c = p.action_embed(a)  # (B, T, W)
    x = p.inp(z)
    for blk, rel, win in zip(p.blocks, p.rel_pos, p.windows):
        s1, c1, g1, s2, c2, g2 = blk.modulation(F.silu(c)).chunk(6, -1)
        hx = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + c1) + s1
        B, _, W = hx.shape
        q, k, v = blk.attn.qkv(hx).view(B, T, 3, p.heads, W // p.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / (W // p.heads) ** 0.5  # (B, heads, T, T)
        for i in range(T):
            for j in range(T):
                logits[:, :, i, j] += rel[:, i - j] if 0 <= i - j < win else float("-inf")
        y = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W)
        x = x + g1 * blk.attn.proj(y)
        hx = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + c2) + s2
        x = x + g2 * blk.mlp.fc2(F.gelu(blk.mlp.fc1(hx)))
    shift, scale = p.final_modulation(F.silu(c)).chunk(2, -1)
    return z + p.head(F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale) + shift)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_transformer_matches_a_naive_reference(depth: int) -> None:
    torch.manual_seed(depth)
    p = TransformerPredictor(D, A, H, PredictorConfig(width=32, depth=depth, heads=4))
    with torch.no_grad():
        for param in p.parameters():
            param.normal_(0, 0.3)
    z, a = torch.randn(2, 6, D), torch.randn(2, 6, A)
    with torch.no_grad():
        torch.testing.assert_close(p.predict_sequence(z, a), _reference_transformer(p, z, a), rtol=1e-4, atol=1e-4)
