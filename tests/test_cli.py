"""CLI smoke tests: the `forethought` command end to end, through its real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from forethought.cli import main

COMMANDS = ["envs", "collect", "info", "verify", "import-minari", "export-minari", "train", "eval", "import-video",
            "pretrain", "latent-actions"]


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


def test_errors_name_the_command_then_the_file_or_argument(tmp_path):
    """One style: `forethought <command>: <file or argument>: <what is wrong>. <what to do>`, exit 2."""
    nowhere = tmp_path / "nowhere"
    missing = run("eval", "--model", str(nowhere), "--out", str(tmp_path / "r"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith(f"forethought eval: {nowhere}")

    usage = run("eval", "--model", "m", "--out", "o", "--episodes", "many")
    assert usage.returncode == 2
    assert usage.stderr.strip() == ("forethought eval: argument --episodes: invalid int value: 'many'. "
                                    "Run `forethought eval --help` for the options.")

    for command, out in (("eval", ["--out", str(tmp_path / "r")]), ("surprise-calibrate", [])):
        bad = run(command, "--model", str(nowhere), *out, "--env-kwargs", "{image_size: 32}")
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.startswith(f"forethought {command}: --env-kwargs: not JSON"), bad.stderr
        assert "image_size" in bad.stderr  # the fix shows the form

    unknown = run("surprise-calibrate", "--model", "m", "--out", "o")  # surprise-calibrate writes into the model
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("forethought surprise-calibrate: unrecognized arguments: --out o. Run")


def test_error_message_formats_library_and_system_errors():
    from forethought.cli import error_message

    assert error_message("info", ValueError("data/x: no meta.json. Collect it")) == "forethought info: data/x: no meta.json. Collect it"
    err = PermissionError(13, "Permission denied", "reports/r")
    assert error_message("eval", err) == "forethought eval: reports/r: Permission denied"
    assert error_message(None, ValueError("x")) == "forethought: x"
