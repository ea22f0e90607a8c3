"""A deterministic toy for diffusion dynamics: latents that move linearly with the action, ``z_{t+1} = z_t + W a_t``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from forethought.models.diffusion_dynamics import DiffusionDynamics, DynamicsConfig
from forethought.training.dynamics import DynamicsLoss, WindowDataset
from forethought.training.fit import fit_module

D, A, F, H = 4, 2, 4, 2  # latent dim, action dim, chunk length, history
W = torch.tensor([[0.3, 0.0], [0.0, 0.3], [0.15, -0.15], [0.1, 0.2]])


def linear_episodes(n: int, rows: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``n`` episodes of ``rows`` latents moving linearly with uniform random actions in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    latents, actions = [], []
    for _ in range(n):
        a = torch.rand(rows - 1, A, generator=g) * 2 - 1
        z0 = torch.randn(1, D, generator=g)
        latents.append(torch.cat([z0, z0 + (a @ W.T).cumsum(0)]))
        actions.append(a)
    return latents, actions


def train_linear_dynamics(out: Path, steps: int = 150, **binding: Any) -> DiffusionDynamics:
    """Diffusion dynamics trained ``steps`` steps on 64 toy episodes (~0.2% of a constant guess's error at 150)."""
    torch.manual_seed(0)
    latents, actions = linear_episodes(64, 12, seed=0)
    data = WindowDataset(latents, actions, horizon=F, frameskip=1, history=H)
    binding = {"latent_dim": D, "action_dim": A, **binding}  # a world model's binding (models.binding), if given
    dyn = DiffusionDynamics(DynamicsConfig(horizon=F, history=H, width=32, depth=2, diffusion_steps=50, sample_steps=5,
                                           **binding))
    dyn.set_statistics(*data.statistics())
    fit_module(DynamicsLoss(dyn), data, out, steps=steps, batch_size=128, lr=3e-3, progress=False)
    return dyn
