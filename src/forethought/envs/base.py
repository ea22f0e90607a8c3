"""Shared plumbing of the built-in pixel environments (state checks, goal bookkeeping).

Every built-in env renders its observation as a pure function of its true state
(`render_state`), so `render_goal()` is simply `render_state(goal_state)` and never disturbs
the running episode.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def check_image_size(image_size: int) -> int:
    """Validate the `image_size` kwarg shared by all built-in envs."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size must be an int, got {type(image_size).__name__}")
    if not 8 <= int(image_size) <= 1024:
        raise ValueError(f"image_size must be in [8, 1024] pixels, got {image_size}; 64 is the default")
    return int(image_size)


def apply_reset_options(env: Any, options: dict[str, Any] | None) -> None:
    """The reset contract (`forethought.envs.protocols`): call it at the end of your `reset`.

    `options["state"]` (when given) becomes the current state through `env.set_state`, and
    `options["goal_state"]` the goal through `env.set_goal_state`; other keys are left alone.
    Any env with the `GoalEnv` methods can use it, pixel or state observations.
    """
    options = options or {}
    if options.get("state") is not None:
        env.set_state(options["state"])
    if options.get("goal_state") is not None:
        env.set_goal_state(options["goal_state"])


class PixelGoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """Base class: uint8 pixel observations, float32 Box actions, the `GoalEnv` protocol.

    Subclasses set `state_dim`, `observation_space`, `action_space`, `_goal` and implement
    `get_state`, `set_state`, `render_state`, `sample_goal_state` and `success`; their `reset`
    ends with `return self._finish_reset(options)`, which honours the reset contract
    (`options={"state": ..., "goal_state": ...}`, see `forethought.envs.protocols`).
    The reward is `1.0` on success and `0.0` otherwise; episodes never terminate early (fixed-length
    episodes are what data collection and the evaluation protocol want), the `TimeLimit` added by
    the registry truncates them.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_dim: int
    image_size: int
    _goal: np.ndarray

    def _init_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode

    def _pixel_space(self) -> spaces.Box:
        return spaces.Box(0, 255, shape=(self.image_size, self.image_size, 3), dtype=np.uint8)

    def _as_state(self, state: Any, what: str = "state") -> np.ndarray:
        """`state` as a float64 `(state_dim,)` copy, with a clear error otherwise."""
        arr = np.array(state, dtype=np.float64).reshape(-1)
        if arr.shape != (self.state_dim,):
            raise ValueError(
                f"{type(self).__name__}: {what} must have shape ({self.state_dim},), got {np.shape(state)}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{type(self).__name__}: {what} must be finite, got {arr}")
        return arr

    def _finish_reset(self, options: dict[str, Any] | None) -> tuple[np.ndarray, dict[str, Any]]:
        """Apply `options={"state": s, "goal_state": g}` (the reset contract); return reset's `(obs, info)`."""
        apply_reset_options(self, options)
        state = self.get_state()
        return self.render_state(state), {"state": state}

    def _as_action(self, action: Any) -> np.ndarray:
        """`action` as a float64 vector of the action space's size, clipped to [-1, 1]; errors name the env."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        n = self.action_space.shape[0]
        if a.shape != (n,) or not np.all(np.isfinite(a)):
            raise ValueError(f"{type(self).__name__}: action must be {n} finite numbers, got {action!r}")
        return np.clip(a, -1.0, 1.0)

    # --- goal API ---------------------------------------------------------------------------
    @property
    def goal_state(self) -> np.ndarray:
        return self._goal.copy()

    def set_goal_state(self, state: np.ndarray) -> None:
        self._goal = self._as_state(state, "goal state")

    def render_goal(self) -> np.ndarray:
        return self.render_state(self._goal)

    def render(self) -> np.ndarray:  # type: ignore[override]
        """The current observation image, uint8 `(image_size, image_size, 3)`."""
        return self.render_state(self.get_state())

    # --- to implement -----------------------------------------------------------------------
    @abstractmethod
    def get_state(self) -> np.ndarray: ...

    @abstractmethod
    def set_state(self, state: np.ndarray) -> None: ...

    @abstractmethod
    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The observation the env shows in `state`: uint8 `(image_size, image_size, 3)`."""

    @abstractmethod
    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool: ...
