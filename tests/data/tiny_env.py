"""A tiny deterministic pixel env with a true state, for data-layer tests.

``ENV_ID`` names this module by the name it was imported under (``tests.data.tiny_env`` or
``data.tiny_env``, depending on pytest's rootdir handling), so gymnasium and spawned workers
import the same module.
Episode lengths vary with the reset seed (the env terminates after ``3 + seed % 11`` steps),
so stores built from it have episodes of different lengths.
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium
import numpy as np
from gymnasium import spaces

ENV_ID = f"{__name__}:forethought-test/Tiny-v0"
# The folder from which ``__name__`` is importable: child processes need it on sys.path.
IMPORT_ROOT = str(Path(__file__).resolve().parents[len(__name__.split(".")) - 1])


class TinyEnv(gymnasium.Env):
    """State ``(x, y, bx, by)``; the action moves ``(x, y)``; pixels show the state."""

    def __init__(
        self, size: int = 8, step_sleep: float = 0.0, no_state: bool = False, fail_on_seed: int = -1
    ) -> None:
        self.size, self.step_sleep, self.no_state = size, step_sleep, no_state
        self.fail_on_seed = fail_on_seed
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        img[..., 0] = np.uint8(int(abs(self.state[0]) * 37) % 256)
        img[..., 1] = np.uint8(int(abs(self.state[1]) * 53) % 256)
        img[0, 0, 2] = np.uint8(self.t)
        return img

    def _info(self) -> dict:
        return {} if self.no_state else {"state": self.state.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed == self.fail_on_seed:
            raise RuntimeError(f"TinyEnv told to fail on seed {seed}")
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1, 1, 4)
        self.t = 0
        self.length = 3 + (0 if seed is None else seed) % 11
        return self._obs(), self._info()

    def step(self, action):
        if self.step_sleep:
            time.sleep(self.step_sleep)
        a = np.clip(np.asarray(action, np.float64), -1, 1)
        self.state[:2] += 0.1 * a
        if np.linalg.norm(self.state[:2] - self.state[2:]) < 0.3:  # pushing the "block"
            self.state[2:] += 0.1 * a
        self.t += 1
        return self._obs(), float(-np.abs(self.state[:2]).sum()), self.t >= self.length, False, self._info()

    @staticmethod
    def dataset_metrics(states: np.ndarray, same_episode: np.ndarray) -> dict[str, float]:
        """Env-specific dataset metrics (reported by `collect`): transitions and block moves."""
        moved = np.any(np.diff(states[:, 2:], axis=0) != 0, axis=-1)
        return {"tiny_transitions": float(same_episode.sum()), "tiny_block_moves": float(moved[same_episode].sum())}


if "forethought-test/Tiny-v0" not in gymnasium.registry:  # imported by tests and by gymnasium.make
    gymnasium.register("forethought-test/Tiny-v0", entry_point=TinyEnv)
