"""Surprise: how far the world model's prediction of a frame is from what the frame shows.

The score of frame ``t+1`` compares the model's *prediction* (from the frames before it and the
actions taken) with the *encoding* of the frame itself, never two consecutive embeddings: a fast
but predicted motion scores low, an action-inconsistent one high (docs/design.md, pitfalls).

* one-step (``steps=1``): predict ``z_{t+1}`` from the last ``h`` frames up to ``t`` and ``a_t``;
* k-step (``steps=k``): imagine ``k`` steps from the frames up to ``t+1-k`` with the actions
  actually taken, and compare the ``k``-th with ``z_{t+1}``. Slower drifts accumulate over ``k``
  steps; early in an episode fewer steps are available and ``min(k, t+1)`` are used.

Two normalizations of the residual ``r = pred - z`` (both fitted on in-distribution data by
calibration, so scores are comparable across models and latent sizes):

* ``"diag"``: ``mean_d (r_d / scale_d)^2`` with ``scale`` the per-dimension spread of embeddings;
* ``"whitened"``: ``(r - m)^T C^{-1} (r - m) / D`` with ``m, C`` the mean and covariance of the
  residuals themselves (a Mahalanobis distance). Directions in which the model is normally never
  wrong weigh most: a change the embedding carries only faintly (a door closing on TwoRoom moves
  no dimension much) stands out there, while a residual along the usual error directions does not.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from forethought.models.protocols import LatentWorldModel


def embedding_scale(latents: Tensor, floor: float = 1e-6) -> Tensor:
    """Per-dimension standard deviation ``(D,)`` of embeddings ``(..., D)`` (floored)."""
    flat = latents.reshape(-1, latents.shape[-1]).double()
    if flat.shape[0] < 2:
        raise ValueError(f"embedding_scale needs at least 2 embeddings, got {flat.shape[0]}")
    return flat.std(dim=0).clamp_min(floor).float()


SCORE_KINDS = ("whitened", "diag")


def fit_whitener(residuals: Tensor, ridge: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and whitening matrix ``W (D, D)`` of residuals ``(..., D)``: ``|(r - m) W|^2 = (r - m)^T C^{-1} (r - m)``.

    ``W`` is the Cholesky factor of the inverse covariance, the covariance ridged by ``ridge``
    times its mean variance so that a direction the data never varies in cannot divide by zero.
    """
    r = residuals.reshape(-1, residuals.shape[-1]).double()
    D = r.shape[1]
    if r.shape[0] < 2 * D:
        raise ValueError(f"whitening {D}-dim residuals needs at least {2 * D} in-distribution frames, got {r.shape[0]}")
    mean = r.mean(0)
    cov = torch.cov(r.T)
    cov = cov + ridge * cov.diagonal().mean() * torch.eye(D, dtype=cov.dtype)
    return mean.float(), torch.linalg.cholesky(torch.linalg.inv(cov)).float()


def whitened_error(residual: Tensor, mean: Tensor, whitener: Tensor) -> Tensor:
    """``|(r - mean) W|^2 / D`` over the last dimension: ``(..., D) -> (...)``."""
    d = residual.float() - mean.to(residual.device)
    return (d @ whitener.to(residual.device)).pow(2).mean(-1)


def normalized_error(pred: Tensor, target: Tensor, scale: Tensor | None) -> Tensor:
    """``mean_d ((pred - target) / scale)^2`` over the last dimension: ``(..., D) -> (...)``."""
    diff = pred.float() - target.float()
    if scale is not None:
        if scale.shape != (diff.shape[-1],):
            raise ValueError(f"scale must be ({diff.shape[-1]},) per-dimension spreads, got {tuple(scale.shape)}")
        diff = diff / scale.to(diff.device)
    return diff.pow(2).mean(-1)


def k_step_predictions(model: LatentWorldModel, z: Tensor, actions: Tensor, steps: int = 1) -> Tensor:
    """Predictions of frames ``1..T-1`` from ``steps`` frames earlier: ``(B, T-1, D)``.

    ``z (B, T, D)`` encoded frames, ``actions (B, T-1, A)`` normalized model actions
    (``actions[:, t]`` takes frame ``t`` to ``t+1``). Entry ``t`` predicts frame ``t+1`` from the
    last ``h`` frames up to ``t+1-k`` (``k = min(steps, t+1)``) and the actions in between.
    """
    if steps < 1:
        raise ValueError(f"surprise steps must be >= 1, got {steps}")
    B, T, D = z.shape
    if steps == 1:  # one teacher-forced pass
        return model.predict_sequence(z[:, :-1], actions)
    h = model.history
    out = z.new_empty(B, T - 1, D)
    for t in range(T - 1):  # frame t+1, imagined from frame s = t+1-k
        s = max(0, t + 1 - steps)
        lo = max(0, s - h + 1)
        past = actions[:, lo:s] if s > lo else None
        out[:, t] = model.rollout(z[:, lo : s + 1], actions[:, s : t + 1], past)[:, -1]
    return out


class ResidualScorer(Protocol):
    """Turns residuals into scores (a :class:`~forethought.surprise.calibration.SurpriseCalibration`)."""

    def score(self, residual: Tensor, steps: int = 1, kind: str = "whitened") -> Tensor: ...


@torch.no_grad()
def prediction_residuals(model: LatentWorldModel, obs: Tensor, actions: Tensor, steps: int = 1) -> Tensor:
    """``pred - z`` of every frame after the first: ``obs (B, T, ...)``, ``actions (B, T-1, A)`` -> ``(B, T-1, D)``.

    Entry ``t`` is the ``steps``-step prediction of frame ``t+1`` minus its encoding. Frames,
    actions and their lengths are validated, with errors that say what was expected.
    """
    z = model.encode(obs)  # validates the frames
    B, T = z.shape[:2]
    if T < 2:
        raise ValueError(f"surprise needs at least 2 frames per clip, got obs shape {tuple(obs.shape)}")
    if actions.ndim != 3 or tuple(actions.shape) != (B, T - 1, model.action_dim):
        raise ValueError(f"actions must be (B={B}, T-1={T - 1}, A={model.action_dim}) normalized model actions "
                         f"for {T} frames, got shape {tuple(actions.shape)}")
    if not torch.isfinite(actions).all():
        raise ValueError("actions contains NaN or inf")
    return latent_residuals(model, z, actions, steps)


def latent_residuals(model: LatentWorldModel, z: Tensor, actions: Tensor, steps: int = 1) -> Tensor:
    """``pred - z`` from already encoded frames ``z (B, T, D)`` -> ``(B, T-1, D)`` (no input checks)."""
    return k_step_predictions(model, z, actions, steps) - z[:, 1:]


def surprise_scores(model: LatentWorldModel, obs: Tensor, actions: Tensor, calibration: ResidualScorer | None = None,
                    steps: int = 1, kind: str = "whitened") -> Tensor:
    """Surprise of every frame after the first: ``obs (B, T, ...)``, ``actions (B, T-1, A)`` -> ``(B, T-1)``.

    Entry ``t`` scores frame ``t+1`` (see the module docstring), normalized by ``calibration``
    (``None``: the raw mean squared error, what :meth:`WorldModel.surprise` returns for
    ``steps=1``). The model should be in eval mode (BatchNorm in the projector).
    """
    residual = prediction_residuals(model, obs, actions, steps)
    return residual.pow(2).mean(-1) if calibration is None else calibration.score(residual, steps, kind)
