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


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "dynamics_error.py"
    spec = importlib.util.spec_from_file_location("bench_dynamics_error", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compounding_error_benchmark_runs_and_measures_what_it_says(runs, tworoom_store, tmp_path, capsys):
    import numpy as np
    import torch

    from forethought.models import WorldModel
    from forethought.training.latents import encode_rows

    bench = _bench()
    argv = ["--model", str(runs / "run"), "--dynamics", str(runs / "dyn"), "--horizons", "1", "4", "--episodes", "2",
            "--out", str(tmp_path / "e.json")]
    result = bench.main(argv)
    assert "nmse@4" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["methods"] == result["methods"]
    assert set(result["methods"]) == {"jepa", str(runs / "dyn"), "constant"}
    diffusion = result["methods"][str(runs / "dyn")]
    assert (diffusion["F"], diffusion["chunks"]) == (2, 2) and result["starts"] == result["episodes"] == 2
    for m in result["methods"].values():
        assert set(m["latent_nmse"]) == set(m["state_error"]) == {"1", "4"}  # TwoRoom stores states: probed
    # The constant guess, computed here independently: start row 2 (full history of 3 frames, frameskip 1).
    run = json.loads((runs / "run" / "run.json").read_text())
    ids = [e for e in run["val_episodes"] if tworoom_store.episode_lengths[e] >= 4][:2]
    latents, _ = encode_rows(WorldModel.from_pretrained(runs / "run" / "model"), tworoom_store, ids)
    variance = torch.cat(latents).double().var(0).mean()
    for j in (1, 4):
        want = np.mean([float((z[2] - z[2 + j]).double().pow(2).mean() / variance) for z in latents])
        assert abs(result["methods"]["constant"]["latent_nmse"][str(j)]["mean"] - want) < 1e-6
    again = bench.main(argv)["methods"]
    for name, m in result["methods"].items():  # fixed seeds: the same numbers again
        assert {k: v for k, v in again[name].items() if k != "seconds"} == {k: v for k, v in m.items() if k != "seconds"}
    with pytest.raises(SystemExit, match="no held-out episode has 400 env steps"):
        bench.main([*argv[:4], "--horizons", "400", "--out", str(tmp_path / "x.json")])
