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


def test_a_model_is_refused_on_another_env_unless_forced(trained, tmp_path, capsys) -> None:
    """The issue's case: a TwoRoom model on PushT (same spaces at 32 px) ran and reported 0%."""
    import pytest

    pytest.importorskip("gym_pusht", reason='needs the [pusht] extra: pip install "forethought[pusht]"')
    run = tmp_path / "run"
    shutil.copytree(trained.run, run)
    model = run / "model"
    other = ["--model", str(run), "--data", str(trained.data), "--env", "forethought/PushT-v0"]
    commands = {
        "eval": ["--goal-source", "env", "--episodes", "2", "--budget", "3", "--samples", "4", "--iterations", "1",
                 "--no-progress", "--out", str(tmp_path / "e")],
        "surprise-calibrate": ["--steps", "1"],
        "surprise-eval": ["--out", str(tmp_path / "s")],
        "surprise": ["--episode", "0", "--out", str(tmp_path / "p.png")],
    }
    for command, extra in commands.items():
        assert main([command, *other, *extra]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"forethought {command}: {model}: the model does not fit the env forethought/PushT-v0"), err
        assert "trained on forethought/TwoRoom-v0" in err and "--force" in err
    assert not (tmp_path / "e").exists() and not (tmp_path / "s").exists() and not (model / "surprise.safetensors").exists()

    # --force runs it, and says so: on stderr, and in the report.
    assert main(["surprise-calibrate", *other, "--steps", "1", "--fpr", "0.1", "--generate", "10", "--force"]) == 0
    assert "warning: --force" in capsys.readouterr().err
    assert main(["surprise-eval", *other, "--force", "--perturbations", "colour_shift", "--pairs", "2", "--frames", "8",
                 "--event-frame", "4", "--voe-pairs", "0", "--quiet", "--out", str(tmp_path / "s")]) == 0
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    (warning,) = report["warnings"]
    assert "forethought/TwoRoom-v0" in warning and "forethought/PushT-v0" in warning
    assert "**warning**: --force" in (tmp_path / "s" / "report.md").read_text()


def test_surprise_calibrate_help_names_the_file_it_writes(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit):
        main(["surprise-calibrate", "--help"])
    text = capsys.readouterr().out
    assert "surprise.safetensors" in text and "surprise.json" not in text
