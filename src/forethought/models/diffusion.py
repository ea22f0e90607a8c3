"""Denoising diffusion over short sequences: the cosine schedule, the DDPM loss, DDIM sampling.

Shared by every diffusion model of the package: the action proposal (chunks of model actions,
:mod:`forethought.policies.proposal`) and the multi-step diffusion dynamics (chunks of future
latents, :mod:`forethought.models.diffusion_dynamics`). Shapes: a sample is ``x (B, F, C)``, ``F``
steps of ``C`` channels (model actions, or normalized latent displacements).
``denoiser(x_t (B, F, C), t (B,) int64, cond) -> eps (B, F, C)`` predicts the noise; ``cond`` is
whatever that denoiser is conditioned on (passed through untouched).

* Schedule: cosine (Nichol & Dhariwal 2021, eq. 17): ``alpha_bar(t) = f(t) / f(0)`` with
  ``f(t) = cos^2(((t + 1) / T + s) / (1 + s) * pi / 2)``, ``s = 0.008``, ``beta`` clipped at 0.999.
* Training (Ho et al. 2020, eq. 14): ``t ~ U{0..T-1}``, ``x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps``,
  loss ``|eps - denoiser(x_t, t)|^2``. With ``prediction="x0"`` the denoiser predicts ``x_0`` itself
  (loss ``|x_0 - denoiser(x_t, t)|^2``, as Diffuser): better for nearly deterministic targets sampled
  in very few steps (a future given its actions), where recovering ``x_0`` from a predicted ``eps``
  at high noise divides its error by ``sqrt(ab_t) ~ 0``.
* Sampling (DDIM, Song et al. 2021, eq. 12 with eta = 0): ``S << T`` deterministic steps from
  ``x_T ~ N(0, I)`` (or a given ``noise``: common random numbers across calls); the predicted
  ``x_0`` is clamped to the box the data lives in at every step (and ``eps`` recomputed from it),
  so a few steps never leave the data's range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor, Any], Tensor]
PREDICTIONS = ("eps", "x0")


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")


def cosine_alpha_bar(steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """``alpha_bar_t`` for ``t = 0 .. steps-1`` (float64 ``(steps,)``, decreasing from ~1 towards 0)."""
    if steps < 2:
        raise ValueError(f"a diffusion needs at least 2 steps, got {steps}")
    f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    ab, prev = [], 1.0
    for t in range(steps):
        beta = min(1.0 - f(t + 1) / f(t), max_beta)
        prev *= 1.0 - beta
        ab.append(prev)
    return torch.tensor(ab, dtype=torch.float64)


def ddpm_loss(denoiser: Denoiser, x0: Tensor, cond: Any, alpha_bar: Tensor, prediction: str = "eps") -> Tensor:
    """Mean squared error of ``denoiser``'s ``prediction`` (``"eps"``: the noise, ``"x0"``: the clean sample)
    at uniformly drawn steps (global torch RNG)."""
    _check_prediction(prediction)
    B = x0.shape[0]
    t = torch.randint(0, alpha_bar.shape[0], (B,), device=x0.device)
    ab = alpha_bar.to(x0.device, x0.dtype)[t].view(B, *([1] * (x0.ndim - 1)))
    eps = torch.randn_like(x0)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    return (denoiser(x_t, t, cond) - (eps if prediction == "eps" else x0)).pow(2).mean()


def ddim_timesteps(train_steps: int, sample_steps: int) -> list[int]:
    """The ``sample_steps`` decreasing training steps DDIM visits, from ``train_steps - 1`` to 0."""
    if not 1 <= sample_steps <= train_steps:
        raise ValueError(f"sample_steps must be in [1, {train_steps}] (the diffusion's steps), got {sample_steps}")
    if sample_steps == 1:
        return [train_steps - 1]
    return sorted({round(i * (train_steps - 1) / (sample_steps - 1)) for i in range(sample_steps)}, reverse=True)


@torch.no_grad()
def ddim_sample(denoiser: Denoiser, shape: tuple[int, ...], cond: Any, alpha_bar: Tensor, sample_steps: int,
                low: Tensor | None = None, high: Tensor | None = None, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", noise: Tensor | None = None, prediction: str = "eps") -> Tensor:
    """``shape = (B, F, C)`` samples by deterministic DDIM; ``x_0`` clamped to ``[low, high]`` (broadcast
    against ``(F, C)``: ``(C,)`` or ``(F, C)``). ``noise (B, F, C)``: the starting ``x_T`` (default:
    drawn from ``generator``); the same noise and condition give the same sample. ``prediction``: what
    the denoiser was trained to predict (:func:`ddpm_loss`)."""
    _check_prediction(prediction)
    ab_all = alpha_bar.to(device, torch.float32)
    if noise is None:
        x = torch.randn(shape, generator=generator, device=device)
    elif tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise must have the sample shape {tuple(shape)}, got {tuple(noise.shape)}")
    else:
        x = noise.to(device, torch.float32)
    steps = ddim_timesteps(ab_all.shape[0], sample_steps)
    x0 = x
    for i, t in enumerate(steps):
        ab = ab_all[t]
        ab_prev = ab_all[steps[i + 1]] if i + 1 < len(steps) else torch.ones((), device=device)
        tt = torch.full((shape[0],), t, device=device, dtype=torch.long)
        out = denoiser(x, tt, cond).float()
        if prediction == "eps":
            eps, x0 = out, (x - (1 - ab).sqrt() * out) / ab.sqrt()
        else:
            x0, eps = out, (x - ab.sqrt() * out) / (1 - ab).sqrt()
        if low is not None and high is not None:
            x0 = torch.maximum(torch.minimum(x0, high), low)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
    return x0
