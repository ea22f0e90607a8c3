"""What ties a part trained for one world model (an action proposal, a diffusion dynamics model) to it.

Such a part works in the model's *action space* (normalized, frameskip-concatenated model actions:
the action dim, the frameskip, the env and the normalization statistics) and, when it reads or
writes latents, in its *latent space* (the latent dim and the encoder's weights). Its folder records
:func:`model_binding` of the model it was trained for, and its loader compares that record with
the model it is handed (:func:`binding_mismatch`). A model adapted with
``forethought adapt --only dynamics`` keeps its encoder and statistics, so every part still fits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from forethought.models.serialization import weights_fingerprint

SPACE_FIELDS = ("action_dim", "frameskip", "env_id")


def action_stats_fingerprint(normalization: dict[str, Any] | None) -> str:
    """SHA-256 of a model's action normalization statistics (``model.normalization["action"]``)."""
    if not normalization or "action" not in normalization:
        return ""
    return hashlib.sha256(json.dumps(normalization["action"], sort_keys=True).encode()).hexdigest()


def model_binding(model: Any) -> dict[str, Any]:
    """``action_dim``, ``latent_dim``, ``frameskip``, ``env_id``, ``encoder_fingerprint`` and
    ``action_stats`` of ``model`` (a WorldModel): the config fields of a part trained for it."""
    cfg = model.config
    return {"action_dim": int(model.action_dim), "latent_dim": int(model.latent_dim),
            "frameskip": getattr(cfg, "frameskip", None), "env_id": getattr(cfg, "env_id", None),
            "encoder_fingerprint": weights_fingerprint(model.encoder),
            "action_stats": action_stats_fingerprint(model.normalization)}


def binding_mismatch(recorded: Any, model: Any) -> tuple[str, str] | None:
    """``None`` if the part whose config is ``recorded`` (with the :func:`model_binding` fields) fits
    ``model``; else ``(kind, detail)`` with ``kind`` ``"space"`` (another action space) or ``"latents"``
    (another encoder), and ``detail`` the differences, for the caller's message. Empty or ``None``
    recorded values are not checked."""
    want = model_binding(model)
    space = [(name, getattr(recorded, name), want[name]) for name in SPACE_FIELDS
             if getattr(recorded, name) is not None and want[name] is not None and getattr(recorded, name) != want[name]]
    if space:
        return "space", ", ".join(f"{n} {a!r} (the model: {b!r})" for n, a, b in space)
    if recorded.action_stats and want["action_stats"] and recorded.action_stats != want["action_stats"]:
        return "space", "the model normalizes actions with other statistics (another dataset)"
    if recorded.latent_dim != want["latent_dim"]:
        return "latents", f"latent_dim {recorded.latent_dim} (the model: {want['latent_dim']})"
    if recorded.encoder_fingerprint and recorded.encoder_fingerprint != want["encoder_fingerprint"]:
        return "latents", (f"encoder fingerprint {recorded.encoder_fingerprint[:12]}..., the model's "
                           f"{want['encoder_fingerprint'][:12]}...")
    return None
