"""The predictor transformer's math, written once: one causal pass (training) and a KV-cached rollout.

The predictor (:class:`~forethought.models.predictors.TransformerPredictor`) is a DiT-style
transformer over time, one token per frame, conditioned per token on its action by AdaLN-zero
(Peebles & Xie 2023): LayerNorms without affine parameters whose shift, scale and residual gate are
regressed from the action embedding by zero-initialised linear layers, so a fresh predictor is the
identity (with a residual head: the copy-last baseline).

Attention over time is *local*: block ``b``'s token at time ``t`` attends to itself and the
previous ``w_b - 1`` tokens, with a learned bias per head and relative offset (no absolute
positions), and ``sum_b (w_b - 1) = h - 1`` (:func:`layer_windows`). So the prediction at ``t``
depends on frames ``t-h+1..t`` only (the predictor contract), and a token's state in every block
is fixed once computed. Hence one function, :func:`block_step`, serves both uses:

* :func:`sequence_forward`: one pass over a whole sequence of ``T`` tokens (training, surprise,
  speculative verification, and the history part of a rollout);
* :func:`cached_rollout`: the rollout of ``N`` candidate action sequences per history, keeping per
  block the keys and values of the last ``w_b - 1`` tokens and computing one new token per step
  (~``41 W^2`` multiply-adds per step and candidate at width ``W``, history 3, depth 2).

Everything takes the weights as a :class:`PredictorWeights` tuple: the module's parameters
(differentiable, for training) or a copy cast once to bfloat16 (planning,
:class:`~forethought.models.fast_rollout.CandidateRollout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

KV = tuple[Tensor, Tensor]


def layer_windows(history: int, depth: int) -> tuple[int, ...]:
    """Keys each block attends to (itself included), ``w_b``, with ``sum (w_b - 1) = history - 1``.

    The context is spread over the first blocks: history 3, depth 2 -> ``(2, 2)``; depth 1 ->
    ``(3,)``; depth 6 -> ``(2, 2, 1, 1, 1, 1)``; history 1 -> all ``1`` (no attention across time).
    """
    base, extra = divmod(history - 1, depth)
    return tuple(1 + base + (i < extra) for i in range(depth))


def band_bias(rel: Tensor, window: int, queries: int, keys: int) -> Tensor:
    """Additive attention mask ``(heads, queries, keys)`` for the last ``queries`` of ``keys`` tokens.

    ``rel (heads, >= window)``: the learned bias of relative offset ``0`` (the token itself) to
    ``window - 1``; keys further back or in the future get ``-inf``.
    """
    qpos = torch.arange(keys - queries, keys, device=rel.device)[:, None]
    offset = qpos - torch.arange(keys, device=rel.device)[None, :]  # (Q, S): how far back each key is
    inside = (offset >= 0) & (offset < window)
    return rel[:, offset.clamp(0, window - 1)].masked_fill(~inside, float("-inf"))


def _onednn_linear() -> object | None:
    try:  # private ops (used by inductor); absent from builds without oneDNN
        # Only where oneDNN has bf16 kernels (AVX512-BF16, AMX): on an AVX2-only CPU the op raises
        # "could not create a primitive descriptor" for bf16 inputs.
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        pass
    return None


_ONEDNN_LINEAR = _onednn_linear()


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear``, through oneDNN for bfloat16 on CPU when no gradient is needed.

    Measured (1 thread, AMX, e.g. ``(900, 192) x (192, 768)``): oneDNN's bf16 matmul is 1.2-1.4x
    faster than ``F.linear``'s. It has no autograd formula, hence the fallback.
    """
    if (_ONEDNN_LINEAR is not None and x.dtype == weight.dtype == torch.bfloat16 and x.device.type == "cpu"
            and not torch.compiler.is_compiling()  # inductor picks its own kernels (and rejects this op on inputs)
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")  # type: ignore[operator]
    return F.linear(x, weight, bias)


class BlockWeights(NamedTuple):
    """One block's attention and MLP weights (its modulation lives in :attr:`PredictorWeights.mod_w`)."""

    heads: int
    qkv_w: Tensor
    qkv_b: Tensor
    proj_w: Tensor
    proj_b: Tensor
    fc1_w: Tensor
    fc1_b: Tensor
    fc2_w: Tensor
    fc2_b: Tensor


class PredictorWeights(NamedTuple):
    """A transformer predictor's weights, arranged so that one matmul conditions every block.

    ``mod_w ((6 depth + 2) W, W)`` stacks each block's modulation (shift1, scale1, gate1, shift2,
    scale2, gate2) and the final one (shift, scale); ``mod_b`` has 1 added to every scale, so a
    modulation is one ``addcmul``. ``rel (depth, heads, max w)``: relative position biases.
    """

    inp_w: Tensor
    inp_b: Tensor
    rel: Tensor
    ae1_w: Tensor
    ae1_b: Tensor
    ae2_w: Tensor
    ae2_b: Tensor
    mod_w: Tensor
    mod_b: Tensor
    blocks: tuple[BlockWeights, ...]
    head_w: Tensor
    head_b: Tensor
    windows: tuple[int, ...]
    residual: bool


def conditioning(w: PredictorWeights, a: Tensor) -> tuple[Tensor, ...]:
    """Every block's modulation and the final one from actions: ``(..., A)`` -> ``6 depth + 2`` x ``(..., W)``.

    Separate views (not slices of one tensor): a slice's backward allocates a zero tensor the size
    of what it slices, which made the gradient planner 1.7x slower on one ``(M, H, 14 W)`` tensor.
    """
    dt, W = w.inp_w.dtype, w.inp_w.shape[0]
    c = F.silu(fast_linear(F.silu(fast_linear(a.to(dt), w.ae1_w, w.ae1_b)), w.ae2_w, w.ae2_b))
    return fast_linear(c, w.mod_w, w.mod_b).unflatten(-1, (6 * len(w.blocks) + 2, W)).unbind(-2)


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, dropout: float) -> Tensor:
    """``q (M, heads, Q, d)``, ``k, v (M, heads, S, d)``, ``bias (heads, Q, S)`` -> ``(M, heads, Q, d)``.

    Plain batched matmuls: the windows are tiny (``S <= h``), where the fused CPU kernels of
    ``scaled_dot_product_attention`` pay a per-(batch, head) overhead (measured 2-3x slower in bf16).
    """
    if k.shape[2] == 1 and not dropout:  # one key (so one query): softmax is 1
        return v
    s = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (M, heads, Q, S)
    if bias is not None:
        s = s + bias
    p = s.softmax(-1)
    if dropout:
        p = F.dropout(p, dropout)
    return torch.matmul(p.to(v.dtype), v)


