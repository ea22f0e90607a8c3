"""`forethought scale` on a tiny trained model: both axes for each configuration, the JSON and the plot."""

from __future__ import annotations

import json

import pytest

from forethought.cli import main
from forethought.evaluation.scale_arguments import ScaleConfig


@pytest.fixture(scope="module")
def run_dir(tworoom_store, tmp_path_factory):
    from forethought.training.api import train

    out = tmp_path_factory.mktemp("scale_run") / "run"
    train(tworoom_store.path, out, preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    return out


def test_scale_writes_both_curves_for_each_configuration(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "scale"
    argv = ["scale", "--model", str(run_dir), "--out", str(out), "--configs", "fp32,eager", "--pairs", "4x1,8x3",
            "--decision-ms", "5,60", "--samples", "8", "--episodes", "2", "--budget", "10", "--horizon", "2",
            "--goal-offset", "10", "--quiet"]
    assert main(argv) == 0
    report = json.loads((out / "scale.json").read_text())
    points = report["points"]
    assert [(p["config"], p["axis"]) for p in points] == [("fp32", "compute")] * 2 + [("fp32", "time")] * 2 + \
        [("eager", "compute")] * 2 + [("eager", "time")] * 2
    compute = [p for p in points if p["axis"] == "compute"]
    assert all(p["iterations_run_mean"] == p["iterations"] for p in compute)  # run in full
    assert [p["predictor_steps"] for p in compute[:2]] == [4 * 1 * 2, 8 * 3 * 2]
    for config in ("fp32", "eager"):
        t5, t60 = (p for p in points if p["config"] == config and p["axis"] == "time")
        assert 1 <= t5["iterations_run_mean"] < t60["iterations_run_mean"] < 1000  # more time, more search
        assert 0 <= t5["overruns"] <= t5["decisions"] and 0.0 <= t60["success_rate"] <= 1.0
    assert "| fp32 | time |" in capsys.readouterr().out
    if report["files"].get("plot"):
        assert (out / "scale.png").stat().st_size > 1000
    assert main(argv) == 2  # a non-empty --out is refused
    assert "not empty" in capsys.readouterr().err


def test_scale_options_are_checked_before_any_work() -> None:
    for bad, match in (({"configs": "fp32,fp8"}, "unknown"), ({"configs": "speculative"}, "--draft"),
                       ({"decision_ms": "20,fast"}, "milliseconds"), ({"episodes": 0}, "--episodes")):
        with pytest.raises(ValueError, match=match):
            ScaleConfig(model="m", out="o", **bad)
