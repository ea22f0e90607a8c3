"""Shared fixtures: a tiny world model with non-trivial (randomised) weights, and drafts built from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor, nn

from forethought.models import WorldModel
from forethought.models.config import WorldModelConfig

D, A, HIST = 8, 4, 3


def tiny_model(seed: int = 0, history: int = HIST, kind: str = "transformer") -> WorldModel:
    """A tiny state-space world model whose predictor is not the copy-last identity.

    ``kind``: the preset's transformer (local attention) or an MLP predictor. A fresh predictor
    has a zero head (copy-last); random weights make the dynamics non-trivial.
    """
    torch.manual_seed(seed)
    cfg = WorldModelConfig.preset("tiny", (5,), A, latent_dim=D, history=history)
    cfg = dataclasses.replace(cfg, predictor=dataclasses.replace(cfg.predictor, kind=kind))
    model = WorldModel(cfg)
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


class TargetAsDraft(nn.Module):
    """The target predictor itself used as a draft (a perfect draft), plus optional noise.

    ``noise`` is the largest deviation (absolute, in latent units) added per step, drawn uniformly
    in ``[0, noise]`` with a random direction from ``gen``: a draft whose error is known.
    """

    def __init__(self, target: nn.Module, noise: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.target = target
        self.history = target.history
        self.noise = noise
        self.gen = torch.Generator().manual_seed(seed)

    def step(self, z: Tensor, a: Tensor) -> Tensor:
        out = self.target.predict_sequence(z, a)[:, -1]
        if self.noise:
            direction = torch.randn(out.shape, generator=self.gen)
            direction = direction / direction.norm(dim=-1, keepdim=True)
            out = out + direction * torch.rand(out.shape[0], 1, generator=self.gen) * self.noise
        return out


class SmoothDraft(nn.Module):
    """A deterministic imperfect draft: the target plus ``size * sin(3 sum(z_last)) * u`` (fixed unit ``u``).

    Its deviation from the target varies in ``[0, size]`` with the input, and the same input
    always gives the same output (unlike :class:`TargetAsDraft` with noise).
    """

    def __init__(self, target: nn.Module, size: float, seed: int = 0) -> None:
        super().__init__()
        self.target = target
        self.history = target.history
        self.size = size
        u = torch.randn(D, generator=torch.Generator().manual_seed(seed))
        self.u = u / u.norm()

    def step(self, z: Tensor, a: Tensor) -> Tensor:
        wobble = torch.sin(3 * z[:, -1].sum(-1, keepdim=True))  # (B, 1) in [-1, 1]
        return self.target.predict_sequence(z, a)[:, -1] + self.size * wobble * self.u


@pytest.fixture(params=["transformer", "mlp"])
def model(request: pytest.FixtureRequest) -> WorldModel:
    """The tiny target with each kind of predictor (both verify a round in one causal pass)."""
    return tiny_model(kind=request.param)


def inputs(B: int, L: int, H: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """History latents ``(B, L, D)``, actions ``(B, H, A)`` and past actions ``(B, L-1, A)``."""
    g = torch.Generator().manual_seed(seed)
    z, a = torch.randn(B, L, D, generator=g), torch.randn(B, H, A, generator=g)
    return z, a, torch.randn(B, max(L - 1, 0), A, generator=g)
