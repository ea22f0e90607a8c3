"""`forethought eval --dynamics DIR`: candidates rolled out by diffusion dynamics, with any planner, end to end on TwoRoom."""

from __future__ import annotations

import json

import pytest

from forethought.cli import main
from forethought.evaluation.config import MPCConfig

COMMON = ["--episodes", "3", "--budget", "4", "--samples", "6", "--horizon", "2", "--batch", "3", "--gif-episodes", "0",
          "--no-progress", "--no-baseline", "--seed", "1"]
DYN = ["--steps", "3", "--width", "8", "--depth", "1", "--diffusion-steps", "10", "--sample-steps", "2",
       "--batch-size", "16", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tworoom_store, tmp_path_factory):
    from forethought.policies import train_proposal
    from forethought.training.api import train

    root = tmp_path_factory.mktemp("dyn_eval")
    train(tworoom_store.path, root / "run", preset="tiny", steps=2, warmup_steps=0, state_weight=1.0, progress=False,
          tensorboard=False)
    train_proposal(root / "run", root / "prop", horizon=2, steps=3, width=8, depth=1, diffusion_steps=10, sample_steps=2,
                   batch_size=16, progress=False)
    assert main(["train-dynamics", "--model", str(root / "run"), "--horizon", "2", "--out", str(root / "dyn"), *DYN]) == 0
    return root


def _report(path) -> dict:
    return json.loads((path / "report.json").read_text())


def test_cem_and_ssr_plan_with_diffusion_dynamics(runs, tmp_path):
    base = ["eval", "--model", str(runs / "run"), "--dynamics", str(runs / "dyn"), *COMMON]
    assert main([*base, "--out", str(tmp_path / "cem"), "--iterations", "2", "--dynamics-steps", "3"]) == 0
    report = _report(tmp_path / "cem")
    cem = report["results"]["mpc-cem+diffusion"]
    assert cem["episodes"] == 3 and cem["decision_time_s"]["count"] == 4
    assert report["meta"]["planner"]["dynamics"] == {"path": str(runs / "dyn"), "steps": 3}
    assert any("diffusion dynamics" in note for note in report["notes"])
    # DMPC: an action proposal sampled, diffusion dynamics imagining, the goal cost ranking.
    assert main([*base, "--out", str(tmp_path / "ssr"), "--planner", "ssr", "--proposal", str(runs / "prop")]) == 0
    ssr = _report(tmp_path / "ssr")
    assert ssr["results"]["mpc-ssr+diffusion"]["episodes"] == 3
    assert ssr["meta"]["planner"]["proposal"]["path"] == str(runs / "prop")
    # A test-time objective over states, imagined by the diffusion dynamics.
    assert main([*base, "--out", str(tmp_path / "obj"), "--iterations", "2", "--objective",
                 "forethought.examples.objectives:tworoom_low_energy"]) == 0
    assert _report(tmp_path / "obj")["results"]["mpc-cem+diffusion"]["judge"] == "low_energy.success"


def test_bad_dynamics_settings_are_refused(runs, tworoom_store, tmp_path, capsys):
    with pytest.raises(ValueError, match="--dynamics-steps needs --dynamics"):
        MPCConfig(dynamics_steps=3)
    with pytest.raises(ValueError, match="drop --draft / --compile"):
        MPCConfig(planner="gradient", dynamics="x")
    from forethought.training.api import train

    other = train(tworoom_store.path, tmp_path / "other", preset="tiny", steps=1, warmup_steps=0, seed=5,
                  progress=False, tensorboard=False).parent
    assert main(["eval", "--model", str(other), "--dynamics", str(runs / "dyn"), "--out", str(tmp_path / "o"),
                 *COMMON]) == 2
    assert "trained in another model's latents" in capsys.readouterr().err
