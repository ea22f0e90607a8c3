"""CLI smoke tests: the `forethought` command end to end, through its real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from forethought.cli import main

COMMANDS = ["envs", "collect", "info", "verify", "import-minari", "export-minari", "train", "eval"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forethought.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_help_is_fast_and_lists_commands():
    start = time.perf_counter()
    result = run("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    # --help must not import torch (several seconds on a busy machine); generous bound.
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from forethought.cli import build_parser; build_parser(); print('torch' in sys.modules)"],
        capture_output=True, text=True,
    )
    assert out.stdout.strip() == "False", out.stderr
    assert elapsed < 30


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: forethought" in text
    if command != "envs":
        assert "example" in text


def test_collect_info_train_end_to_end(tmp_path):
    data = tmp_path / "tworoom"
    result = run("collect", "--env", "forethought/TwoRoom-v0", "--policy", "smooth", "--episodes", "12",
                 "--steps", "30", "--out", str(data), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "episodes" in result.stdout

    info = run("info", str(data), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["episodes"] == 12

    # Collecting again into the same folder is refused with advice; --resume finishes it instead.
    # (--no-progress: the spelling train and eval use; --quiet is the older alias, used above.)
    again = run("collect", "--env", "forethought/TwoRoom-v0", "--episodes", "12", "--out", str(data), "--no-progress")
    assert again.returncode == 2 and "--resume" in again.stderr

    out = tmp_path / "run"
    trained = run("train", "--data", str(data), "--out", str(out), "--preset", "tiny", "--steps", "8",
                  "--no-progress", "--no-tensorboard", "--batch-size", "4")
    assert trained.returncode == 0, trained.stderr
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "model" / "config.json").is_file()


def test_bad_input_gives_one_line_errors(tmp_path):
    unknown = run("collect", "--env", "forethought/TwoRum-v0", "--episodes", "1", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2
    assert "forethought/TwoRoom-v0" in unknown.stderr  # the error lists the known ids
    assert "Traceback" not in unknown.stderr

    (tmp_path / "notdata").mkdir()
    foreign = run("info", str(tmp_path / "notdata"))
    assert foreign.returncode == 2 and "Traceback" not in foreign.stderr
    assert "notdata" in foreign.stderr

    bad_json = run("collect", "--env", "forethought/TwoRoom-v0", "--env-kwargs", "[1]", "--out", str(tmp_path / "y"))
    assert bad_json.returncode == 2 and "JSON object" in bad_json.stderr
