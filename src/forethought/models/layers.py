"""Transformer building blocks shared by the ViT encoder and the predictor.

Two block types:

* :class:`Block`: pre-LayerNorm self-attention + MLP (ViT encoder).
* :class:`AdaLNZeroBlock`: the DiT block (Peebles & Xie 2023, "adaLN-Zero"): the LayerNorms have no
  affine parameters; shift, scale and a residual gate are regressed from a conditioning vector (here
  the action embedding of each time step) by a linear layer initialised to zero, so every block
  starts as the identity and the predictor starts as a plain function of the latents.

Attention uses :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
on every backend. :func:`adaln_block_step` is the inference form of :class:`AdaLNZeroBlock` used by
the predictor's candidate rollout (planning's hot loop): precomputed modulation, a shared key/value
prefix, weights already in the compute dtype, and few, fused element-wise ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """Two-layer GELU MLP, ``(..., width) -> (..., width)``."""

    def __init__(self, width: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(F.gelu(self.fc1(x))))


class Attention(nn.Module):
    """Multi-head self-attention, ``(B, L, W) -> (B, L, W)``, optionally causal or with an additive mask."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"attention width {width} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: Tensor, causal: bool = False, bias: Tensor | None = None) -> Tensor:
        """``bias (heads, L, L)``: added to the attention logits (``-inf`` hides a key); replaces ``causal``."""
        B, L, W = x.shape
        # (B, L, 3W) -> 3 x (B, heads, L, W / heads)
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        mask = None if bias is None else bias.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal and mask is None)
        return self.proj(y.transpose(1, 2).reshape(B, L, W))


