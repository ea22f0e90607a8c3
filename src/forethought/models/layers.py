"""Transformer building blocks: the ViT encoder's block, and the predictor block's parameters.

* :class:`Block`: pre-LayerNorm self-attention + MLP (ViT encoder), through
  :func:`torch.nn.functional.scaled_dot_product_attention`.
* :class:`AdaLNZeroBlock`: the parameters of the DiT block (Peebles & Xie 2023, "adaLN-Zero") the
  predictor stacks; its computation is :mod:`forethought.models.transformer`.
"""

from __future__ import annotations

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


class AdaLNZeroBlock(nn.Module):
    """The parameters of one DiT block conditioned per token (one action per time step).

    Holds the attention and MLP weights and the modulation layer that regresses shift, scale and
    gate (twice) from the action embedding; the modulation starts at zero (adaLN-Zero), so every
    block starts as the identity. The forward computation is
    :func:`forethought.models.transformer.block_step`, written once for training and rollouts.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.attn = Attention(width, heads)
        self.mlp = MLP(width, int(width * mlp_ratio))
        self.modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
