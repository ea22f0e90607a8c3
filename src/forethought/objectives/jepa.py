"""The full world-model training loss: prediction + weight * regularizer (+ detached decoder).

    L = MSE(pred_{t+1}, target_{t+1})                         teacher forced, every position
      + rollout_weight * MSE(rollout from h frames, target)   optional, multi-step
      + regularizer.weight * R(z)                             SIGReg / VICReg / none
      + decoder MSE on detached latents                       only if the model has a decoder
        (or recon_weight * decoder MSE through the encoder, when recon_weight > 0)

``target`` is ``z`` (SIGReg, VICReg, none) or the EMA target encoder's detached output (ema).
SIGReg is applied to the encoder embeddings ``z (B, T, D)`` per time step over the batch (LeWM):
see :class:`~forethought.objectives.sigreg.SIGReg` ``per_step``.
"""

from __future__ import annotations

from torch import Tensor, nn

from forethought.objectives.ema import EMATarget
from forethought.objectives.prediction import rollout_loss, teacher_forced_loss


class JEPALoss:
    """Callable ``(model, obs, actions) -> (loss, metrics)``.

    Args:
        regularizer: from :func:`~forethought.objectives.regularizer.make_regularizer`.
        rollout_weight: weight of the multi-step rollout loss (0 disables it).
        rollout_context: frames of context for the rollout loss (default: the model's history).
        target_encoder: the EMA target, required when ``regularizer.needs_target_encoder``.
        recon_weight: 0: the model's decoder (if any) is a probe on detached latents; > 0: its pixel
            loss, times this weight, trains the encoder too (needs a model with a decoder).
    """

    def __init__(
        self,
        regularizer: nn.Module,
        rollout_weight: float = 0.0,
        rollout_context: int | None = None,
        target_encoder: EMATarget | None = None,
        recon_weight: float = 0.0,
    ) -> None:
        if rollout_weight < 0 or recon_weight < 0:
            raise ValueError(f"rollout_weight and recon_weight must be >= 0, got {rollout_weight}, {recon_weight}")
        if getattr(regularizer, "needs_target_encoder", False) and target_encoder is None:
            raise ValueError(
                f"regularizer {regularizer.name!r} needs a target encoder: "
                "pass target_encoder=regularizer.make_target(model.encoder, total_steps)"
            )
        self.regularizer = regularizer
        self.rollout_weight = rollout_weight
        self.rollout_context = rollout_context
        self.target_encoder = target_encoder
        self.recon_weight = float(recon_weight)

    def __call__(self, model: nn.Module, obs: Tensor, actions: Tensor,
                 proprio: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``obs (B, T, ...)``, ``actions (B, T-1, A)`` (and ``proprio (B, T, P)`` for a model with
        proprioception) -> scalar loss and detached metric tensors.

        Metrics stay tensors (no ``.item()``) so a GPU step does not synchronise; the logger
        converts them when it writes.
        """
        if proprio is not None and self.target_encoder is not None:
            raise ValueError("proprioception is not supported with the EMA target encoder; use sigreg or vicreg")
        z = model.encode(obs) if proprio is None else model.encode(obs, proprio)  # (B, T, D)
        target = self.target_encoder(obs) if self.target_encoder is not None else None
        pred = teacher_forced_loss(model.predictor, z, actions, target)
        reg = self.regularizer(z)
        loss = pred + self.regularizer.weight * reg
        metrics = {"loss/prediction": pred.detach(), "loss/regularizer": reg.detach()}
        if self.rollout_weight > 0 and z.shape[1] > 2:
            context = min(self.rollout_context or model.history, z.shape[1] - 1)
            roll = rollout_loss(model.predictor, z, actions, context, target)
            loss = loss + self.rollout_weight * roll
            metrics["loss/rollout"] = roll.detach()
        if getattr(model, "decoder", None) is not None:
            # recon_weight > 0: the pixel loss trains the encoder too; else the decoder is a probe on detached z
            trains = self.recon_weight > 0
            rec = model.decoder.loss(z, obs, detach=not trains)
            loss = loss + (self.recon_weight if trains else 1.0) * rec
            metrics["loss/reconstruction"] = rec.detach()
        elif self.recon_weight > 0:
            raise ValueError("recon_weight > 0 needs a model with a decoder (WorldModelConfig(decoder=DecoderConfig()))")
        metrics["loss/total"] = loss.detach()
        return loss, metrics