class Block(nn.Module):
    """Pre-LN transformer block (ViT), ``(B, L, W) -> (B, L, W)``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio), dropout)

    def forward(self, x: Tensor, causal: bool = False) -> Tensor:
        x = x + self.attn(self.norm1(x), causal=causal)
        return x + self.mlp(self.norm2(x))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """AdaLN modulation, all ``(B, L, W)``: ``x * (1 + scale) + shift``."""
    return x * (1.0 + scale) + shift


class AdaLNZeroBlock(nn.Module):
    """DiT block conditioned per token: ``x (B, L, W)``, ``c (B, L, W)`` -> ``(B, L, W)``.

    The conditioning is per position (one action per time step), not one vector per sequence as
    in DiT, so ``shift/scale/gate`` have shape ``(B, L, W)``.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(width, int(width * mlp_ratio), dropout)
        self.modulation = nn.Linear(width, 6 * width)
        # adaLN-Zero: gates start at 0, so the block is the identity at initialisation.
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, c: Tensor, causal: bool = True, bias: Tensor | None = None) -> Tensor:
        """``bias (heads, L, L)``: an additive attention mask instead of the causal one."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(c)).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), causal=causal, bias=bias)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


def _onednn_linear() -> object | None:
    try:  # private op (used by inductor); absent from builds without oneDNN
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


_ONEDNN_LINEAR = _onednn_linear()


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear``, through oneDNN for bfloat16 on CPU when no gradient is needed.

    Measured (1 thread, AMX, issue 4's shapes, e.g. ``(900, 192) x (192, 768)``): oneDNN's bf16
    matmul is 1.2-1.4x faster than ``F.linear``'s. It has no autograd formula, hence the fallback.
    """
    if (_ONEDNN_LINEAR is not None and x.dtype == torch.bfloat16 and x.device.type == "cpu"
            and not torch.compiler.is_compiling()  # inductor picks its own kernels (and rejects this op on inputs)
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")  # type: ignore[operator]
    return F.linear(x, weight, bias)


class AdaLNWeights(NamedTuple):
    """One :class:`AdaLNZeroBlock`'s attention and MLP weights in one dtype (for :func:`adaln_block_step`)."""

    heads: int
    qkv_w: Tensor
    qkv_b: Tensor
    proj_w: Tensor
    proj_b: Tensor
    fc1_w: Tensor
    fc1_b: Tensor
    fc2_w: Tensor
    fc2_b: Tensor

    @classmethod
    def of(cls, blk: AdaLNZeroBlock, dtype: torch.dtype) -> AdaLNWeights:
        """``blk``'s weights cast to ``dtype`` (differentiable; a no-op when already ``dtype``)."""
        a, m = blk.attn, blk.mlp
        ps = (a.qkv.weight, a.qkv.bias, a.proj.weight, a.proj.bias, m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias)
        return cls(a.heads, *(p.to(dtype) for p in ps))


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """``q (M, heads, Q, d)``, ``k, v (M, heads, S, d)`` -> ``(M, heads, Q, d)``, causal aligned to the end.

    Query ``i`` sees keys ``j <= S - Q + i``; ``bias (heads, Q, S)``, if given, is added to the
    logits instead (``-inf`` hides a key). The windows here are tiny (``S <= h``), where
    ``scaled_dot_product_attention``'s fused CPU kernels pay a per-(batch, head) overhead that the
    plain batched matmuls do not (measured: 2-3x slower in bfloat16).
    """
    Q, S = q.shape[2], k.shape[2]
    if bias is None and Q == 1:  # the last query sees every key: no mask
        return F.scaled_dot_product_attention(q, k, v)
    if S == 1:  # one key (so one query): softmax is 1
        return v
    s = torch.matmul(q, k.transpose(-1, -2)).mul_(q.shape[-1] ** -0.5)  # (M, heads, Q, S)
    if bias is not None:
        return torch.matmul((s + bias).softmax(-1), v)
    hidden = torch.ones(Q, S, dtype=torch.bool, device=q.device).triu_(diagonal=S - Q + 1)
    return torch.matmul(s.masked_fill_(hidden, float("-inf")).softmax(-1), v)


def adaln_block_step(
    x: Tensor, mod: Sequence[Tensor], w: AdaLNWeights, prefix_kv: tuple[Tensor, Tensor] | None = None,
    last_only: bool = False, bias: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """:class:`AdaLNZeroBlock` forward (eval mode) with precomputed modulation and a key/value prefix.

    Args:
        x: ``(M, C, W)`` tokens, in the weights' dtype.
        mod: six ``(M, C, W)`` tensors (any strides): ``shift1, 1 + scale1, gate1, shift2, 1 + scale2,
            gate2``, i.e. ``blk.modulation(silu(c))`` with 1 added to the two scales (once, in the bias).
        w: the block's weights, :meth:`AdaLNWeights.of`.
        prefix_kv: keys and values ``(E, heads, P, W / heads)`` of ``P`` tokens before ``x``, shared
            by the ``M / E`` consecutive rows of each of ``E`` episodes; every token sees all of them.
        last_only: return the last token's output only, ``(M, 1, W)`` (keys/values of all tokens
            are still computed: they are what the other tokens contribute).
        bias: ``(heads, C', P + C)`` added to the attention logits instead of the causal mask
            (``C' = 1`` with ``last_only``, else ``C``), e.g. a local predictor's relative positions.

    Returns:
        The block output and this block's own keys/values ``(M, heads, C, W / heads)`` each.
    """
    M, C, W = x.shape
    nh = w.heads
    d = W // nh
    hx = torch.addcmul(mod[0], F.layer_norm(x, (W,), eps=1e-6), mod[1])  # modulate
    if last_only:  # keys/values of every token, the query of the last one only
        kv = fast_linear(hx, w.qkv_w[W:], w.qkv_b[W:]).view(M, C, 2, nh, d)
        q = fast_linear(hx[:, -1:], w.qkv_w[:W], w.qkv_b[:W]).view(M, 1, nh, d).transpose(1, 2)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
    else:  # (M, C, 3W) -> 3 x (M, heads, C, d)
        q, k, v = fast_linear(hx, w.qkv_w, w.qkv_b).view(M, C, 3, nh, d).permute(2, 0, 3, 1, 4)
    own = (k, v)
    if prefix_kv is not None:  # episode-major: rows e*N .. e*N+N-1 share prefix_kv[e]
        E, _, P, _ = prefix_kv[0].shape
        kk = k.new_empty(E, M // E, nh, P + C, d)
        vv = v.new_empty(E, M // E, nh, P + C, d)
        kk[:, :, :, :P], vv[:, :, :, :P] = prefix_kv[0][:, None], prefix_kv[1][:, None]
        kk[:, :, :, P:], vv[:, :, :, P:] = k.view(E, M // E, nh, C, d), v.view(E, M // E, nh, C, d)
        k, v = kk.view(M, nh, P + C, d), vv.view(M, nh, P + C, d)
    y = _attend(q, k, v, bias)  # (M, heads, Q, d)
    y = fast_linear(y.transpose(1, 2).reshape(M, q.shape[2], W), w.proj_w, w.proj_b)
    if last_only:
        x, mod = x[:, -1:], [t[:, -1:] for t in mod]
    x = torch.addcmul(x, mod[2], y)  # x + gate1 * attn
    hx = torch.addcmul(mod[3], F.layer_norm(x, (W,), eps=1e-6), mod[4])
    y = fast_linear(F.gelu(fast_linear(hx, w.fc1_w, w.fc1_b)), w.fc2_w, w.fc2_b)
    return torch.addcmul(x, mod[5], y), own  # x + gate2 * mlp
