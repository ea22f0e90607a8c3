"""Tiny user environments with vector observations, as a user would write them, for the integrity tests.

* ``VECTOR_ID``: a dot in the unit square; the observation is its float32 position ``(2,)``
  (no pixels), the action moves it. It implements the GoalEnv methods and honours the reset
  contract with ``forethought.envs.base.apply_reset_options``. ``action_dim`` (kwarg) changes the
  action space (extra dimensions are ignored), for the action-dimension mismatch test.
* ``VECTOR_COPY_ID``: the same class under another id (same spaces, other env id).
* ``IGNORING_ID``: the same env, but its ``reset`` ignores ``options``, as a gymnasium-only env does.

Ids name this module (``module:id``) so that fresh processes and workers can make them.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from forethought.envs.base import apply_reset_options

VECTOR_ID = f"{__name__}:forethought-test/VectorDot-v0"
VECTOR_COPY_ID = f"{__name__}:forethought-test/VectorDotCopy-v0"
IGNORING_ID = f"{__name__}:forethought-test/IgnoringDot-v0"


class VectorDotEnv(gymnasium.Env):
    """State = observation = the dot's (x, y) in [0, 1]^2; success within 0.1 of the goal."""

    state_dim = 2

    def __init__(self, action_dim: int = 2) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._pos, self._goal = np.full(2, 0.25), np.full(2, 0.75)

    def _obs(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float32).copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(0.1, 0.9, 2)
        self._goal = self.np_random.uniform(0.1, 0.9, 2)
        apply_reset_options(self, options)
        return self._obs(self._pos), {"state": self._pos.copy()}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[:2], -1.0, 1.0)
        self._pos = np.clip(self._pos + 0.05 * a, 0.0, 1.0)
        return self._obs(self._pos), float(self.success(self._pos, self._goal)), False, False, {"state": self._pos.copy()}

    def get_state(self) -> np.ndarray:
        return self._pos.copy()

    def set_state(self, state) -> None:
        self._pos = np.array(state, dtype=np.float64).reshape(2)

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(0.1, 0.9, 2)

    def set_goal_state(self, state) -> None:
        self._goal = np.array(state, dtype=np.float64).reshape(2)

    @property
    def goal_state(self) -> np.ndarray:
        return self._goal.copy()

    def render_goal(self) -> np.ndarray:
        return self._obs(self._goal)

    def success(self, state, goal_state) -> bool:
        return bool(np.linalg.norm(np.asarray(state) - np.asarray(goal_state)) < 0.1)


class OptionsIgnoringDotEnv(VectorDotEnv):
    """Every GoalEnv method, but `reset` ignores `options`: random start, its own random goal."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)  # options dropped
        return self._obs(self._pos), {"state": self._pos.copy()}


for _id, _cls in (("forethought-test/VectorDot-v0", VectorDotEnv), ("forethought-test/VectorDotCopy-v0", VectorDotEnv),
                  ("forethought-test/IgnoringDot-v0", OptionsIgnoringDotEnv)):
    if _id not in gymnasium.registry:
        gymnasium.register(_id, entry_point=_cls, max_episode_steps=100)
