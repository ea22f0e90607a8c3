"""Normalization statistics for actions and states, fitted once on a dataset.

The statistics are computed a single time from the episode store (padding rows excluded, see
``EpisodeStore.compute_stats``), written to ``stats.json`` and copied into every checkpoint
through :meth:`Normalizer.to_dict`. Training, planning and acting all use the same
:class:`Normalizer`; nothing refits it at evaluation time (the stable-worldmodel issue #319
failure: stats refit on evaluation data, actions rescaled for the env but not for the model).

Frameskip: a model action is the concatenation of ``k`` env actions, shape ``(..., k*A)``. The
per-dimension statistics are tiled ``k`` times, so one set of env-action statistics serves every
frameskip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")  # np.ndarray or torch.Tensor

DEFAULT_STD_FLOOR = 1e-3


@dataclass(frozen=True)
class NormStats:
    """Per-dimension statistics of one quantity (actions or states), each of shape ``(D,)``.

    ``std`` is already floored at ``std_floor`` so that constant dimensions do not divide by zero.
    """

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: int
    std_floor: float = DEFAULT_STD_FLOOR

    def __post_init__(self) -> None:
        for name in ("mean", "std", "min", "max"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim != 1:
                raise ValueError(f"NormStats.{name} must have shape (D,), got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"NormStats.{name} contains NaN or inf: {value}")
            object.__setattr__(self, name, value)
        dims = {getattr(self, n).shape[0] for n in ("mean", "std", "min", "max")}
        if len(dims) != 1:
            raise ValueError(f"NormStats arrays disagree in dimension: {dims}")
        if np.any(self.std <= 0):
            raise ValueError("NormStats.std must be positive; fit with NormStats.fit to floor it")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, x: np.ndarray, std_floor: float = DEFAULT_STD_FLOOR) -> NormStats:
        """Fit on samples ``x`` of shape ``(N, D)`` (N >= 1), in float64."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"NormStats.fit needs a non-empty (N, D) array, got shape {x.shape}")
        if std_floor <= 0:
            raise ValueError(f"std_floor must be positive, got {std_floor}")
        return cls(
            mean=x.mean(axis=0),
            std=np.maximum(x.std(axis=0), std_floor),
            min=x.min(axis=0),
            max=x.max(axis=0),
            count=int(x.shape[0]),
            std_floor=float(std_floor),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (plain lists and numbers)."""
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "count": self.count,
            "std_floor": self.std_floor,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormStats:
        missing = {"mean", "std", "min", "max", "count"} - set(d)
        if missing:
            raise ValueError(f"NormStats dict is missing keys {sorted(missing)}")
        return cls(
            mean=np.asarray(d["mean"]),
            std=np.asarray(d["std"]),
            min=np.asarray(d["min"]),
            max=np.asarray(d["max"]),
            count=int(d["count"]),
            std_floor=float(d.get("std_floor", DEFAULT_STD_FLOOR)),
        )


def _tiled(stats: NormStats, x: Any, what: str) -> tuple[Any, Any]:
    """Mean and std broadcastable to ``x`` of shape ``(..., k*D)``, as x's array type."""
    last = int(x.shape[-1])
    if last % stats.dim != 0:
        raise ValueError(
            f"{what} has last dimension {last}, which is not a multiple of the {stats.dim} "
            f"dimensions the statistics were fitted on (expected (..., k*{stats.dim}))"
        )
    k = last // stats.dim
    mean, std = np.tile(stats.mean, k), np.tile(stats.std, k)
    if isinstance(x, np.ndarray):
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return mean.astype(dtype), std.astype(dtype)
    import torch  # lazy: the store and collection do not need torch

    if isinstance(x, torch.Tensor):
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return (
            torch.as_tensor(mean, dtype=dtype, device=x.device),
            torch.as_tensor(std, dtype=dtype, device=x.device),
        )
    raise TypeError(f"{what} must be a numpy array or torch tensor, got {type(x).__name__}")


class Normalizer:
    """Normalizes actions (and states, when the dataset has them) with fixed statistics.

    Accepts numpy arrays or torch tensors of shape ``(..., A)`` (env actions) or ``(..., k*A)``
    (frameskip-concatenated model actions); returns the same type, dtype and device.
    ``action`` is None for an action-free dataset (and for a model pretrained on one, whose actions
    are latent): normalizing an action then raises a ValueError that says so.
    """

    def __init__(self, action: NormStats | None, state: NormStats | None = None) -> None:
        self.action = action
        self.state = state

    def normalize_action(self, a: ArrayT) -> ArrayT:
        mean, std = _tiled(self._action_stats(), a, "action")
        return (a - mean) / std

    def denormalize_action(self, a: ArrayT) -> ArrayT:
        mean, std = _tiled(self._action_stats(), a, "action")
        return a * std + mean

    def _action_stats(self) -> NormStats:
        if self.action is None:
            raise ValueError("these normalization statistics have no action statistics: they come from an "
                             "action-free dataset or a model pretrained without actions (forethought pretrain), "
                             "whose actions are latent. Train on action-labelled data first (forethought train "
                             "--init RUN --data LABELLED)")
        return self.action

    def normalize_state(self, s: ArrayT) -> ArrayT:
        mean, std = _tiled(self._state_stats(), s, "state")
        return (s - mean) / std

    def denormalize_state(self, s: ArrayT) -> ArrayT:
        mean, std = _tiled(self._state_stats(), s, "state")
        return s * std + mean

    def _state_stats(self) -> NormStats:
        if self.state is None:
            raise ValueError("this Normalizer has no state statistics (the dataset stores no state)")
        return self.state

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; the format of ``stats.json`` and of the copy inside checkpoints."""
        return {
            "action": None if self.action is None else self.action.to_dict(),
            "state": None if self.state is None else self.state.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        if "action" not in d:
            raise ValueError("Normalizer dict needs an 'action' entry (see Normalizer.to_dict)")
        state, action = d.get("state"), d["action"]
        return cls(
            action=None if action is None else NormStats.from_dict(action),
            state=None if state is None else NormStats.from_dict(state),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normalizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        s = "None" if self.state is None else f"dim={self.state.dim}"
        a = "None" if self.action is None else f"dim={self.action.dim}"
        return f"Normalizer(action {a}, state {s})"
