"""Local attention: a transformer predictor whose per-token state does not depend on a window start.

A *window* predictor (``PredictorConfig.attention = "window"``) runs every prediction on its own
window of the last ``h`` frames with absolute positions ``0..h-1``: when the window slides, every
token gets a new position and a new causal prefix, so nothing computed for one step is reusable by
the next. A *local* predictor (``attention = "local"``) lets block ``b``'s token at time ``t``
attend to itself and the previous ``w_b - 1`` tokens only, with a learned bias per head and
relative offset instead of absolute positions, and ``sum_b (w_b - 1) = h - 1``
(:func:`layer_windows`). The prediction at ``t`` still depends on frames ``t-h+1..t`` only (the
predictor contract), but a token's state in every block is fixed once computed. Hence:

* training is one pass over the whole sequence (``T`` tokens, not ``T-h+1`` windows of ``h``);
* a rollout keeps, per block, the keys and values of the last ``w_b - 1`` tokens (a KV cache) and
  computes one new token per step. Planning's candidate rollout
  (:func:`local_rollout`) costs ~``41 W^2`` multiply-adds per step and candidate against ~``61 W^2``
  for a window predictor (width ``W``, history 3, depth 2, horizon 5), with fewer element-wise ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from forethought.models.layers import adaln_block_step, fast_linear


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


def _recent(kv: tuple[Tensor, Tensor] | None, keep: int) -> tuple[Tensor, Tensor] | None:
    """The keys/values ``(E, heads, S, d)`` of the last ``keep`` tokens, or ``None``."""
    if kv is None or keep == 0 or kv[0].shape[2] == 0:
        return None
    return kv[0][:, :, -keep:], kv[1][:, :, -keep:]


def local_rollout(
    windows: Sequence[int], residual: bool, fw: Any, conditioning: Callable[[Tensor], tuple[Tensor, ...]],
    z: Tensor, actions: Tensor, past: Tensor,
) -> Tensor:
    """A local predictor's candidate rollout with a KV cache: ``(B, L, D), (B, N, H, A), (B, L-1, A) -> (B, N, H, D)``.

    ``fw``: the predictor's ``_FastWeights`` (``rel (depth, heads, max w)``);
    ``conditioning(a (..., A))``: every block's modulation and the final one, ``6 depth + 2`` tensors
    ``(..., W)``. The history tokens before the last run once per episode; their keys/values are
    shared by the episode's ``N`` candidates (episode-major rows, like ``actions.reshape(B N, H, A)``).
    Latents accumulate in float32.
    """
    depth = len(fw.blocks)
    B, L, D = z.shape
    N, H, A = actions.shape[1:]
    M, dt = B * N, fw.inp_w.dtype
    mod_past = conditioning(past)  # 6 depth + 2 x (B, L-1, W)
    mod_cand = conditioning(actions.reshape(M, H, A))  # 6 depth + 2 x (M, H, W)
    x_hist = fast_linear(z.to(dt), fw.inp_w, fw.inp_b)  # (B, L, W)

    caches: list[tuple[Tensor, Tensor] | None] = []  # per block: keys/values of the previous w_b - 1 tokens
    xs = x_hist[:, : L - 1]
    for b, wb in enumerate(fw.blocks):
        if L == 1:
            caches.append(None)
            continue
        bias = band_bias(fw.rel[b], windows[b], L - 1, L - 1)
        xs, kv = adaln_block_step(xs, mod_past[6 * b : 6 * b + 6], wb, bias=bias)
        caches.append(_recent(kv, windows[b] - 1))

    x_new = x_hist[:, L - 1 :].repeat_interleave(N, dim=0)  # (M, 1, W): the last history frame
    last_z = z[:, -1].float().repeat_interleave(N, dim=0)  # (M, D)
    outs = last_z.new_empty(M, H, D)
    for k in range(H):
        x = x_new
        for b, wb in enumerate(fw.blocks):
            cache = caches[b]
            S = 1 + (0 if cache is None else cache[0].shape[2])
            bias = fw.rel[b][:, :S].flip(-1)[:, None, :]  # keys oldest first: offsets S-1 .. 0
            x, own = adaln_block_step(x, [t[:, k : k + 1] for t in mod_cand[6 * b : 6 * b + 6]], wb, cache, bias=bias)
            if windows[b] > 1:
                if cache is not None and cache[0].shape[0] != M:  # shared by an episode's rows: expand once
                    cache = tuple(t.repeat_interleave(M // t.shape[0], dim=0) for t in cache)
                both = own if cache is None else tuple(torch.cat(p, dim=2) for p in zip(cache, own))
                caches[b] = _recent(both, windows[b] - 1)
        shift, scale = mod_cand[6 * depth][:, k], mod_cand[6 * depth + 1][:, k]  # (M, W); scale has the 1 added
        hx = torch.addcmul(shift, torch.nn.functional.layer_norm(x[:, 0], (x.shape[-1],), eps=1e-6), scale)
        out = fast_linear(hx, fw.head_w, fw.head_b).float()
        last_z = last_z + out if residual else out
        outs[:, k] = last_z
        if k + 1 < H:
            x_new = fast_linear(last_z.to(dt), fw.inp_w, fw.inp_b)[:, None]
    return outs.view(B, N, H, D)
