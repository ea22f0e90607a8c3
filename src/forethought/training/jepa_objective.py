"""`JEPATrainingObjective`: the world-model loss as the `nn.Module` the trainer optimizes (and DDP wraps).

One step, for a batch of windows `obs (B, T, C, H, W)` uint8 and raw actions `(B, T-1, k*A)`:

    a      = normalizer.normalize_action(action)          the dataset's statistics, never refit
    z      = model.encode(obs)                            (B, T, D)
    pred   = predictor over z[:, :-1] with a              position t predicts frame t+1
    target = z[:, 1:]                                     SIGReg / VICReg / none: no stop-gradient (LeWM)
           = EMA encoder(obs)[:, 1:], detached            ema
    loss   = MSE(pred, target) + lambda * R(z)  (+ rollout, + decoder probe or recon_weight * pixel MSE)
           + state_weight * MSE(readout(z), normalized true state)   optional, privileged supervision

The loss itself is `forethought.objectives.JEPALoss`; this module adds what training needs around
it: action normalization, the EMA target as a registered submodule (so it is checkpointed), the EMA
update after each optimizer step, the embeddings for collapse diagnostics, and the regularizer's
call counter (SIGReg draws directions from `seed + calls`; a resumed run must continue the count).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.models import WorldModel
from forethought.objectives import JEPALoss, collapse_diagnostics, make_regularizer

# JEPALoss metric names -> the trainer's term names (logged as train/<term>, val/<term>).
_TERMS = {"loss/prediction": "pred_loss", "loss/regularizer": "reg", "loss/rollout": "rollout_loss",
          "loss/reconstruction": "recon_loss"}
_STATE_TERM = "state_loss"


class JEPATrainingObjective(nn.Module):
    """`forward(batch) -> {"loss", "pred_loss", "reg", ..., "_z"}` for a `WorldModel`.

    Args:
        model: the world model being trained (its `normalization` is set from `normalizer`).
        normalizer: the dataset's statistics (`stats.json`); copied into the saved model.
        regularizer: `sigreg`, `vicreg`, `ema` or `none`.
        reg_weight: lambda; None takes the regularizer's default.
        total_steps: training length (the EMA momentum schedule runs over it).
        seed: seeds SIGReg's direction stream (identical on every DDP rank).
        rollout_weight: weight of the multi-step rollout loss (0 disables it).
        state_weight: weight of the readout loss (needs ``model.readout`` and batches with ``state``):
            privileged supervision that teaches the encoder the true state.
        recon_weight: weight of the decoder's pixel loss through the encoder (needs ``model.decoder``);
            0 keeps a decoder, if the model has one, a probe on detached latents.
    """

    def __init__(self, model: WorldModel, normalizer: Normalizer, *, regularizer: str = "sigreg",
                 reg_weight: float | None = None, total_steps: int | None = None, seed: int = 0,
                 rollout_weight: float = 0.0, state_weight: float = 0.0, recon_weight: float = 0.0) -> None:
        super().__init__()
        if state_weight and model.readout is None:
            raise ValueError("state_weight > 0 needs a model with a readout head (WorldModelConfig.readout_dim)")
        self.state_weight = float(state_weight)
        self.model = model
        self.normalizer = normalizer
        model.normalization = normalizer.to_dict()
        kwargs: dict[str, Any] = {"seed": seed} if regularizer == "sigreg" else {}
        self.regularizer = make_regularizer(regularizer, reg_weight, **kwargs)
        self.target = (self.regularizer.make_target(model.encoder, total_steps)
                       if getattr(self.regularizer, "needs_target_encoder", False) else None)
        self.loss_fn = JEPALoss(self.regularizer, rollout_weight=rollout_weight, target_encoder=self.target,
                                recon_weight=recon_weight)
        self._z: Tensor | None = None
        self._z_live: Tensor | None = None  # the same embeddings with their graph, for the readout loss
        # The online encoder's output, captured without a second forward pass (for diagnostics).
        # Registered after the EMA copy was made, so the target encoder does not carry the hook.
        model.encoder.register_forward_hook(self._keep_embeddings)

    def _keep_embeddings(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        self._z = output.detach()
        self._z_live = output if self.state_weight else None

    def train(self, mode: bool = True) -> JEPATrainingObjective:
        """As ``nn.Module.train``, except that a part of the model whose parameters are all frozen
        (``forethought adapt --only dynamics`` freezes the encoder) stays in eval mode: its
        BatchNorm statistics must not drift either, or the frozen encoder would encode differently."""
        super().train(mode)
        for name in ("encoder", "predictor", "readout", "decoder"):
            part = getattr(self.model, name, None)
            params = list(part.parameters()) if part is not None else []
            if params and not any(p.requires_grad for p in params):
                part.eval()
        return self

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """`batch["obs"] (B, T, ...)`, `batch["action"] (B, T-1, k*A)` raw -> scalar terms (+ `_z (B, T, D)`)."""
        actions = self.normalizer.normalize_action(batch["action"].float())
        proprio = self.model.proprio_from_state(batch["state"]) if self.model.proprio is not None else None
        loss, metrics = self.loss_fn(self.model, batch["obs"], actions, proprio)
        out = {"loss": loss}
        for key, value in metrics.items():
            if key in _TERMS:
                out[_TERMS[key]] = value
        if self.state_weight:  # (B, T, S) normalized true states, read from every frame's latent
            target = self.normalizer.normalize_state(batch["state"].float())
            state_loss = (self.model.readout(self._z_live) - target).pow(2).mean()
            out["loss"] = loss + self.state_weight * state_loss
            out[_STATE_TERM] = state_loss.detach()
        if self._z is not None:
            out["_z"] = self._z
        return out

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """EMA target update after optimizer step `step` (0-based)."""
        if self.target is not None:
            self.target.update(self.model.encoder, step)

    @torch.no_grad()
    def diagnostics(self, out: dict[str, Tensor]) -> dict[str, float]:
        """Effective rank and per-dimension std of this batch's embeddings (collapse shows here first)."""
        if "_z" not in out:
            return {}
        return {k.removeprefix("diag/"): v for k, v in collapse_diagnostics(out["_z"]).items()}

    def extra_state(self) -> dict[str, Any]:
        """Python-side state that is not in `state_dict` but must survive a resume."""
        calls = getattr(self.regularizer, "calls", None)
        return {} if calls is None else {"regularizer_calls": int(calls)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "regularizer_calls" in state:
            self.regularizer.calls = int(state["regularizer_calls"])
