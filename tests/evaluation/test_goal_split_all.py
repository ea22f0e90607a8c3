"""`--goal-split all`: tasks from every episode of a dataset collected for evaluation (one task set for many runs)."""

from __future__ import annotations

import json

from forethought.cli import main
from forethought.data.collect import collect


def test_tasks_from_an_evaluation_dataset(tworoom_store, tmp_path):
    from forethought.training.api import train

    run = train(tworoom_store.path, tmp_path / "run", preset="tiny", steps=1, warmup_steps=0, progress=False,
                tensorboard=False).parent
    collect("forethought/TwoRoom-v0", tmp_path / "tasks", episodes=4, steps=30, policy="smooth", seed=10**6,
            env_kwargs={"motor_gain": [1.0, 0.5]}, progress=False)
    assert main(["eval", "--model", str(run), "--data", str(tmp_path / "tasks"), "--goal-split", "all", "--out",
                 str(tmp_path / "r"), "--episodes", "6", "--budget", "3", "--samples", "4", "--iterations", "1",
                 "--horizon", "2", "--gif-episodes", "0", "--no-progress", "--no-baseline"]) == 0
    meta = json.loads((tmp_path / "r" / "report.json").read_text())["meta"]
    assert {t["episode"] for t in meta["tasks"]} <= {0, 1, 2, 3} and "--goal-split all" in meta["tasks_note"]
    assert meta["env_kwargs"] == {"motor_gain": [1.0, 0.5]}  # the evaluation dataset's variant
    assert meta["protocol"].startswith("ours: goals 25 steps ahead in every episode of an evaluation dataset")
