from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from forethought.data.collect import collect, moving_fraction
from forethought.data.integrity import verify
from forethought.data.store import DatasetError, EpisodeStore

from .conftest import build_store
from .tiny_env import ENV_ID, IMPORT_ROOT

REPO = Path(__file__).resolve().parents[2]
KW = dict(episodes=12, steps=10, seed=7, progress=False)


@pytest.fixture(autouse=True)
def _children_import_like_us(monkeypatch):
    """Spawned workers (which copy sys.path) and subprocesses (PYTHONPATH) must be able to
    import the tiny env module by the name this process gave it."""
    monkeypatch.syspath_prepend(IMPORT_ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([IMPORT_ROOT, os.environ.get("PYTHONPATH", "")]))


def assert_same_dataset(a: Path, b: Path) -> None:
    sa, sb = EpisodeStore.open(a), EpisodeStore.open(b)
    assert len(sa) == len(sb)
    for i in range(len(sa)):
        assert sa.episode(i).equals(sb.episode(i)), f"episode {i} differs between {a} and {b}"
    assert json.loads((a / "stats.json").read_text()) == json.loads((b / "stats.json").read_text())


def test_collect_writes_a_complete_dataset(tmp_path):
    s = collect(ENV_ID, tmp_path / "ds", **KW)
    assert s["episodes"] == 12 and s["collected_this_run"] == 12 and s["bytes_on_disk"] > 0
    store = EpisodeStore.open(tmp_path / "ds")
    lengths = store.episode_lengths
    np.testing.assert_array_equal(lengths, [min(10, 3 + (7 + i) % 11) for i in range(12)])  # varied
    assert s["env_steps"] == lengths.sum() == store.num_steps
    # the env's own dataset metrics (TinyEnv.dataset_metrics) see exactly the within-episode transitions
    assert s["tiny_transitions"] == s["env_steps"]
    block = [store.episode(i).state[:, 2:] for i in range(len(store))]
    assert s["tiny_block_moves"] == sum(int(np.any(b[t + 1] != b[t])) for b in block for t in range(len(b) - 1))
    np.testing.assert_array_equal(store.episode_seeds, 7 + np.arange(12))
    ep = store.episode(3)
    assert ep.obs.shape == (lengths[3] + 1, 8, 8, 3) and ep.state.shape == (lengths[3] + 1, 4)
    assert np.abs(ep.action).max() <= 1.0
    assert store.stats == store.compute_stats()  # written once, at the end
    meta = store.meta
    assert meta["env_id"] == ENV_ID and meta["policy"]["name"] == "random" and meta["seed"] == 7
    assert meta["action_space"] == {"type": "Box", "shape": [2], "dtype": "<f4", "low": -1.0, "high": 1.0}


def test_dataset_does_not_depend_on_worker_count(tmp_path):
    collect(ENV_ID, tmp_path / "w1", workers=1, **KW)
    collect(ENV_ID, tmp_path / "w2", workers=2, **KW)
    assert_same_dataset(tmp_path / "w1", tmp_path / "w2")


@pytest.mark.timeout(60)
def test_worker_errors_propagate_instead_of_hanging(tmp_path):
    with pytest.raises(RuntimeError, match="fail on seed 10"):
        collect(ENV_ID, tmp_path / "ds", workers=2, env_kwargs={"fail_on_seed": 10}, **KW)
    store = EpisodeStore.open(tmp_path / "ds")  # what was committed before the failure is intact
    assert len(store) <= 3 and all(store.episode(i).seed == 7 + i for i in range(len(store)))


def test_no_state_env_stores_no_state(tmp_path):
    collect(ENV_ID, tmp_path / "ds", env_kwargs={"no_state": True}, **KW)
    store = EpisodeStore.open(tmp_path / "ds")
    assert not store.has_state and "state" not in os.listdir(tmp_path / "ds")


def test_existing_dataset_refused_without_resume(tmp_path):
    collect(ENV_ID, tmp_path / "ds", **KW)
    with pytest.raises(DatasetError, match="resume"):
        collect(ENV_ID, tmp_path / "ds", **KW)


@pytest.mark.parametrize(
    "change,key",
    [
        ({"env_kwargs": {"size": 9}}, "env_kwargs"),
        ({"seed": 8}, "seed"),
        ({"steps": 11}, "max_steps"),
    ],
)
def test_resume_with_mismatch_refused(tmp_path, change, key):
    collect(ENV_ID, tmp_path / "ds", **KW)
    kw = {**KW, "episodes": 14, **change}
    with pytest.raises(DatasetError, match=f"cannot resume .*: {key} differs"):
        collect(ENV_ID, tmp_path / "ds", resume=True, **kw)
    assert len(EpisodeStore.open(tmp_path / "ds")) == 12  # untouched


