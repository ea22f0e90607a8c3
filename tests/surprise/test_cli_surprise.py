"""`forethought surprise-calibrate`, `surprise-eval` and `surprise` end to end on the tiny trained model."""

from __future__ import annotations

import json
import shutil

from forethought.cli import main
from forethought.surprise import SurpriseCalibration


def test_surprise_commands_end_to_end(trained, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained.run, run)  # the calibration is written into the model folder
    out = tmp_path / "report"
    eval_args = ["surprise-eval", "--model", str(run), "--data", str(trained.data), "--out", str(out),
                 "--perturbations", "teleport", "colour_shift", "--pairs", "4", "--frames", "10",
                 "--event-frame", "4", "--voe-pairs", "3", "--quiet"]
    assert main(eval_args) == 2  # not calibrated yet: says what to run
    assert "forethought surprise-calibrate" in capsys.readouterr().err

    assert main(["surprise-calibrate", "--model", str(run), "--data", str(trained.data), "--steps", "1", "2",
                 "--fpr", "0.05", "--generate", "30"]) == 0
    text = capsys.readouterr().out
    assert "measured FPR on check clips" in text
    cal = SurpriseCalibration.load(run / "model")
    assert set(cal.thresholds) == {(kind, k) for kind in ("whitened", "diag") for k in (1, 2)}
    assert "held-out" in cal.source

    assert main(eval_args) == 0
    assert main([*eval_args, "--score", "diag", "--voe-pairs", "0", "--out", str(tmp_path / "diag")]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"teleport", "colour_shift"}
    assert report["results"]["teleport"]["pairs"] == 4 and 0 <= report["results"]["teleport"]["auroc"] <= 1
    assert set(report["violation_of_expectation"]) == {"teleport", "through_wall"}
    assert (out / "timeline_teleport.png").stat().st_size > 10_000 and (out / "report.md").is_file()

    png = tmp_path / "ep.png"
    assert main(["surprise", "--model", str(run), "--data", str(trained.data), "--episode", "0",
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    png = tmp_path / "tp.png"
    assert main(["surprise", "--model", str(run), "--data", str(trained.data), "--perturbation", "teleport",
                 "--frames", "10", "--event-frame", "4", "--out", str(png)]) == 0
    assert "alarms at frames" in capsys.readouterr().out and png.stat().st_size > 10_000


def test_eval_with_the_surprise_monitor_reports_alarms(trained, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained.run, run)
    args = ["eval", "--model", str(run), "--data", str(trained.data), "--planner", "cem", "--samples", "8",
            "--iterations", "1", "--episodes", "3", "--budget", "12", "--goal-offset", "10", "--gif-episodes", "0",
            "--no-baseline", "--no-progress", "--surprise", "observe", "--out", str(tmp_path / "r")]
    assert main(args) == 2 and "surprise-calibrate" in capsys.readouterr().err  # not calibrated: says what to do
    assert main(["surprise-calibrate", "--model", str(run), "--data", str(trained.data), "--steps", "1",
                 "--fpr", "0.05", "--generate", "30"]) == 0
    assert main(args) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    s = report["meta"]["surprise"]
    assert s["mode"] == "observe" and s["frames"] == 3 * 3  # 3 episodes x model frames 1..3 (env steps 3, 6, 9)
    assert 0.0 <= s["alarm_rate"] <= 1.0
    assert "surprise monitor (observe)" in (tmp_path / "r" / "report.md").read_text()
