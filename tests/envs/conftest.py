"""Helpers shared by the env tests."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.envs import make


def _rollout(env_id: str, seed: int, actions: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Observations `(T+1, H, W, 3)` and states `(T+1, S)` of `actions` from `reset(seed)`."""
    env = make(env_id, **kwargs)
    obs, info = env.reset(seed=seed)
    frames, states = [obs], [info["state"]]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs)
        states.append(info["state"])
    env.close()
    return np.stack(frames), np.stack(states)


@pytest.fixture
def rollout():
    """The `_rollout` helper, as a fixture (works whatever the tests' package layout)."""
    return _rollout
