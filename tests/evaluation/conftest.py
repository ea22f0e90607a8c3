"""Shared fixtures: a small real TwoRoom dataset and scripted agents that see only pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forethought.data.collect import collect
from forethought.data.store import EpisodeStore

ENV_ID = "forethought/TwoRoom-v0"


@pytest.fixture(scope="session")
def tworoom_store(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    """20 episodes of 40 steps (smooth policy, 64x64 pixels): about 0.3 s to collect."""
    path = Path(tmp_path_factory.mktemp("eval_data")) / "tworoom"
    collect(ENV_ID, path, episodes=20, steps=40, policy="smooth", seed=3, progress=False)
    return EpisodeStore.open(path)


def agent_position(img: np.ndarray) -> np.ndarray:
    """(x, y) of the red agent disc in a TwoRoom image (1 px = 1 arena unit at 64x64)."""
    red = (img[..., 0].astype(int) - img[..., 1].astype(int)) > 60
    ys, xs = np.nonzero(red)
    if xs.size == 0:
        raise AssertionError("no agent in the image")
    w = img[ys, xs, 0].astype(float)
    return np.array([np.average(xs, weights=w) + 0.5, np.average(ys, weights=w) + 0.5])


class PixelGreedyAgent:
    """Reads its own and the goal's position from pixels and walks there, through the door.

    Knows the TwoRoom layout (wall at x = 32, door around y = 32) but nothing of the simulator.
    """

    def __init__(self) -> None:
        self.decision_times: list[float] = []
        self.goals: np.ndarray | None = None

    def reset(self, goal_obs: np.ndarray) -> None:
        self.goals = np.stack([agent_position(g) for g in goal_obs])

    def act(self, obs: np.ndarray) -> np.ndarray:
        assert self.goals is not None
        actions = []
        for img, goal in zip(obs, self.goals):
            p = agent_position(img)
            target = goal
            if (p[0] < 32) != (goal[0] < 32):  # other room: through the door first
                side = -1.0 if p[0] < 32 else 1.0
                # Line up with the door on our side, then cross to the other side.
                target = np.array([32 + side * 8, 32.0]) if abs(p[1] - 32) > 2 else np.array([32 - side * 8, 32.0])
            d = (target - p) / 4.0
            actions.append(np.clip(d, -1, 1))
        self.decision_times.append(1e-3)
        return np.array(actions, dtype=np.float32)
