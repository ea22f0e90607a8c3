"""Latent actions: an inverse model ``(z_t, z_{t+1}) -> u_t`` through a bottleneck, for video without actions.

Stage 1 of learning from action-free video (``forethought pretrain``; Genie, Bruce et al. 2024;
LAPO, Schmidt & Jiang 2024): the world model's predictor is conditioned on a *latent* action
``u_t`` that the inverse model infers from two consecutive latents, instead of a recorded action.
Without a bottleneck ``u_t`` could simply carry ``z_{t+1}`` and the predictor would copy it; two
bottlenecks keep ``u_t`` to what changed between the frames that the past does not predict:

* ``continuous``: ``u`` of a small dimension (``dim``, e.g. 8 against a 128-d latent) with a
  variational information bottleneck: ``u = mu + sigma * eps`` while training, ``KL(N(mu, sigma)
  || N(0, I))`` weighted by ``kl_weight`` in the loss, ``u = mu`` in eval mode;
* ``vq``: ``u`` is one of ``codes`` learned vectors (|A| = 8 as Genie), straight-through, with a
  commitment loss and dead-code reset (:mod:`forethought.models.vq`): at most ``log2(codes)`` bits.

How much the predictor relies on ``u`` is measured as *controllability* (the prediction error with
``u`` shuffled across the batch minus the error with the inferred ``u``): zero means the
predictor ignores the latent action. Optional label supervision (LAOM, Nikulin et al. 2025) adds a
linear ``action_head`` from the latent action to the real (normalized, frameskip-concatenated)
action, trained on the few labelled transitions.

The inverse model is saved next to the stage-1 world model as a folder ``model.safetensors`` +
``config.json`` (model type ``forethought.InverseModel``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from forethought._schema import from_json_dict
from forethought.models.serialization import open_model_folder, write_model_folder
from forethought.models.vq import VectorQuantizer

INVERSE_MODEL_TYPE = "forethought.InverseModel"
LATENT_KINDS = ("continuous", "vq")
FIX_INVERSE = "Copy the run folder again, or pretrain again (forethought pretrain)"


@dataclass(frozen=True)
class LatentActionConfig:
    """The inverse model and its latent action space (saved as the inverse model's ``config.json``).

    Attributes:
        kind: ``continuous`` (variational bottleneck) or ``vq`` (``codes`` discrete latent actions).
        dim: the latent action dimension (continuous) or the code vector dimension (vq): the
            stage-1 predictor's ``action_dim``.
        codes: ``|A|``, the number of discrete latent actions (vq only).
        latent_dim: ``D`` of the world-model latents it reads.
        hidden, depth: the MLP's width and hidden layers.
        kl_weight: continuous: the weight of the KL term (larger: fewer bits in ``u``).
        commitment: vq: ``beta`` of the commitment loss.
        dead_code_threshold: vq: a code whose share of assignments falls below ``threshold / codes`` is reset.
        label_dim: the real model-action dimension of the label head (label supervision), or None.
        frameskip: env steps per model step of the windows it was trained on; stage 2 uses the same.
    """

    kind: str = "continuous"
    dim: int = 8
    codes: int = 8
    latent_dim: int = 128
    hidden: int = 256
    depth: int = 2
    kl_weight: float = 1e-3
    commitment: float = 0.25
    dead_code_threshold: float = 0.05
    label_dim: int | None = None
    frameskip: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LATENT_KINDS:
            raise ValueError(f"--latent: unknown latent action kind {self.kind!r}; choose {' or '.join(LATENT_KINDS)}")
        for name in ("dim", "latent_dim", "hidden", "depth", "frameskip"):
            if getattr(self, name) < 1:
                raise ValueError(f"LatentActionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.kind == "vq" and self.codes < 2:
            raise ValueError(f"--codes: a VQ latent action space needs at least 2 codes, got {self.codes}")
        for name in ("kl_weight", "commitment", "dead_code_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"LatentActionConfig.{name} must be a finite number >= 0, got {value}")
        if self.label_dim is not None and self.label_dim < 1:
            raise ValueError(f"LatentActionConfig.label_dim must be >= 1 or None, got {self.label_dim}")

    @property
    def bits(self) -> float | None:
        """The information limit of one latent action in bits (vq: ``log2 codes``); None for continuous."""
        return math.log2(self.codes) if self.kind == "vq" else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = ""
                  ) -> LatentActionConfig:
        """Inverse of :meth:`to_dict`, every field type-checked (:func:`forethought._schema.from_json_dict`)."""
        return from_json_dict(cls, d, source=source, written_by=written_by, fix=fix)


class LatentActions(NamedTuple):
    """The inverse model's output for ``T`` transitions."""

    u: Tensor  # (B, T, dim) what the predictor takes (sampled / straight-through quantized)
    mean: Tensor  # (B, T, dim) the deterministic latent action (continuous: mu; vq: the code vector)
    pre: Tensor  # (B, T, dim) before the bottleneck's noise or quantization (continuous: mu; vq: encoder output)
    codes: Tensor | None  # (B, T) int64 code indices (vq), else None
    loss: Tensor  # scalar: kl_weight * KL (continuous) or the VQ loss (vq)
    metrics: dict[str, Tensor]  # detached scalars: "kl" or "commitment"


class InverseModel(nn.Module):
    """``(z_t, z_{t+1}) -> u_t``: an MLP on ``[z_t, z_{t+1}, z_{t+1} - z_t]`` and a bottleneck."""

    def __init__(self, config: LatentActionConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 3 * config.latent_dim
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden), nn.LayerNorm(config.hidden), nn.GELU()]
            width = config.hidden
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(width, 2 * config.dim if config.kind == "continuous" else config.dim)
        self.quantizer = (VectorQuantizer(config.codes, config.dim, config.commitment)
                          if config.kind == "vq" else None)
        self.action_head = nn.Linear(config.dim, config.label_dim) if config.label_dim is not None else None

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, z: Tensor, z_next: Tensor) -> LatentActions:
        """``z, z_next (B, T, D)`` (frame ``t`` and ``t+1`` of each transition) -> :class:`LatentActions`."""
        D = self.config.latent_dim
        if z.shape != z_next.shape or z.ndim != 3 or z.shape[-1] != D:
            raise ValueError(f"InverseModel: z and z_next must both be (B, T, D={D}), got {tuple(z.shape)} and "
                             f"{tuple(z_next.shape)}")
        h = self.out(self.net(torch.cat([z, z_next, z_next - z], dim=-1)))
        if self.quantizer is None:
            mu, logvar = h.chunk(2, dim=-1)
            logvar = logvar.clamp(-10.0, 4.0)
            kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - logvar.float() - 1).sum(-1).mean()
            u = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
            return LatentActions(u, mu, mu, None, self.config.kl_weight * kl, {"kl": kl.detach()})
        qz = self.quantizer(h)
        return LatentActions(qz.q, qz.q, h, qz.codes, qz.loss, {"commitment": qz.commitment})

    @torch.no_grad()
    def infer(self, z: Tensor, z_next: Tensor) -> LatentActions:
        """:meth:`forward` in eval mode (no noise, no usage update), restoring the previous mode."""
        was = self.training
        self.eval()
        try:
            return self(z, z_next)
        finally:
            self.train(was)

    def predict_action(self, latent: LatentActions) -> Tensor:
        """The label head's estimate of the normalized real action ``(B, T, label_dim)`` from ``latent.pre``."""
        if self.action_head is None:
            raise ValueError("this inverse model has no action head; pretrain with --label-fraction > 0")
        return self.action_head(latent.pre)

    def after_step(self) -> int:
        """Dead-code reset after an optimizer step (vq); returns the number of codes reset."""
        return self.quantizer.reset_dead_codes(self.config.dead_code_threshold) if self.quantizer is not None else 0

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``model.safetensors`` and ``config.json`` atomically."""
        return write_model_folder(path, INVERSE_MODEL_TYPE, self.config.to_dict(), self.state_dict(), None)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> InverseModel:
        """Load a folder written by :meth:`save_pretrained`, in eval mode (errors name the file)."""
        folder = open_model_folder(path, INVERSE_MODEL_TYPE, fix=FIX_INVERSE)
        model = cls(folder.parse_config(LatentActionConfig))
        try:
            missing, unexpected = model.load_state_dict(folder.read_weights(), strict=False)
        except RuntimeError as e:
            raise folder.weights_mismatch(str(e).strip().splitlines()[-1].strip()) from e
        if missing or unexpected:
            raise folder.weights_mismatch(f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.to(device).eval()


def shuffled_prediction_gap(predictor: nn.Module, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Controllability: ``(mse_shuffled - mse_inferred, mse_inferred)`` of teacher-forced predictions.

    ``z (B, T, D)`` latents of ``T`` frames, ``u (B, T-1, dim)`` latent actions between them. Each
    window gets the latent actions of the next window in the batch (a roll: no window keeps its
    own, and no random draw disturbs training's random stream; batches are in random order), so a
    predictor that ignores ``u`` scores 0 and one that relies on it scores well above 0.
    """
    if z.shape[0] < 2:
        raise ValueError("controllability needs a batch of at least 2 windows")
    target = z[:, 1:].float()
    mse = (predictor.predict_sequence(z[:, :-1], u).float() - target).pow(2).mean()
    shuffled = (predictor.predict_sequence(z[:, :-1], u.roll(1, dims=0)).float() - target).pow(2).mean()
    return shuffled - mse, mse