def test_resume_extends_to_the_same_dataset(tmp_path):
    collect(ENV_ID, tmp_path / "ref", **{**KW, "episodes": 20})
    collect(ENV_ID, tmp_path / "ds", **KW)
    s = collect(ENV_ID, tmp_path / "ds", resume=True, **{**KW, "episodes": 20})
    assert s["collected_this_run"] == 8
    assert_same_dataset(tmp_path / "ref", tmp_path / "ds")


def test_sigkill_mid_run_keeps_committed_episodes_and_resume_finishes(tmp_path):
    kw = dict(episodes=60, steps=10, seed=3, env_kwargs={"step_sleep": 0.002})
    ref, out = tmp_path / "ref", tmp_path / "killed"
    collect(ENV_ID, ref, progress=False, **kw)

    code = (
        "from forethought.data.collect import collect\n"
        f"collect({ENV_ID!r}, {str(out)!r}, progress=False, **{kw!r})\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            commit = out / "commit.json"
            if commit.is_file() and json.loads(commit.read_text())["num_episodes"] >= 5:
                break
            assert proc.poll() is None, "the collection finished or crashed before it could be killed"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    killed = EpisodeStore.open(out)
    n = len(killed)
    assert 5 <= n < 60, n
    assert verify(killed, full=True).checksummed_episodes == n  # the checksum log survives the kill too
    reference = EpisodeStore.open(ref)
    for i in range(n):
        assert killed.episode(i).equals(reference.episode(i)), f"committed episode {i} damaged"

    s = collect(ENV_ID, out, progress=False, resume=True, workers=2, **kw)
    assert s["collected_this_run"] == 60 - n
    assert_same_dataset(ref, out)
    assert verify(EpisodeStore.open(out), full=True).checksummed_episodes == 60


def test_non_box_action_space_refused(tmp_path):
    with pytest.raises(DatasetError, match="1-D Box action space"):
        collect("CartPole-v1", tmp_path / "ds", episodes=1, steps=5, progress=False)


def test_moving_fraction_counts_transitions_within_episodes(tmp_path):
    store, eps = build_store(tmp_path / "ds", lengths=(3, 4))
    # conftest states: column 2 is rows**2 (moves every step), column 3 sin(rows) (moves too)
    assert moving_fraction(store, dims=[2, 3]) == 1.0
    assert moving_fraction(store, dims=[0]) == 0.0  # column 0 = episode id: constant within an
    # episode; it jumps between episodes, which must not count as a move


def test_tworoom_smooth_and_policy_mismatch(tmp_path):
    s = collect("forethought/TwoRoom-v0", tmp_path / "ds", episodes=4, steps=20, policy="smooth", progress=False)
    store = EpisodeStore.open(tmp_path / "ds")
    assert s["episodes"] == 4 and s["env_steps"] == 80
    ep = store.episode(2)
    assert ep.obs.shape == (21, 64, 64, 3) and ep.obs.dtype == np.uint8 and ep.state.shape == (21, 2)
    assert store.meta["policy"] == {"name": "smooth", "kwargs": {}}
    assert store.stats.state.dim == 2
    assert set(s) & {"block_moving_fraction", "tiny_transitions"} == set()  # TwoRoom defines no dataset metrics
    with pytest.raises(DatasetError, match="policy differs"):
        collect("forethought/TwoRoom-v0", tmp_path / "ds", episodes=6, steps=20, policy="random",
                resume=True, progress=False)


def test_pusht_summary_reports_block_moving_fraction(tmp_path):
    pytest.importorskip("gym_pusht")
    s = collect("forethought/PushT-v0", tmp_path / "ds", episodes=3, steps=30, policy="pusht", progress=False)
    store = EpisodeStore.open(tmp_path / "ds")
    # computed here episode by episode: the block (state[2:4]) moved between consecutive frames
    moves = [float(np.hypot(*(ep.state[t + 1, 2:4] - ep.state[t, 2:4]))) > 1e-6
             for ep in (store.episode(i) for i in range(len(store))) for t in range(len(ep.state) - 1)]
    assert len(moves) == s["env_steps"] == 90
    assert s["block_moving_fraction"] == pytest.approx(sum(moves) / len(moves), abs=1e-12)
    assert 0 < sum(moves) < len(moves)  # the pusht policy pushes the block sometimes, not always


def test_bad_policy_arguments_leave_no_dataset(tmp_path):
    with pytest.raises(ValueError, match="--policy-kwargs: policy 'smooth' has no argument 'sigm'"):
        collect("forethought/TwoRoom-v0", tmp_path / "ds", episodes=2, steps=5, policy="smooth",
                policy_kwargs={"sigm": 0.3}, workers=2, progress=False)
    assert not (tmp_path / "ds").exists()
