"""The draft predictor: a small MLP that imitates a target world model's predictor.

Speculative rollouts (:mod:`forethought.speculative.rollout`) let the draft propose ``gamma``
steps one at a time (cheap) and the target check them in one parallel pass (expensive once, not
``gamma`` times). The draft lives in the target's latent space: it reads the same ``h`` latents
and actions as the target's predictor and predicts the same next latent, so it is only useful
next to the target it was distilled from. Its folder records a fingerprint of that target and
:func:`load_draft` refuses any other target.

A draft folder is ``model.safetensors`` + ``config.json`` (model type ``forethought.Draft``),
written atomically like every model folder. ``config.json`` also records ``latent_scale``, the
scale that makes the speculative tolerance ``epsilon`` relative (see :class:`DraftConfig`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought._schema import from_json_dict
from forethought.models.serialization import ModelFolderError, open_model_folder, weights_fingerprint, write_model_folder

DRAFT_TYPE = "forethought.Draft"
FIX_DRAFT = "Distill the draft again with `forethought distill --model MODEL --data DATA --out DRAFT`"


class DraftMismatchError(ModelFolderError):
    """A draft was distilled from a different target model than the one it is used with."""


@dataclass(frozen=True)
class DraftConfig:
    """Draft architecture plus what ties it to its target.

    Attributes:
        latent_dim, action_dim, history: must equal the target's ``D``, ``A`` and ``h``.
        width: hidden width of the MLP.
        depth: hidden layers (>= 1).
        target_fingerprint: :func:`target_fingerprint` of the target it imitates ("" = unchecked).
        latent_scale: RMS distance of in-distribution latents from their mean,
            ``sqrt(E ||z - E z||^2)``, measured at distillation on dataset latents encoded by the
            target. Speculative rollouts accept a drafted latent when its distance to the
            target's prediction is at most ``epsilon * latent_scale``; final errors are reported
            in the same unit.
        stats: distillation metrics (JSON-safe), e.g. held-out one-step relative error.
    """

    latent_dim: int
    action_dim: int
    history: int
    width: int = 256
    depth: int = 2
    target_fingerprint: str = ""
    latent_scale: float = 1.0
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("latent_dim", "action_dim", "history", "width", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DraftConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.latent_scale > 0 and self.latent_scale < float("inf")):
            raise ValueError(f"DraftConfig.latent_scale must be finite and > 0, got {self.latent_scale}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = "") -> DraftConfig:
        """Inverse of :meth:`to_dict`, every field type-checked (:func:`forethought._schema.from_json_dict`)."""
        return from_json_dict(cls, d, source=source, written_by=written_by, fix=fix)


class DraftPredictor(nn.Module):
    """MLP on the concatenated last ``h`` latents and actions, predicting ``z_t + delta``.

    The head starts at zero, so an untrained draft is the copy-last baseline. One :meth:`step`
    is a handful of small matmuls (~0.06 ms at ``B = 1`` on one CPU core against ~0.6 ms for one
    step of the ``small`` transformer target), which is what makes drafting cheap.
    """

    def __init__(self, config: DraftConfig) -> None:
        super().__init__()
        self.config = config
        self.history = config.history
        d_in = config.history * (config.latent_dim + config.action_dim)
        layers: list[nn.Module] = []
        for _ in range(config.depth):
            layers += [nn.Linear(d_in, config.width), nn.GELU()]
            d_in = config.width
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(d_in, config.latent_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def step(self, z: Tensor, a: Tensor) -> Tensor:
        """Next latent from a full context: ``z (B, h, D)``, ``a (B, h, A)`` -> ``(B, D)``.

        ``a[:, -1]`` takes ``z[:, -1]`` to the predicted latent (the target's alignment).
        """
        x = torch.cat([z.flatten(1), a.flatten(1)], dim=1)  # (B, h*D + h*A)
        return z[:, -1] + self.head(self.net(x))

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """Teacher-forced ``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)`` (the Predictor protocol).

        Positions with fewer than ``h`` frames of context see the first latent repeated and zero
        (mean normalized) actions in front, as :class:`~forethought.models.predictors.MLPPredictor`.
        """
        B, T, D = z.shape
        h = self.history
        z_in = torch.cat([z[:, :1].expand(B, h - 1, D), z], dim=1)
        a_in = torch.cat([a.new_zeros(B, h - 1, a.shape[-1]), a], dim=1)
        zw = z_in.unfold(1, h, 1).permute(0, 1, 3, 2).reshape(B * T, h, D)  # (B T, h, D)
        aw = a_in.unfold(1, h, 1).permute(0, 1, 3, 2).reshape(B * T, h, a.shape[-1])
        return self.step(zw, aw).view(B, T, D)


def target_fingerprint(model: nn.Module) -> str:
    """SHA-256 over a world model's weights (names, shapes, dtypes and bytes), hex.

    Covers the encoder too: the draft is only valid in the latent space the encoder defines.
    """
    return weights_fingerprint(model)


def check_draft_for(draft: DraftPredictor, target: nn.Module) -> None:
    """Raise :class:`DraftMismatchError` unless ``draft`` fits ``target`` (dims, history, fingerprint)."""
    cfg = draft.config
    tcfg = getattr(target, "config", None)
    want = (getattr(tcfg, "latent_dim", None), getattr(tcfg, "action_dim", None), getattr(tcfg, "history", None))
    have = (cfg.latent_dim, cfg.action_dim, cfg.history)
    if want != have:
        raise DraftMismatchError(
            f"draft has (latent_dim, action_dim, history) = {have} but the target has {want}; "
            "distill a draft for this model with `forethought distill --model ...`"
        )
    if cfg.target_fingerprint and cfg.target_fingerprint != target_fingerprint(target):
        raise DraftMismatchError(
            "this draft was distilled from a different target model (weights fingerprint "
            f"{cfg.target_fingerprint[:12]}... does not match); distill a new draft for this model "
            "with `forethought distill --model ...`"
        )


def save_draft(draft: DraftPredictor, path: str | os.PathLike[str]) -> Path:
    """Write ``model.safetensors`` + ``config.json`` atomically (never pickle)."""
    return write_model_folder(path, DRAFT_TYPE, draft.config.to_dict(), draft.state_dict(), None)


def load_draft(path: str | os.PathLike[str], target: nn.Module | None = None) -> DraftPredictor:
    """Load a draft folder in eval mode; with ``target``, refuse a draft distilled from another model.

    Damaged files and configs with wrong, missing or unknown fields raise ``ValueError`` s naming
    the file (see :mod:`forethought.models.serialization`).
    """
    folder = open_model_folder(path, DRAFT_TYPE, fix=FIX_DRAFT)
    draft = DraftPredictor(folder.parse_config(DraftConfig))
    state = folder.read_weights()
    try:
        draft.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise folder.weights_mismatch(str(e).strip().splitlines()[-1].strip()) from e
    if target is not None:
        check_draft_for(draft, target)
    return draft.eval()


def relative_error(pred: Tensor, ref: Tensor, scale: float) -> Tensor:
    """``||pred - ref||_2 / scale`` over the last dimension: ``(..., D) -> (...)``."""
    return torch.linalg.vector_norm(pred - ref, dim=-1) / scale


def distillation_loss(draft: DraftPredictor, z: Tensor, a: Tensor, target_next: Tensor) -> Tensor:
    """Mean squared error of ``draft.step(z, a)`` against the target's prediction ``(B, D)``."""
    return F.mse_loss(draft.step(z, a), target_next)
