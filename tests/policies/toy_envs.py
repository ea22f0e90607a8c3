"""Toys with known answers for the policy tests.

* ``POINT_ID``: a point in the unit square; observation = state = its float32 position ``(2,)``; the
  action moves it by ``0.05 * a``; success within 0.1 of the goal. The optimal goal-reaching policy
  heads straight for the goal, and GCBC learns it from smooth random walks (hindsight goals).
* :func:`make_chain_store`: a 1-D chain of ``n`` cells, one-hot observations, a random walk whose
  action ``a`` in ``[-1, 1]`` moves one cell right (``a > 1/3``), left (``a < -1/3``) or not at all.
  The distance to a goal is ``|s - g|`` steps, so the optimal goal-conditioned value is known:
  ``V*(s, g) = -(1 - gamma^|s-g|) / (1 - gamma)``, and the optimal action's sign is ``sign(g - s)``.

Ids name this module (``module:id``), so gymnasium and workers import it under the name it has.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from forethought.envs.base import apply_reset_options

POINT_ID = f"{__name__}:forethought-test/PolicyPoint-v0"


class PointEnv(gymnasium.Env):
    """State = observation = the point's (x, y) in [0, 1]^2; success within 0.1 of the goal."""

    state_dim = 2

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos, self._goal = np.full(2, 0.25), np.full(2, 0.75)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(0.1, 0.9, 2)
        self._goal = self.np_random.uniform(0.1, 0.9, 2)
        apply_reset_options(self, options)
        return self._pos.astype(np.float32), {"state": self._pos.copy()}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._pos = np.clip(self._pos + 0.05 * a, 0.0, 1.0)
        return self._pos.astype(np.float32), 0.0, False, False, {"state": self._pos.copy()}

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
        return self._goal.astype(np.float32)

    def success(self, state, goal_state) -> bool:
        return bool(np.linalg.norm(np.asarray(state) - np.asarray(goal_state)) < 0.1)


if "forethought-test/PolicyPoint-v0" not in gymnasium.registry:
    gymnasium.register("forethought-test/PolicyPoint-v0", entry_point=PointEnv, max_episode_steps=200)


def chain_step(cell: int, action: float, n: int) -> int:
    """The chain's dynamics: one cell toward ``sign(a)`` when ``|a| > 1/3``, walls at both ends."""
    move = 1 if action > 1 / 3 else -1 if action < -1 / 3 else 0
    return int(np.clip(cell + move, 0, n - 1))


def make_chain_store(path, n: int = 8, episodes: int = 40, steps: int = 30, seed: int = 0):
    """A dataset of uniform random walks on the chain (one-hot float32 observations, state = cell)."""
    from forethought.data.episode import Episode
    from forethought.data.store import EpisodeStore

    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path, meta={"env_id": "test/Chain-v0"}, obs_shape=(n,), obs_dtype=np.float32,
                                action_dim=1, state_dim=1)
    for ep in range(episodes):
        cells = [int(rng.integers(n))]
        actions = rng.uniform(-1, 1, size=(steps, 1)).astype(np.float32)
        for a in actions[:, 0]:
            cells.append(chain_step(cells[-1], float(a), n))
        obs = np.eye(n, dtype=np.float32)[cells]
        store.append_episode(Episode.from_steps(obs, actions, np.zeros(steps), np.zeros(steps, bool),
                                                np.zeros(steps, bool), state=np.asarray(cells, np.float64)[:, None],
                                                seed=ep))
    store.save_stats()
    store.close()
    return path
