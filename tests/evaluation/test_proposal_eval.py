"""`forethought eval --planner ssr --proposal DIR` (and CEM seeded by a proposal) end to end on TwoRoom."""

from __future__ import annotations

import argparse
import json

import pytest

from forethought.cli import main
from forethought.evaluation.arguments import add_eval_arguments
from forethought.evaluation.config import MPCConfig
from forethought.evaluation.runner import run_eval_from_args

COMMON = ("--episodes", "3", "--budget", "4", "--samples", "6", "--horizon", "2", "--batch", "3", "--gif-episodes", "0",
          "--no-progress", "--no-baseline", "--seed", "1")


@pytest.fixture(scope="module")
def run_and_proposal(tworoom_store, tmp_path_factory):
    from forethought.policies import train_proposal
    from forethought.training.api import train

    root = tmp_path_factory.mktemp("ssr_eval")
    train(tworoom_store.path, root / "run", preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    train_proposal(root / "run", root / "prop", horizon=2, steps=3, width=8, depth=1, diffusion_steps=10, sample_steps=2,
                   batch_size=16, progress=False)
    return root


def _eval(*argv: str) -> int:
    return run_eval_from_args(add_eval_arguments(argparse.ArgumentParser()).parse_args(list(argv)))


def test_ssr_and_proposal_seeded_cem_run_end_to_end(run_and_proposal, tmp_path):
    root = run_and_proposal
    assert _eval("--model", str(root / "run"), "--out", str(tmp_path / "ssr"), "--planner", "ssr", "--proposal",
                 str(root / "prop"), "--proposal-steps", "3", *COMMON) == 0
    report = json.loads((tmp_path / "ssr" / "report.json").read_text())
    ssr = report["results"]["mpc-ssr"]
    assert ssr["episodes"] == 3 and ssr["decision_time_s"]["count"] == 4  # one plan per env step (frameskip 1)
    assert report["meta"]["planner"]["proposal"] == {"path": str(root / "prop"), "steps": 3}
    assert report["meta"]["planner"]["samples"] == 6
    assert _eval("--model", str(root / "run"), "--out", str(tmp_path / "cem"), "--planner", "cem", "--iterations", "2",
                 "--proposal", str(root / "prop"), *COMMON) == 0
    assert "mpc-cem" in json.loads((tmp_path / "cem" / "report.json").read_text())["results"]
    argv = ["--model", str(root / "run"), "--out", str(tmp_path / "pol"), "--planner", "proposal", "--proposal",
            str(root / "prop"), "--receding", "2", *COMMON]
    del argv[argv.index("--samples"):argv.index("--samples") + 2]
    assert _eval(*argv) == 0  # the proposal alone, each chunk open loop
    pol = json.loads((tmp_path / "pol" / "report.json").read_text())["results"]["mpc-proposal"]
    assert pol["decision_time_s"]["count"] == 2  # budget 4, 2 model steps per decision


def test_bad_proposal_settings_are_refused(run_and_proposal, tmp_path, capsys):
    root = run_and_proposal
    with pytest.raises(ValueError, match="--proposal DIR"):
        MPCConfig(planner="ssr")
    with pytest.raises(ValueError, match="not 'gradient'"):
        MPCConfig(planner="gradient", proposal="x")
    argv = ["eval", "--model", str(root / "run"), "--out", str(tmp_path / "h3"), "--planner", "ssr", "--proposal",
            str(root / "prop"), *COMMON]
    argv[argv.index("--horizon") + 1] = "3"
    assert main(argv) == 2
    assert "pass --horizon 2" in capsys.readouterr().err