def block_step(x: Tensor, mod: Sequence[Tensor], w: BlockWeights, cache: KV | None = None,
               bias: Tensor | None = None, dropout: float = 0.0) -> tuple[Tensor, KV]:
    """One AdaLN-zero block: ``x (M, C, W)`` tokens after ``P`` cached ones -> ``(M, C, W)`` and their keys/values.

    Args:
        mod: six ``(M, C, W)`` tensors: ``shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2``.
        cache: keys and values ``(E, heads, P, W / heads)`` of the ``P`` tokens before ``x``, shared
            by the ``M / E`` consecutive rows of each of ``E`` episodes (episode-major).
        bias: ``(heads, C, P + C)`` additive attention mask (:func:`band_bias`).
        dropout: on the attention weights and the MLP output (training only).

    Returns:
        The block output and the keys/values ``(M, heads, C, W / heads)`` of ``x``'s tokens.
    """
    M, C, W = x.shape
    nh = w.heads
    d = W // nh
    hx = torch.addcmul(mod[0], F.layer_norm(x, (W,), eps=1e-6), mod[1])
    q, k, v = fast_linear(hx, w.qkv_w, w.qkv_b).view(M, C, 3, nh, d).permute(2, 0, 3, 1, 4)  # 3 x (M, nh, C, d)
    own = (k, v)
    if cache is not None and cache[0].shape[2]:
        E, P = cache[0].shape[0], cache[0].shape[2]
        if E == M:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        else:  # rows e*N .. e*N+N-1 share cache[e]: write into one buffer instead of repeating the cache
            kk, vv = k.new_empty(E, M // E, nh, P + C, d), v.new_empty(E, M // E, nh, P + C, d)
            kk[:, :, :, :P], vv[:, :, :, :P] = cache[0][:, None], cache[1][:, None]
            kk[:, :, :, P:], vv[:, :, :, P:] = k.view(E, M // E, nh, C, d), v.view(E, M // E, nh, C, d)
            k, v = kk.view(M, nh, P + C, d), vv.view(M, nh, P + C, d)
    y = _attend(q, k, v, bias, dropout)
    y = fast_linear(y.transpose(1, 2).reshape(M, C, W), w.proj_w, w.proj_b)
    x = torch.addcmul(x, mod[2], y)  # x + gate1 * attention
    hx = torch.addcmul(mod[3], F.layer_norm(x, (W,), eps=1e-6), mod[4])
    y = fast_linear(F.gelu(fast_linear(hx, w.fc1_w, w.fc1_b)), w.fc2_w, w.fc2_b)
    if dropout:
        y = F.dropout(y, dropout)
    return torch.addcmul(x, mod[5], y), own  # x + gate2 * MLP


def _head(w: PredictorWeights, x: Tensor, mod: Sequence[Tensor], z: Tensor) -> Tensor:
    """The final modulated LayerNorm and linear head, ``x (..., W)`` -> next latents ``(..., D)`` float32."""
    shift, scale = mod[-2], mod[-1]  # scale has the 1 added
    out = fast_linear(torch.addcmul(shift, F.layer_norm(x, (x.shape[-1],), eps=1e-6), scale), w.head_w, w.head_b)
    return z.float() + out.float() if w.residual else out.float()


def _keep(kv: KV, window: int) -> KV | None:
    """The keys/values of the last ``window - 1`` tokens (what the next token of this block sees)."""
    return (kv[0][:, :, 1 - window :], kv[1][:, :, 1 - window :]) if window > 1 else None


def _blocks(w: PredictorWeights, z: Tensor, a: Tensor, dropout: float) -> tuple[Tensor, tuple[Tensor, ...], list[KV | None]]:
    """The blocks over ``T`` tokens: the last block's output ``(B, T, W)``, the modulations, and the caches."""
    T = z.shape[1]
    mod = conditioning(w, a)
    x = fast_linear(z.to(w.inp_w.dtype), w.inp_w, w.inp_b)  # (B, T, W)
    caches: list[KV | None] = []
    for b, (bw, win) in enumerate(zip(w.blocks, w.windows)):
        x, kv = block_step(x, mod[6 * b : 6 * b + 6], bw, bias=band_bias(w.rel[b], win, T, T), dropout=dropout)
        caches.append(_keep(kv, win))
    return x, mod, caches


def sequence_forward(w: PredictorWeights, z: Tensor, a: Tensor, dropout: float = 0.0) -> tuple[Tensor, list[KV | None]]:
    """One causal pass: ``z (B, T, D)``, ``a (B, T, A)`` -> predictions ``(B, T, D)`` and per-block caches.

    Position ``t`` of the output predicts ``z_{t+1}`` from ``z_{t-h+1..t}``, ``a_{t-h+1..t}``.
    The caches are each block's keys/values of the last ``w_b - 1`` tokens (``None`` where
    ``w_b = 1``), ready for :func:`cached_rollout` to continue from.
    """
    x, mod, caches = _blocks(w, z, a, dropout)
    return _head(w, x, mod, z).to(z.dtype), caches


def cached_rollout(w: PredictorWeights, z: Tensor, actions: Tensor, past: Tensor) -> Tensor:
    """``N`` candidate rollouts per history with a KV cache: ``(B, L, D), (B, N, H, A), (B, L-1, A) -> (B, N, H, D)``.

    ``z`` are the last ``L <= h`` history latents and ``past`` the actions between them;
    ``actions[:, n, 0]`` takes the last history frame to the first imagined one. The history
    tokens before the last run once per episode and their keys/values are shared by its ``N``
    candidates (rows episode-major, like ``actions.reshape(B N, H, A)``). Latents accumulate in
    float32. Equal to :func:`sequence_forward` applied step by step (tested).
    """
    B, L, D = z.shape
    N, H, A = actions.shape[1:]
    M, dt = B * N, w.inp_w.dtype
    caches: list[KV | None] = [None] * len(w.blocks)
    if L > 1:  # the history's keys/values; its predictions are not needed
        caches = _blocks(w, z[:, :-1], past, 0.0)[2]
    mod = conditioning(w, actions.reshape(M, H, A))  # 6 depth + 2 x (M, H, W)
    x_new = fast_linear(z[:, -1:].to(dt), w.inp_w, w.inp_b).repeat_interleave(N, dim=0)  # (M, 1, W)
    last_z = z[:, -1].float().repeat_interleave(N, dim=0)  # (M, D)
    outs = last_z.new_empty(M, H, D)
    for k in range(H):
        x = x_new
        for b, (bw, win) in enumerate(zip(w.blocks, w.windows)):
            cache = caches[b]
            S = 1 + (0 if cache is None else cache[0].shape[2])
            bias = w.rel[b][:, :S].flip(-1)[:, None, :]  # (heads, 1, S): keys oldest first, offsets S-1 .. 0
            x, own = block_step(x, [t[:, k : k + 1] for t in mod[6 * b : 6 * b + 6]], bw, cache, bias)
            if win > 1:
                if cache is not None and cache[0].shape[0] != M:  # shared by an episode's rows: expand once
                    cache = (cache[0].repeat_interleave(N, dim=0), cache[1].repeat_interleave(N, dim=0))
                caches[b] = _keep(own if cache is None else (torch.cat([cache[0], own[0]], 2),
                                                              torch.cat([cache[1], own[1]], 2)), win)
        last_z = _head(w, x[:, 0], [t[:, k] for t in mod[-2:]], last_z)
        outs[:, k] = last_z
        if k + 1 < H:
            x_new = fast_linear(last_z.to(dt), w.inp_w, w.inp_b)[:, None]
    return outs.view(B, N, H, D)
