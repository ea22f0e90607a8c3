"""Transformer building blocks shared by the ViT encoder and the predictor.

Two block types:

* :class:`Block`: pre-LayerNorm self-attention + MLP (ViT encoder).
* :class:`AdaLNZeroBlock`: the DiT block (Peebles & Xie 2023, "adaLN-Zero"): the LayerNorms have no
  affine parameters; shift, scale and a residual gate are regressed from a conditioning vector (here
  the action embedding of each time step) by a linear layer initialised to zero, so every block
  starts as the identity and the predictor starts as a plain function of the latents.

Attention uses :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
on every backend.
"""

from __future__ import annotations

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
    """Multi-head self-attention, ``(B, L, W) -> (B, L, W)``, optionally causal."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"attention width {width} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: Tensor, causal: bool = False) -> Tensor:
        B, L, W = x.shape
        # (B, L, 3W) -> 3 x (B, heads, L, W / heads)
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
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

    def forward(self, x: Tensor, c: Tensor, causal: bool = True) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(c)).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), causal=causal)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))
