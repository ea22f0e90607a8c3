"""A change of the world in the middle of an online run: other env kwargs and/or a changed motor.

``forethought run --change-at 20`` builds, from episode 20 on, the env with ``--change-kwargs``
merged over its kwargs (TwoRoom: ``'{"door_center": 52}'`` moves the door) and, with
``--change-action-scale``, every action multiplied per dimension before the env sees it (``0.3``: a
motor at 30%; ``'[0, 1]'``: a dead x motor; Reacher ``'[1, 0.3]'``: a weak wrist). The agent is
told nothing: it keeps commanding actions and sees observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from forethought._config_cli import parse_json_list


class ScaledActions(gym.ActionWrapper):
    """The env receives ``action * scale`` (per dimension); the agent's action space is unchanged."""

    def __init__(self, env: gym.Env, scale: np.ndarray) -> None:
        super().__init__(env)
        self.scale = np.asarray(scale, dtype=np.float32)

    def action(self, action: Any) -> np.ndarray:
        return (np.asarray(action, dtype=np.float32) * self.scale).astype(np.float32)


def parse_action_scale(text: str | float | list[float] | None, action_dim: int) -> np.ndarray | None:
    """``"0.3"`` or ``"[0, 1]"`` (one factor per action dimension) -> ``(action_dim,)`` float32."""
    if text is None:
        return None
    value: Any = text
    if isinstance(text, str):
        try:
            value = [float(text)]
        except ValueError:
            value = parse_json_list(text, "--change-action-scale")
    flat = np.asarray(value, dtype=np.float64).reshape(-1)
    scale = np.broadcast_to(flat, (action_dim,)) if flat.size in (1, action_dim) else None
    if scale is None or not np.all(np.isfinite(scale)):
        raise ValueError(f"--change-action-scale: expected 1 or {action_dim} finite numbers (the env has {action_dim} "
                         f"action dimensions), got {text!r}. Write e.g. 0.3 or '[0, 1]'")
    return scale.astype(np.float32).copy()


@dataclass(frozen=True)
class WorldChange:
    """What changes at episode ``at`` (``None``: nothing ever does)."""

    at: int | None = None
    env_kwargs: dict[str, Any] | None = None
    action_scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.at is not None and self.at < 0:
            raise ValueError(f"--change-at must be an episode index >= 0, got {self.at}")
        if self.at is None and (self.env_kwargs or self.action_scale is not None):
            raise ValueError("--change-kwargs / --change-action-scale need --change-at EPISODE (when the world changes)")
        if self.at is not None and not self.env_kwargs and self.action_scale is None:
            raise ValueError("--change-at needs what changes: --change-kwargs '{...}' and/or --change-action-scale")

    def active(self, episode: int) -> bool:
        return self.at is not None and episode >= self.at

    def make_env(self, env_id: str, env_kwargs: dict[str, Any], budget: int, changed: bool) -> gym.Env:
        """The env of an episode (the changed one when ``changed``), with a time limit of ``budget`` steps."""
        from forethought.envs import make

        kwargs = {**env_kwargs, **((self.env_kwargs or {}) if changed else {})}
        kwargs.setdefault("max_episode_steps", budget)
        env = make(env_id, **kwargs)
        return ScaledActions(env, self.action_scale) if changed and self.action_scale is not None else env

    def describe(self) -> dict[str, Any] | None:
        if self.at is None:
            return None
        return {"at_episode": self.at, "env_kwargs": self.env_kwargs or {},
                "action_scale": None if self.action_scale is None else self.action_scale.tolist()}
