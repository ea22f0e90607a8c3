"""`forethought run` end to end on the tiny TwoRoom model: blocks printed, summary.json, resume after
a stop and after a crash at a chosen point (memory intact, model version consistent with its log),
SIGKILL in a subprocess (slow), bad input exits 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forethought.cli import main
from forethought.data.store import EpisodeStore
from forethought.models import WorldModel
from forethought.online.memory import Memory


class Killed(BaseException):
    """A kill at a chosen point: nothing catches it, nothing after it runs."""


def _argv(tiny_run, memory: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(tiny_run.run), "--memory", str(memory), "--budget", "16", "--goal-offset", "10",
            "--samples", "8", "--iterations", "2", "--horizon", "2", "--block", "3", "--update-steps", "20",
            "--update-batch", "8", "--false-alarm-rate", "0.01", "--warmup", "2", *extra]


def _check_consistent(memory: Path) -> dict:
    """Memory, records, update log and model version agree; returns summary.json."""
    store = EpisodeStore.open(memory / "memory")
    records = [json.loads(x) for x in (memory / "episodes.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records] == list(range(store.num_episodes))
    state = json.loads((memory / "state.json").read_text())
    updates = [json.loads(x) for x in (memory / "updates.jsonl").read_text().splitlines()]
    assert len(updates) == state["updates"]
    accepted = [u["version"] for u in updates if u["outcome"] == "accepted"]
    assert state["version"] == (accepted[-1] if accepted else 0) or updates[-1]["outcome"] == "rollback"
    WorldModel.from_pretrained(memory / "models" / f"v{state['version']:04d}")  # loadable
    return json.loads((memory / "summary.json").read_text())


def test_run_prints_blocks_writes_the_log_and_resumes(tiny_run, tmp_path, capsys) -> None:
    memory = tmp_path / "online"
    argv = _argv(tiny_run, memory, "--change-at", "3", "--change-action-scale", "-1", "--update", "schedule",
                 "--every", "3")
    assert main([*argv, "--episodes", "6"]) == 0
    out = capsys.readouterr().out
    assert "episodes    0-2    normal  success" in out and "episodes    3-5    changed success" in out
    summary = _check_consistent(memory)
    assert summary["episodes"] == 6 and [b["episodes"] for b in summary["blocks"]] == [[0, 2], [3, 5]]
    assert [u["after_episode"] for u in summary["updates"]] == [2, 5]  # the schedule: every 3 episodes
    assert summary["recovery"]["pre_change_episodes"] == 3 and summary["meta"]["change"]["action_scale"] == [-1, -1]
    assert all(isinstance(e["success"], bool) for e in summary["per_episode"])
    pytest.importorskip("matplotlib")
    assert (memory / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the run's own plot
    from forethought.online.plot import main as plot_main

    assert plot_main([str(memory), str(memory), "--out", str(tmp_path / "both.png")]) == 0  # overlay: labels by folder
    assert (tmp_path / "both.png").stat().st_size > 1000
    # The same folder again: refused without --resume, continued with it.
    assert main([*argv, "--episodes", "8"]) == 2
    assert "holds an online run" in capsys.readouterr().err
    assert main([*argv, "--episodes", "8", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert _check_consistent(memory)["episodes"] == 8
    # Resuming with other settings is refused, naming the setting.
    bad = _argv(tiny_run, memory, "--change-at", "4", "--change-action-scale", "-1", "--update", "schedule",
                "--every", "3", "--episodes", "9", "--resume")
    assert main(bad) == 2
    assert "change" in capsys.readouterr().err


def test_a_crash_mid_run_then_resume_keeps_memory_intact(tiny_run, tmp_path, monkeypatch, capsys) -> None:
    memory = tmp_path / "online"
    argv = _argv(tiny_run, memory, "--change-at", "2", "--change-kwargs", '{"door_center": 52}', "--episodes", "5")
    calls = {"n": 0}
    append = Memory.append

    def crash_on_the_fourth(self, episode, record):
        calls["n"] += 1
        if calls["n"] == 4:  # its record is written, its episode is not committed
            from forethought.online.memory import append_jsonl

            append_jsonl(self.folder / "episodes.jsonl", {**record, "episode": self.num_episodes})
            raise Killed
        return append(self, episode, record)

    monkeypatch.setattr(Memory, "append", crash_on_the_fourth)
    with pytest.raises(Killed):
        main(argv)
    monkeypatch.undo()
    assert EpisodeStore.open(memory / "memory").num_episodes == 3
    assert len((memory / "episodes.jsonl").read_text().splitlines()) == 4
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "after episode 2" in capsys.readouterr().out
    summary = _check_consistent(memory)
    assert summary["episodes"] == 5 and [e["episode"] for e in summary["per_episode"]] == list(range(5))
    assert [e["changed"] for e in summary["per_episode"]] == [False, False, True, True, True]


def test_bad_input_exits_2_with_a_message(tiny_run, tmp_path, capsys) -> None:
    for extra, message in ((("--change-at", "1", "--change-action-scale", "[1, 2, 3]"), "1 or 2 finite numbers"),
                           (("--change-kwargs", '{"door_center": 52}'), "need --change-at"),
                           (("--change-at", "1"), "needs what changes"),
                           (("--held-out", "1.5"), "--held-out must be a fraction")):
        assert main([*_argv(tiny_run, tmp_path / "x", "--episodes", "2"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("forethought run: ") and message in err, err
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(SystemExit):
        main([*_argv(tiny_run, tmp_path / "x"), "--update", "sometimes"])


@pytest.mark.slow
def test_sigkill_then_resume_keeps_memory_and_model_consistent(tiny_run, tmp_path) -> None:
    memory = tmp_path / "online"
    argv = _argv(tiny_run, memory, "--episodes", "40", "--update", "schedule", "--every", "2", "--quiet")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "forethought.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    log = memory / "episodes.jsonl"
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 7):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main([*argv, "--resume"]) == 0
    summary = _check_consistent(memory)
    assert summary["episodes"] == 40 and [e["episode"] for e in summary["per_episode"]] == list(range(40))
