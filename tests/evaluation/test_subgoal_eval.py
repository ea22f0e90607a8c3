"""`forethought eval --subgoals graph`: the graph from the run's training data, subgoals in the report and the GIF."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from forethought.evaluation.arguments import add_eval_arguments
from forethought.evaluation.config import MPCConfig
from forethought.evaluation.runner import run_eval_from_args

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")
pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def run_dir(tworoom_store, tmp_path_factory):
    from forethought.training.api import train

    out = tmp_path_factory.mktemp("subgoal_run") / "run"
    train(tworoom_store.path, out, preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    return out


def _args(*argv: str) -> argparse.Namespace:
    return add_eval_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_eval_with_subgoals_reports_them_and_shows_them(run_dir, tmp_path):
    out = tmp_path / "r"
    assert run_eval_from_args(_args(
        "--model", str(run_dir), "--out", str(out), "--planner", "cem", "--samples", "8", "--iterations", "1",
        "--horizon", "2", "--episodes", "3", "--budget", "4", "--goal-source", "env", "--gif-episodes", "2",
        "--subgoals", "graph", "--graph-nodes", "60", "--subgoal-reach", "1", "--no-progress", "--no-baseline")) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"mpc-cem+subgoals"}
    sub = report["meta"]["subgoals"]
    run = json.loads((run_dir / "run.json").read_text())
    assert sub["graph"]["nodes"] == 60 and sub["reach"] == 1.0
    assert len(sub["per_episode"]) == 3 and sub["decisions"] == 3 * 4  # frameskip 1, receding 1
    nodes = [s for ep in sub["per_episode"] for s in ep if s["node"] >= 0]
    assert nodes and {s["episode"] for s in nodes} <= set(run["train_episodes"])  # subgoals are training frames
    assert report["meta"]["planner"]["subgoals"]["inner"]["kind"] == "latent_goal"
    assert report["meta"]["planner"]["subgoals"]["switch_threshold"] > 0
    # TwoRoom can count doors: every task has its count, and successes are broken down by it.
    doors = [t["doors"] for t in report["meta"]["tasks"]]
    assert set(doors) <= {0, 1} and sum(v["episodes"] for v in report["meta"]["success_by_doors"]["mpc-cem+subgoals"].values()) == 3
    # The GIF's panels: current | subgoal | goal.
    from PIL import Image

    gif = Image.open(out / "episodes.gif")
    assert gif.size[0] == 4 * (3 * 64 + 2 * 2)
    assert "subgoals: a graph of 60 training frames" in (out / "report.md").read_text()


def test_subgoals_need_the_training_data(run_dir, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(run_dir / "model", model)  # no run.json beside it: no dataset known
    with pytest.raises(ValueError, match="--subgoals graph"):
        run_eval_from_args(_args("--model", str(model), "--env", "forethought/TwoRoom-v0", "--goal-source", "env",
                                 "--out", str(tmp_path / "r"), "--subgoals", "graph", "--no-progress"))


def test_subgoal_options_are_checked():
    with pytest.raises(ValueError, match="--subgoals"):
        MPCConfig(subgoals="tree")
    with pytest.raises(ValueError, match="--graph-nodes"):
        MPCConfig(subgoals="graph", graph_nodes=1)
    assert MPCConfig().subgoals == "off" and np.isclose(MPCConfig(subgoal_reach=7.5).subgoal_reach, 7.5)
