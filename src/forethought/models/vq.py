"""Vector quantization with a straight-through gradient, a commitment loss and dead-code reset.

The discrete bottleneck of Genie's latent action model (Bruce et al. 2024; VQ-VAE, van den Oord et
al. 2017): an input vector ``x (..., C)`` is replaced by its nearest codebook vector ``e_k``; the
forward value is ``e_k``, the gradient passes to ``x`` unchanged (straight-through). The loss

    ||sg(x) - e_k||^2  (moves the codes to the inputs)  +  beta ||x - sg(e_k)||^2  (commitment)

keeps inputs and codes together. The codebook starts as k-means centres of the first training batch's
inputs (a data-dependent start: random codes far from where the inputs are would all lose to the one
nearest code, and straight-through learning then maps inputs to codes arbitrarily; measured on
4-move dots, it is the difference between 50% and 100% code -> move accuracy with the AdaLN
predictor). Codes that no input picks stop learning ("dead codes"); every
code's share of the assignments is tracked as an exponential moving average (a buffer, so it is
checkpointed), and :meth:`VectorQuantizer.reset_dead_codes` moves each code whose share fell below
``threshold / K`` onto a random input of the last training batch (Dhariwal et al. 2020, Jukebox).
Resets draw from torch's global RNG, which checkpoints capture, so a resumed run resets the same codes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

USAGE_DECAY = 0.95  # an unused code's share falls from 1/K to 0.05/K in ~60 optimizer steps


class Quantized(NamedTuple):
    """What :class:`VectorQuantizer` returns for inputs ``x (..., C)``."""

    q: Tensor  # (..., C) the nearest codes, straight-through: value e_k, gradient to x
    codes: Tensor  # (...) int64 code indices
    loss: Tensor  # scalar: codebook loss + beta * commitment loss
    commitment: Tensor  # scalar ||x - sg(e)||^2 (detached, for logging)


class VectorQuantizer(nn.Module):
    """``K`` codes of dimension ``C``.

    Args:
        codes: codebook size ``K`` (|A| of the latent action space).
        dim: code dimension ``C``.
        commitment: ``beta``, the weight of the commitment term.
    """

    def __init__(self, codes: int, dim: int, commitment: float = 0.25) -> None:
        super().__init__()
        if codes < 2 or dim < 1:
            raise ValueError(f"VectorQuantizer: need codes >= 2 and dim >= 1, got {codes}, {dim}")
        self.num_codes, self.dim, self.commitment = int(codes), int(dim), float(commitment)
        self.codebook = nn.Parameter(torch.randn(codes, dim))
        self.register_buffer("usage", torch.full((codes,), 1.0 / codes))  # EMA share of assignments
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))  # k-means start done
        self._last_inputs: Tensor | None = None  # the last training batch's inputs, for resets

    def nearest(self, x: Tensor) -> Tensor:
        """Index of the nearest code (L2) for each vector of ``x (..., C)`` -> ``(...)`` int64."""
        flat = x.reshape(-1, self.dim).float()
        cb = self.codebook.float()
        dist = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ cb.T + cb.pow(2).sum(-1)  # (N, K)
        return dist.argmin(-1).reshape(x.shape[:-1])

    def forward(self, x: Tensor) -> Quantized:
        if x.shape[-1] != self.dim:
            raise ValueError(f"VectorQuantizer: inputs must be (..., {self.dim}), got {tuple(x.shape)}")
        if self.training and not bool(self.initialized):
            self.init_codebook(x.detach().reshape(-1, self.dim))
        codes = self.nearest(x)
        e = self.codebook[codes].to(x.dtype)  # (..., C)
        codebook_loss = F.mse_loss(e.float(), x.detach().float())
        commit = F.mse_loss(x.float(), e.detach().float())
        if self.training:
            with torch.no_grad():
                share = torch.bincount(codes.reshape(-1), minlength=self.num_codes).float() / max(codes.numel(), 1)
                self.usage.mul_(USAGE_DECAY).add_((1 - USAGE_DECAY) * share)
                self._last_inputs = x.detach().reshape(-1, self.dim).float()
        q = x + (e - x).detach()  # straight-through
        return Quantized(q, codes, codebook_loss + self.commitment * commit, commit.detach())

    @torch.no_grad()
    def init_codebook(self, inputs: Tensor, iterations: int = 10) -> None:
        """Set the codes to k-means centres of ``inputs (N, C)`` (k-means++ seeding, ``iterations`` Lloyd steps)."""
        x = inputs.float()
        if len(x) < self.num_codes:  # too few inputs: repeat them, jittered apart below
            x = x.repeat(-(-self.num_codes // len(x)), 1)
        centres = x[torch.randint(len(x), (1,), device=x.device)]
        for _ in range(1, self.num_codes):  # k-means++: far points are likelier next centres
            d2 = torch.cdist(x, centres).min(1).values.pow(2)
            pick = torch.multinomial(d2 / d2.sum() if d2.sum() > 0 else torch.ones_like(d2), 1)
            centres = torch.cat([centres, x[pick]])
        for _ in range(iterations):
            assign = torch.cdist(x, centres).argmin(1)
            for k in range(self.num_codes):
                members = x[assign == k]
                if len(members):
                    centres[k] = members.mean(0)
        jitter = 1e-3 * x.std(0, keepdim=True).clamp_min(1e-3) * torch.randn_like(centres)
        self.codebook.data.copy_((centres + jitter).to(self.codebook.dtype))
        self.initialized.fill_(True)

    @torch.no_grad()
    def reset_dead_codes(self, threshold: float = 0.05) -> int:
        """Move every code whose usage share is below ``threshold / K`` onto a random recent input.

        Returns the number of codes reset (0 before the first training batch).
        """
        if self._last_inputs is None or not len(self._last_inputs):
            return 0
        dead = torch.nonzero(self.usage < threshold / self.num_codes).reshape(-1)
        if not len(dead):
            return 0
        inputs = self._last_inputs.to(self.codebook.device)
        pick = torch.randint(len(inputs), (len(dead),), device=inputs.device)
        jitter = 0.01 * inputs.std(0, keepdim=True).clamp_min(1e-3) * torch.randn(len(dead), self.dim,
                                                                                  device=inputs.device)
        self.codebook.data[dead] = (inputs[pick] + jitter).to(self.codebook.dtype)
        self.usage[dead] = 1.0 / self.num_codes  # a fresh code gets a fair share's grace period
        return int(len(dead))

    @torch.no_grad()
    def perplexity(self, codes: Tensor) -> float:
        """``exp(entropy)`` of the code histogram of ``codes``: 1 = one code used, ``K`` = all used evenly."""
        p = torch.bincount(codes.reshape(-1), minlength=self.num_codes).float()
        p = p / p.sum().clamp_min(1)
        return float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))
