"""`LatentActionTrainingObjective`: stage-1 JEPA on frames without actions (`forethought pretrain`).

The sibling of :class:`~forethought.training.jepa_objective.JEPATrainingObjective`, for the same
trainer. One step, for a batch of windows ``obs (B, T, C, H, W)``:

    z        = model.encode(obs)                                  (B, T, D)
    u        = inverse(z[:, :-1], z[:, 1:])                        (B, T-1, dim)  latent actions
    pred     = model.predictor over z[:, :-1] with u               position t predicts frame t+1
    loss     = MSE(pred, z[:, 1:]) + lambda * SIGReg(z) + bottleneck loss (KL or VQ)
             + label_weight * MSE(action_head(u), normalized real action)   labelled windows only

The world model is the ordinary one (``action_dim`` = the latent action dimension), so it saves
and loads with ``WorldModel.from_pretrained``; the inverse model is saved beside it.
Controllability (prediction error with ``u`` rolled across the batch minus with the inferred
``u``, :func:`~forethought.models.latent_actions.shuffled_prediction_gap`) is logged as
``diag/controllability`` on training batches and ``val/controllability`` on validation batches,
with deterministic latent actions (no bottleneck noise). VQ runs also log the code perplexity and
the number of dead codes reset.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.models import WorldModel
from forethought.models.latent_actions import InverseModel, shuffled_prediction_gap
from forethought.objectives import collapse_diagnostics, make_regularizer


class LatentActionTrainingObjective(nn.Module):
    """``forward(batch) -> {"loss", "pred_loss", "reg", "latent_loss", ...}`` for a world model and inverse model.

    Args:
        model: the world model; its predictor's ``action_dim`` must equal ``inverse.dim``.
        inverse: the inverse model (its bottleneck and optional label head).
        normalizer: the dataset's statistics (states; actions only for label supervision).
        regularizer: ``sigreg``, ``vicreg`` or ``none`` (an EMA target is not supported here).
        reg_weight: lambda; None takes the regularizer's default.
        seed: seeds SIGReg's direction stream.
        label_weight: weight of the label loss on windows with ``batch["labelled"]`` true.
    """

    def __init__(self, model: WorldModel, inverse: InverseModel, normalizer: Normalizer, *,
                 regularizer: str = "sigreg", reg_weight: float | None = None, seed: int = 0,
                 label_weight: float = 1.0) -> None:
        super().__init__()
        if model.action_dim != inverse.dim:
            raise ValueError(f"the predictor takes {model.action_dim}-d actions, the inverse model makes "
                             f"{inverse.dim}-d latent actions")
        if model.proprio is not None:
            raise ValueError("pretraining without actions does not support proprioception (--proprio-dims)")
        if regularizer == "ema":
            raise ValueError("--regularizer: ema is not supported by pretrain; use sigreg (default), vicreg or none")
        self.model, self.inverse, self.normalizer = model, inverse, normalizer
        self.label_weight = float(label_weight)
        kwargs: dict[str, Any] = {"seed": seed} if regularizer == "sigreg" else {}
        self.regularizer = make_regularizer(regularizer, reg_weight, **kwargs)
        self._codes_reset = 0

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``batch["obs"] (B, T, ...)`` (+ ``"action" (B, T-1, k*A)`` raw and ``"labelled" (B,)`` for label
        supervision) -> scalar terms, and ``_z``, ``_u`` for diagnostics."""
        z = self.model.encode(batch["obs"])  # (B, T, D)
        latent = self.inverse(z[:, :-1], z[:, 1:])  # u (B, T-1, dim)
        pred = self.model.predictor.predict_sequence(z[:, :-1], latent.u)
        pred_loss = F.mse_loss(pred.float(), z[:, 1:].float())
        reg = self.regularizer(z)
        loss = pred_loss + self.regularizer.weight * reg + latent.loss
        out = {"pred_loss": pred_loss.detach(), "reg": reg.detach(), "latent_loss": latent.loss.detach(),
               **{k: v for k, v in latent.metrics.items()}}
        if self.inverse.action_head is not None and "labelled" in batch:
            mask = batch["labelled"].float()  # (B,)
            target = self.normalizer.normalize_action(batch["action"].float())  # (B, T-1, k*A)
            err = (self.inverse.predict_action(latent).float() - target).pow(2).mean(dim=(1, 2))  # (B,)
            label_loss = (err * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + self.label_weight * label_loss
            out["label_loss"] = label_loss.detach()
            out["labelled_fraction"] = mask.mean().detach()
        if not self.training and z.shape[0] >= 2:
            with torch.no_grad():
                out["controllability"] = shuffled_prediction_gap(self.model.predictor, z, latent.mean)[0]
        out["loss"] = loss
        out["_z"], out["_u"] = z.detach(), latent.mean.detach()
        if latent.codes is not None:
            out["_codes"] = latent.codes
        return out

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Dead-code reset (vq) after optimizer step ``step``."""
        self._codes_reset += self.inverse.after_step()

    @torch.no_grad()
    def diagnostics(self, out: dict[str, Tensor]) -> dict[str, float]:
        """Collapse diagnostics of ``z``, controllability, and (vq) code perplexity and resets so far."""
        diag = {k.removeprefix("diag/"): v for k, v in collapse_diagnostics(out["_z"]).items()}
        z, u = out["_z"], out["_u"]
        if z.shape[0] >= 2:
            gap, mse = shuffled_prediction_gap(self.model.predictor, z, u)
            diag["controllability"] = float(gap)
            diag["controllability_ratio"] = float((gap + mse) / mse.clamp_min(1e-12))
        if "_codes" in out and self.inverse.quantizer is not None:
            diag["code_perplexity"] = self.inverse.quantizer.perplexity(out["_codes"])
            diag["codes_reset"] = float(self._codes_reset)
        return diag

    def extra_state(self) -> dict[str, Any]:
        calls = getattr(self.regularizer, "calls", None)
        state: dict[str, Any] = {"codes_reset": self._codes_reset}
        if calls is not None:
            state["regularizer_calls"] = int(calls)
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "regularizer_calls" in state:
            self.regularizer.calls = int(state["regularizer_calls"])
        self._codes_reset = int(state.get("codes_reset", 0))
