"""`forethought eval --objective MODULE:FUNCTION`: planned on the state readout, judged by the objective's own test."""

from __future__ import annotations

import json

import pytest

from forethought.cli import main

COMMON = ["--episodes", "3", "--budget", "5", "--samples", "6", "--iterations", "2", "--horizon", "2", "--batch", "3",
          "--gif-episodes", "0", "--no-progress", "--seed", "2"]


@pytest.fixture(scope="module")
def readout_run(tworoom_store, tmp_path_factory):
    from forethought.training.api import train

    out = tmp_path_factory.mktemp("objective_eval") / "run"
    train(tworoom_store.path, out, preset="tiny", steps=3, warmup_steps=0, state_weight=1.0, progress=False,
          tensorboard=False)
    return out


def test_eval_with_a_test_time_objective(readout_run, tmp_path):
    spec = "forethought.examples.objectives:tworoom_low_energy"
    assert main(["eval", "--model", str(readout_run), "--out", str(tmp_path / "r"), "--objective", spec,
                 "--latent-weight", "0.1", *COMMON]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    for name in ("mpc-cem", "random"):  # both judged by the objective's own success function
        result = report["results"][name]
        assert result["judge"] == "low_energy.success"
        for e in result["per_episode"]:
            assert isinstance(e["objective_success"], bool) and e["success"] == e["objective_success"]
            assert e["success"] <= e["success_final"]  # it also asks for the goal to be reached
    planner = report["meta"]["planner"]
    assert planner["objective"]["context"] == ["goal"] and planner["objective"]["latent_weight"] == 0.1
    assert any("privileged" in note for note in report["notes"])


def test_objective_refusals(readout_run, tworoom_store, tmp_path, capsys):
    argv = ["eval", "--model", str(readout_run), "--out", str(tmp_path / "a"), *COMMON]
    assert main([*argv, "--objective", "forethought.examples.objectives:tworoom_low_energy", "--cost", "l1"]) == 2
    assert "--objective replaces the latent cost" in capsys.readouterr().err
    assert main([*argv, "--objective", "nowhere_module:cost"]) == 2
    assert "PYTHONPATH" in capsys.readouterr().err
    from forethought.training.api import train

    plain = train(tworoom_store.path, tmp_path / "plain", preset="tiny", steps=1, warmup_steps=0, progress=False,
                  tensorboard=False).parent
    assert main(["eval", "--model", str(plain), "--out", str(tmp_path / "b"), *COMMON, "--objective",
                 "forethought.examples.objectives:tworoom_waypoint"]) == 2
    assert "--state-weight" in capsys.readouterr().err
