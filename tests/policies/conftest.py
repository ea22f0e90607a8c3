"""Shared fixtures of the policy tests: real tiny datasets (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .toy_envs import POINT_ID

TWOROOM = "forethought/TwoRoom-v0"
TRAIN = ("--preset", "tiny", "--steps", "2", "--batch-size", "4", "--no-progress", "--no-tensorboard")


@pytest.fixture(scope="session")
def point_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 smooth random walks of 60 steps in the unit square (vector observations): about 1 s."""
    from forethought.data.collect import collect

    path = Path(tmp_path_factory.mktemp("point")) / "data"
    collect(POINT_ID, path, episodes=40, steps=60, policy="smooth", seed=0, progress=False)
    return path


@pytest.fixture(scope="session")
def tworoom_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 TwoRoom episodes of 40 steps at 64x64 pixels: about 0.3 s."""
    from forethought.data.collect import collect

    path = Path(tmp_path_factory.mktemp("tworoom")) / "data"
    collect(TWOROOM, path, episodes=20, steps=40, policy="smooth", seed=3, progress=False)
    return path


@pytest.fixture(scope="session")
def tworoom_model_run(tworoom_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world-model run folder: the tiny preset trained 2 steps (frameskip 1) on `tworoom_data`."""
    from forethought.training.api import train

    out = Path(tmp_path_factory.mktemp("wm")) / "run"
    train(tworoom_data, out, preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    return out


@pytest.fixture(scope="session")
def policy_runs(tworoom_model_run, tmp_path_factory):
    """Each method trained 2 steps through / beside the tiny world-model run."""
    from forethought.cli import main

    root = tmp_path_factory.mktemp("policies")
    runs = {}
    for method in ("gcbc", "gciql", "gcivl", "imagination"):
        assert main(["train-policy", "--method", method, "--model", str(tworoom_model_run), "--out",
                     str(root / method), *TRAIN]) == 0
        runs[method] = root / method
    return runs
