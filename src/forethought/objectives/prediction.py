"""Latent prediction losses: teacher-forced one-step MSE and an optional multi-step rollout MSE.

Alignment: ``actions[:, j]`` takes frame ``j`` to frame ``j+1`` (docs/conventions.md) and the
predictor's position ``t`` predicts frame ``t+1``, so the teacher-forced prediction of
``target[:, 1:]`` is ``predict_sequence(z[:, :-1], actions)``: nothing else to shift.

Targets: with SIGReg or VICReg, ``target`` is ``z`` itself and gradients flow into both sides
(LeWM; the regularizer is what prevents collapse). With an EMA target encoder, ``target`` is its
detached output.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from forethought.models.predictors import Predictor
from forethought.models.rollout import autoregressive_rollout


def _check(z: Tensor, actions: Tensor, target: Tensor | None) -> Tensor:
    if z.ndim != 3 or z.shape[1] < 2:
        raise ValueError(f"z must be (B, T >= 2, D) latents, got shape {tuple(z.shape)}")
    if actions.ndim != 3 or actions.shape[:2] != (z.shape[0], z.shape[1] - 1):
        raise ValueError(
            f"actions must be (B, T-1, A) = ({z.shape[0]}, {z.shape[1] - 1}, A) for z of shape "
            f"{tuple(z.shape)}, got {tuple(actions.shape)}"
        )
    if target is None:
        return z
    if target.shape != z.shape:
        raise ValueError(f"target must have the shape of z {tuple(z.shape)}, got {tuple(target.shape)}")
    return target


def teacher_forced_loss(predictor: Predictor, z: Tensor, actions: Tensor, target: Tensor | None = None) -> Tensor:
    """Mean squared error of one-step predictions.

    Args:
        z: ``(B, T, D)`` latents the predictor reads.
        actions: ``(B, T-1, A)``.
        target: ``(B, T, D)`` latents to regress onto (default ``z``).

    Returns:
        Scalar ``mean over (B, T-1, D)`` of ``(predict(z_{<=t}, a_{<=t}) - target_{t+1})^2``.
    """
    target = _check(z, actions, target)
    pred = predictor.predict_sequence(z[:, :-1], actions)  # (B, T-1, D); position t -> frame t+1
    return F.mse_loss(pred.float(), target[:, 1:].float())


def rollout_loss(
    predictor: Predictor, z: Tensor, actions: Tensor, context: int, target: Tensor | None = None
) -> Tensor:
    """Mean squared error of an open-loop rollout from the first ``context`` frames.

    Frames ``context .. T-1`` are predicted autoregressively (each prediction fed back), with
    ``actions[:, :context-1]`` between the context frames and ``actions[:, context-1:]`` ahead.
    Gradients flow through the whole rollout (backprop through time).
    """
    target = _check(z, actions, target)
    T = z.shape[1]
    if not 1 <= context < T:
        raise ValueError(f"rollout context must be in [1, T-1] = [1, {T - 1}], got {context}")
    pred = autoregressive_rollout(
        predictor, z[:, :context], actions[:, context - 1 :], past_actions=actions[:, : context - 1]
    )  # (B, T - context, D)
    return F.mse_loss(pred.float(), target[:, context:].float())
