"""Shared fixtures: a tiny TwoRoom world model trained on real TwoRoom data (16x16 pixels, frameskip 2).

About 10 s on one core, once per session: collect 120 episodes of 40 steps, train the `tiny` preset
150 steps with a quarter of the episodes held out (the online agent calibrates its surprise
detector on them). Changes of the world in these tests reverse the motor (action scale -1): this
small model predicts little motion, so a weak motor would make it *less* surprised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ENV_ID = "forethought/TwoRoom-v0"
ENV_KWARGS = {"image_size": 16}
FRAMESKIP = 2
BUDGET = 16  # env steps per episode: 8 model frames seen (fewer give this small model too little to learn from)


@dataclass
class TinyRun:
    run: Path
    data: Path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    from forethought.data.collect import collect
    from forethought.training.api import train

    root = Path(tmp_path_factory.mktemp("online"))
    collect(ENV_ID, root / "data", episodes=120, steps=40, policy="smooth", seed=5, progress=False, env_kwargs=ENV_KWARGS)
    train(root / "data", root / "run", preset="tiny", steps=150, progress=False, tensorboard=False, frameskip=FRAMESKIP,
          val_fraction=0.25, batch_size=16)
    return TinyRun(root / "run", root / "data")


def make_env(action_scale: float | None = None, budget: int = BUDGET) -> Any:
    from forethought.online.change import WorldChange

    change = WorldChange(0, None, np.full(2, action_scale, np.float32)) if action_scale is not None else WorldChange()
    return change.make_env(ENV_ID, ENV_KWARGS, budget, action_scale is not None)


def play(agent: Any, env: Any, seed: int, info: dict | None = None, budget: int = BUDGET) -> dict:
    """One episode of ``budget`` steps with the Python API: random start and goal from the env."""
    obs, _ = env.reset(seed=seed)
    env.unwrapped.set_goal_state(env.unwrapped.sample_goal_state(np.random.default_rng(seed)))
    goal = env.unwrapped.render_goal()
    for _ in range(budget):
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, goal))
        agent.observe(obs, reward, terminated, truncated)
    return agent.end_episode(info)
