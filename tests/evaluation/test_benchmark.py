"""`forethought benchmark --quick`: the whole loop end to end (CI's smoke test), resumable, with commands."""

from __future__ import annotations

import json
import shlex

import pytest

from forethought.cli import build_parser, main
from forethought.evaluation.arguments import eval_config_from_args
from forethought.evaluation.benchmark import RECIPES, stage_commands


def test_quick_benchmark_runs_the_loop_and_resumes(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["benchmark", "--quick", "--tasks", "tworoom", "--out", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["task"], r["protocol"]) for r in rows] == [("tworoom", "ours")]
    row = rows[0]
    assert 0.0 <= row["success_rate"] <= 1.0 and row["episodes"] == 4 and row["ci95"][0] <= row["success_rate"]
    assert "| tworoom | ours |" in (out / "results.md").read_text()
    # The eval command written down is the evaluation that ran: same config when parsed back.
    collect_cmd, train_cmd, eval_cmd = row["commands"]
    assert collect_cmd.startswith("forethought collect") and train_cmd.startswith("forethought train")
    args = build_parser().parse_args(shlex.split(eval_cmd)[1:])
    report = json.loads((out / "tworoom" / "eval-ours" / "report.json").read_text())
    assert json.loads(json.dumps(eval_config_from_args(args).mpc.__dict__)) == report["meta"]["config"]["mpc"]
    # Rerunning resumes: nothing is collected, trained or evaluated again.
    stamp = (out / "tworoom" / "eval-ours" / "report.json").stat().st_mtime_ns
    assert main(["benchmark", "--quick", "--tasks", "tworoom", "--out", str(out), "--no-progress"]) == 0
    assert (out / "tworoom" / "eval-ours" / "report.json").stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text())["rows"][0]
    assert again["success_rate"] == row["success_rate"]
    # Stage times are the ones measured when the stage ran, not the seconds spent finding it done.
    assert row["train_s"] > 0 and again["train_s"] == row["train_s"] and again["collect_s"] == row["collect_s"]
    (out / "tworoom" / "stage_times.json").unlink()  # as for a run trained by hand with the same command
    assert main(["benchmark", "--quick", "--tasks", "tworoom", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text())["rows"][0]["train_s"] is None
    assert "not timed here" in (out / "results.md").read_text()


def test_every_recipe_names_its_protocols_and_unknown_tasks_are_refused(tmp_path, capsys):
    assert set(RECIPES) == {"tworoom", "pointmaze", "reacher", "pusht"}
    assert RECIPES["pusht"].protocols["lewm"] == {"goal_split": "train", "success": "any", "skip_solved": False}
    assert RECIPES["reacher"].protocols["swm-joints"]["env_kwargs"] == {"success": "joints"}
    with pytest.raises(SystemExit):
        main(["benchmark", "--tasks", "cartpole", "--out", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err


def test_written_commands_parse_back_to_the_recipe(tmp_path):
    """The collect and train commands in results.md set what the recipe sets (PushT: expert pace, bf16)."""
    recipe = RECIPES["pusht"]
    collect_cmd, train_cmd = stage_commands(recipe, tmp_path / "data", tmp_path / "run", seed=3)
    c = build_parser().parse_args(shlex.split(collect_cmd)[1:])
    assert (c.policy, c.episodes, c.policy_kwargs, c.seed) == ("pusht-expert", recipe.episodes, recipe.policy_kwargs, 3)
    t = build_parser().parse_args(shlex.split(train_cmd)[1:])
    assert t.bf16 is True and t.steps == recipe.train_steps and t.preset == recipe.preset


def test_precision_fp32_drops_bf16_from_every_stage(tmp_path, monkeypatch):
    from forethought.evaluation import benchmark

    recipe = RECIPES["pusht"].float32()
    assert recipe.mpc["bf16"] is False and "bf16" not in recipe.train and RECIPES["pusht"].train["bf16"] is True
    _, train_cmd = stage_commands(recipe, tmp_path / "data", tmp_path / "run", seed=0)
    assert not build_parser().parse_args(shlex.split(train_cmd)[1:]).bf16
    assert benchmark.use_bf16("fp32") is False and benchmark.use_bf16("bf16") is True
    for native, keeps in ((False, False), (True, True), (None, True)):  # auto: float32 only where bf16 is emulated
        monkeypatch.setattr(benchmark, "native_bf16", lambda device, native=native: native)
        assert benchmark.use_bf16("auto", device="cpu") is keeps
    with pytest.raises(ValueError, match="--precision"):
        benchmark.use_bf16("fp16")
