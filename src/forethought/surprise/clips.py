"""Clips: frames at the model's rate and the model actions between them, from a dataset or an env.

A clip of ``T`` frames holds observations in the env's layout (``(T, H, W, C)`` uint8 pixels or
``(T, S)`` states), the ``T-1`` raw model actions (each the concatenation of ``frameskip`` env
actions, docs/conventions.md) and, for evaluation only, the true states. ``event`` marks the
first transition that a perturbation affects (``None`` in normal clips): transition ``j`` goes
from frame ``j`` to frame ``j+1``, and ``scores[j]`` of :func:`~forethought.surprise.score.surprise_scores`
is its surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor


@dataclass
class Clip:
    """``T`` model-rate frames of one episode (see the module docstring)."""

    obs: np.ndarray  # (T, H, W, C) uint8 or (T, S)
    actions: np.ndarray  # (T-1, frameskip * env_action_dim) raw env actions
    states: np.ndarray | None = None  # (T, S) true states, for pictures and checks only
    event: int | None = None  # first perturbed transition
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.obs) < 2 or len(self.actions) != len(self.obs) - 1:
            raise ValueError(f"a clip needs T >= 2 frames and T-1 actions, got {len(self.obs)} frames and "
                             f"{len(self.actions)} actions")
        if self.event is not None and not 0 <= self.event < len(self.actions):
            raise ValueError(f"clip event {self.event} is not a transition index in [0, {len(self.actions)})")

    def __len__(self) -> int:
        return len(self.obs)


def store_clip(store: Any, episode: int, frameskip: int) -> Clip:
    """Episode ``episode`` of an :class:`~forethought.data.store.EpisodeStore` at the model rate.

    Frames are rows ``0, k, 2k, ...`` (``k = frameskip``); the model action between two frames is
    the concatenation of the ``k`` env actions in between, as in training windows.
    """
    if frameskip < 1:
        raise ValueError(f"frameskip must be >= 1, got {frameskip}")
    ep = store.episode(int(episode))
    rows = np.arange(0, ep.num_steps + 1, frameskip)  # frame rows; the last row is the final observation
    if len(rows) < 2:
        raise ValueError(f"episode {episode} has {ep.num_steps} steps: fewer than one model step of {frameskip}")
    env_actions = ep.action[: rows[-1]]  # (rows[-1], A): padding row excluded
    actions = env_actions.reshape(len(rows) - 1, frameskip * env_actions.shape[-1])
    states = ep.state[rows] if getattr(ep, "state", None) is not None else None
    return Clip(obs=ep.obs[rows], actions=actions.astype(np.float32), states=states,
                info={"source": "dataset", "episode": int(episode)})


def clip_batch(clips: Sequence[Clip], normalizer: Any, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
    """Stack equal-length clips into model inputs: obs ``(B, T, C, H, W)`` uint8 (or ``(B, T, S)``)
    and normalized actions ``(B, T-1, A)`` float32."""
    if not clips:
        raise ValueError("clip_batch needs at least one clip")
    lengths = {len(c) for c in clips}
    if len(lengths) != 1:
        raise ValueError(f"clip_batch needs clips of one length, got lengths {sorted(lengths)}")
    obs = torch.as_tensor(np.stack([c.obs for c in clips]), device=device)
    if obs.ndim == 5:  # (B, T, H, W, C) -> (B, T, C, H, W)
        obs = obs.permute(0, 1, 4, 2, 3).contiguous()
    else:
        obs = obs.float()
    actions = np.stack([normalizer.normalize_action(c.actions.astype(np.float64)) for c in clips])
    return obs, torch.as_tensor(actions, dtype=torch.float32, device=device)
