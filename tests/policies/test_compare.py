"""`forethought compare`: every method on the same tasks, one report each, compare.json and the markdown table."""

from __future__ import annotations

import json

import pytest

from forethought.cli import main

pytest.importorskip("PIL")


def test_compare_runs_every_method_on_the_same_tasks_and_writes_the_table(policy_runs, tworoom_model_run, tmp_path,
                                                                          capsys):
    out, doc = tmp_path / "cmp", tmp_path / "docs" / "table.md"
    policies = ",".join(str(policy_runs[m]) for m in ("gcbc", "imagination"))
    assert main(["compare", "--model", str(tworoom_model_run), "--policies", policies, "--warm-start",
                 str(policy_runs["imagination"]), "--out", str(out), "--doc", str(doc), "--episodes", "3", "--budget",
                 "4", "--batch", "3", "--samples", "8", "--iterations", "1", "--horizon", "2", "--gif-episodes", "0",
                 "--timing-episodes", "1", "--timing-steps", "2", "--timing-threads", "1", "--no-progress"]) == 0
    summary = json.loads((out / "compare.json").read_text())
    methods = summary["methods"]
    assert list(methods) == ["mpc-cem", "mpc-cem-warm", "policy-gcbc", "policy-imagination"]
    assert all(m["same_tasks"] and m["episodes"] == 3 for m in methods.values())
    assert all(m["ms_per_action"]["1"] > 0 for m in methods.values())
    assert (out / "mpc" / "report.json").is_file() and (out / "policy-gcbc" / "report.json").is_file()
    assert methods["policy-gcbc"]["training"]["losses"] == ["action MSE on hindsight goals"]
    rows = summary["rows"]
    assert set(rows) == {"training simplicity", "inference speed", "novel dynamics adaptation", "novel reward adaptation",
                         "modeling-error quantification", "data efficiency"}
    assert all(row["measured"] or row["why"] for row in rows.values())  # every cell measured or says why
    text = doc.read_text()
    assert "| policy-gcbc |" in text and "Not measured: not run by this command. Model-based: `forethought adapt" in text and "## Closing note" in text
    assert "(../cmp/policy-gcbc/report.md)" in text  # links relative to the doc
    capsys.readouterr()
    assert main(["compare", "--model", str(tworoom_model_run), "--out", str(out), "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err  # a finished comparison is never overwritten by accident
