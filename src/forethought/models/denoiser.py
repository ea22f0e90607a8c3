"""A small 1-D temporal-convolution denoiser, FiLM-conditioned: the network of every diffusion model here.

As Diffuser / Diffusion Policy's temporal U-Net, minus the U (chunks are a handful of model
steps): ``x (B, F, C)`` -> channels ``(B, width, F)`` -> ``depth`` residual blocks of
``conv(k=3) -> GroupNorm -> FiLM(step embedding + condition) -> Mish -> conv(k=3)`` -> ``(B, F, C)``.
The output layer starts at zero, so an untrained denoiser predicts no noise.

Two options serve sequence-to-sequence models (the diffusion dynamics): ``context_dim`` extra
per-step input channels (e.g. the action taken at each step, concatenated to ``x_t``), and
``dilation_growth``: block ``i``'s convolutions are dilated by ``growth ** i`` (receptive field
``3 + 4 (growth^depth - 1) / (growth - 1)`` steps), so a few blocks see a whole 20-step chunk.
Used by the action proposal (:mod:`forethought.policies.proposal`) with neither.
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
    def __init__(self, width: int, cond_dim: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.norm = nn.GroupNorm(min(8, width), width)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.conv2 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.act = nn.Mish()

    def forward(self, h: Tensor, c: Tensor, group: int = 1) -> Tensor:
        film = self.film(c)  # (G, 2W): once per group of `group` sequences
        if group > 1:
            film = film.repeat_interleave(group, dim=0)  # (B, 2W)
        scale, shift = film[:, :, None].chunk(2, dim=1)  # (B, W, 1) each
        y = self.act(self.norm(self.conv1(h)) * (1 + scale) + shift)
        return h + self.conv2(y)


class ConvDenoiser(nn.Module):
    """``forward(x (B, F, C), t (B,), cond (B, K) | None, context (B, F, X) | None) -> eps (B, F, C)``
    (or ``x_0``: what it was trained to predict). ``t`` and ``cond`` may be given per group of sequences.

    Args:
        action_dim: ``C``, the channels of the denoised sequence (model actions for the proposal).
        cond_dim: ``K``, the size of the condition vector (0: unconditional).
        width: channels of the convolutions.
        depth: residual blocks.
        context_dim: ``X``, per-step input channels besides ``x_t`` (0: none).
        dilation_growth: dilation factor between consecutive blocks (1: no dilation).
    """

    def __init__(self, action_dim: int, cond_dim: int, width: int = 64, depth: int = 2, *, context_dim: int = 0,
                 dilation_growth: int = 1) -> None:
        super().__init__()
        if dilation_growth < 1:
            raise ValueError(f"dilation_growth must be >= 1, got {dilation_growth}")
        self.width, self.cond_dim, self.context_dim = width, cond_dim, context_dim
        self.embed_dim = 4 * width
        self.step_mlp = nn.Sequential(nn.Linear(width, self.embed_dim), nn.Mish(), nn.Linear(self.embed_dim, self.embed_dim))
        self.cond_mlp = (nn.Sequential(nn.Linear(cond_dim, self.embed_dim), nn.Mish(),
                                       nn.Linear(self.embed_dim, self.embed_dim)) if cond_dim else None)
        self.inp = nn.Conv1d(action_dim + context_dim, width, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(width, self.embed_dim, dilation_growth ** i) for i in range(depth))
        self.out = nn.Conv1d(width, action_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def embed_condition(self, cond: Tensor) -> Tensor:
        """The condition's embedding ``(G, E)`` from ``cond (G, K)``: computed once, reused at every denoising step."""
        if self.cond_mlp is None:
            raise ValueError("this denoiser is unconditional")
        return self.cond_mlp(cond)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None, context: Tensor | None = None, *,
                cond_embedding: Tensor | None = None) -> Tensor:
        """``x (B, F, C)``; ``t (G,)`` and ``cond (G, K)`` (or its ``cond_embedding (G, E)``) per *group*
        of ``B / G`` consecutive sequences (``G = B``: one each), so that many candidates sharing a step
        and a condition pay for its embedding and FiLM once; ``context (B, F, X)``."""
        B, G = x.shape[0], t.shape[0]
        if G < 1 or B % G:
            raise ValueError(f"t must have one step per sequence or per group of sequences: {G} does not divide {B}")
        steps, inverse = torch.unique(t, return_inverse=True)  # each distinct step embedded once
        c = self.step_mlp(step_embedding(steps, self.width))[inverse]  # (G, E)
        if self.cond_mlp is not None:
            if cond_embedding is None:
                if cond is None:
                    raise ValueError(f"this denoiser is conditioned on a ({self.cond_dim},) vector; got none")
                cond_embedding = self.cond_mlp(cond)
            c = c + cond_embedding
        c = nn.functional.mish(c)
        if self.context_dim:
            if context is None or context.shape[:2] != x.shape[:2] or context.shape[-1] != self.context_dim:
                raise ValueError(f"this denoiser takes a per-step context (B, F, {self.context_dim}) beside x "
                                 f"{tuple(x.shape)}; got {None if context is None else tuple(context.shape)}")
            x = torch.cat([x, context.to(x.dtype)], dim=-1)  # (B, F, C + X)
        h = self.inp(x.transpose(1, 2))  # (B, F, C) -> (B, W, F)
        for block in self.blocks:
            h = block(h, c, B // G)
        return self.out(h).transpose(1, 2)  # (B, F, C)
