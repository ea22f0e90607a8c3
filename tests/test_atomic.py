"""Crash-safe writes: a folder or file is always its whole old or its whole new version."""

from __future__ import annotations

import json

import pytest

from forethought._atomic import atomic_folder, atomic_write_json, remove_stale


def test_folder_is_replaced_whole_and_failures_leave_the_old_one(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("v1")
        assert not target.exists()  # nothing visible until the block ends
    assert (target / "a.txt").read_text() == "v1"

    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("v2-partial")
            raise RuntimeError("killed half-way")
    assert (target / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp folder left behind

    with atomic_folder(target) as tmp:
        (tmp / "b.txt").write_text("v2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_json_write_and_stale_cleanup(tmp_path):
    path = tmp_path / "commit.json"
    atomic_write_json(path, {"num_episodes": 3})
    assert json.loads(path.read_text()) == {"num_episodes": 3}
    # What a SIGKILL between mkstemp and os.replace would leave:
    (tmp_path / ".tmp-commit.json-abc").write_text("{")
    (tmp_path / ".old-model-xyz").mkdir()
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == [".old-model-xyz", ".tmp-commit.json-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["commit.json"]
