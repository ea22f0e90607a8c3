"""The proposal's denoiser: a small 1-D temporal convolution over the action chunk, FiLM-conditioned.

As Diffuser / Diffusion Policy's temporal U-Net, minus the U (chunks are a handful of model
steps): ``x (B, F, A)`` -> channels ``(B, width, F)`` -> ``depth`` residual blocks of
``conv(k=3) -> GroupNorm -> FiLM(step embedding + condition) -> Mish -> conv(k=3)`` -> ``(B, F, A)``.
The output layer starts at zero, so an untrained denoiser predicts no noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def step_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer steps ``t (B,)`` -> ``(B, dim)`` (Transformer / DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _Block(nn.Module):
    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=1)
        self.norm = nn.GroupNorm(min(8, width), width)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)
        self.act = nn.Mish()

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.film(c)[:, :, None].chunk(2, dim=1)  # (B, W, 1) each
        y = self.act(self.norm(self.conv1(h)) * (1 + scale) + shift)
        return h + self.conv2(y)


class ConvDenoiser(nn.Module):
    """``forward(x (B, F, A), t (B,), cond (B, C) | None) -> eps (B, F, A)``.

    Args:
        action_dim: ``A``, the model action dimension.
        cond_dim: ``C``, the size of the condition vector (0: unconditional).
        width: channels of the convolutions.
        depth: residual blocks.
    """

    def __init__(self, action_dim: int, cond_dim: int, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.width, self.cond_dim = width, cond_dim
        self.embed_dim = 4 * width
        self.step_mlp = nn.Sequential(nn.Linear(width, self.embed_dim), nn.Mish(), nn.Linear(self.embed_dim, self.embed_dim))
        self.cond_mlp = (nn.Sequential(nn.Linear(cond_dim, self.embed_dim), nn.Mish(),
                                       nn.Linear(self.embed_dim, self.embed_dim)) if cond_dim else None)
        self.inp = nn.Conv1d(action_dim, width, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(width, self.embed_dim) for _ in range(depth))
        self.out = nn.Conv1d(width, action_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
        c = self.step_mlp(step_embedding(t, self.width))  # (B, E)
        if self.cond_mlp is not None:
            if cond is None:
                raise ValueError(f"this denoiser is conditioned on a ({self.cond_dim},) vector; got none")
            c = c + self.cond_mlp(cond)
        c = nn.functional.mish(c)
        h = self.inp(x.transpose(1, 2))  # (B, F, A) -> (B, W, F)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h).transpose(1, 2)  # (B, F, A)
