"""`forethought collect --resume --repair`: damaged episodes re-collected in place, bit-identical.

The command run is the one the error message gives, so the fix it prints is the fix that works.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from forethought.cli import main
from forethought.data.errors import DatasetCorruptError
from forethought.data.integrity import verify
from forethought.data.store import EpisodeStore

from .conftest import build_store, collect_command, copy_of, damage_file, strip_checksums
from .tiny_env import TinyEnv

DAMAGE = {  # chunk file, damage, episodes re-collected
    "obs-deleted": ("obs/c/2/0/0/0", "missing", [2, 3, 4]),
    "obs-truncated": ("obs/c/1/0/0/0", "truncated", [1, 2]),
    "obs-flipped": ("obs/c/3/0/0/0", "flipped", [5, 6, 7]),
    "action-deleted": ("action/c/0/0", "missing", list(range(12))),
    "state-flipped": ("state/c/0/0", "flipped", list(range(12))),
    "index-deleted": ("episode_start/c/0", "missing", []),  # rebuilt from the log, nothing re-collected
    "seeds-truncated": ("episode_seed/c/0", "truncated", []),
}


def _fix_from_message(err: DatasetCorruptError) -> list[str]:
    command = str(err).split("`")[1]  # "... with `forethought collect ... --resume --repair`, or ..."
    words = shlex.split(command)
    assert words[:2] == ["forethought", "collect"] and words[-2:] == ["--resume", "--repair"]
    return words[1:] + ["--quiet"]


def _chunk_bytes(ds: Path) -> dict[str, bytes]:
    """Every chunk file (``<array>/c/...``) of a dataset, by path."""
    files = (p for p in ds.rglob("*") if p.is_file() and p.relative_to(ds).parts[1:2] == ("c",))
    return {str(p.relative_to(ds)): p.read_bytes() for p in files}


def _assert_same_episodes(a, b):
    sa, sb = EpisodeStore.open(a), EpisodeStore.open(b)
    assert len(sa) == len(sb)
    for i in range(len(sa)):
        assert sa.episode(i).equals(sb.episode(i)), f"episode {i} differs"


@pytest.mark.parametrize("case", list(DAMAGE))
def test_repair_restores_damaged_episodes_bit_identically_in_place(tiny_dataset, tmp_path, case, capsys):
    rel, kind, episodes = DAMAGE[case]
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / rel, kind)
    with pytest.raises(DatasetCorruptError) as err:
        verify(EpisodeStore.open(ds), full=True)
    before = _chunk_bytes(ds)
    assert main(_fix_from_message(err.value)) == 0
    out = capsys.readouterr().out
    assert re.search(rf"repaired_episodes\s+{len(episodes)}\n", out), out
    _assert_same_episodes(ds, tiny_dataset)
    report = verify(EpisodeStore.open(ds), full=True)
    assert report.checksummed_episodes == 12
    assert json.loads((ds / "stats.json").read_text()) == json.loads((tiny_dataset / "stats.json").read_text())
    if case == "obs-deleted":  # later episodes were kept as they were, not truncated and re-collected
        after = _chunk_bytes(ds)
        for name in ("obs/c/0/0/0/0", "obs/c/1/0/0/0", "obs/c/3/0/0/0", "obs/c/4/0/0/0", "obs/c/6/0/0/0"):
            assert after[name] == before[name], name


def test_repair_without_checksums_compares_with_the_intact_arrays(tiny_dataset, tmp_path):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    strip_checksums(ds)
    damage_file(ds / "obs/c/2/0/0/0", "missing")
    assert main(collect_command(ds) + ["--resume", "--repair"]) == 0
    _assert_same_episodes(ds, tiny_dataset)


def test_repair_refuses_episodes_that_do_not_come_out_the_same(tiny_dataset, tmp_path, monkeypatch, capsys):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / "obs/c/2/0/0/0", "missing")
    before = _chunk_bytes(ds)
    step = TinyEnv.step

    def changed_dynamics(self, action):  # as if the env changed since the dataset was collected
        return step(self, np.asarray(action) * 0.5)

    monkeypatch.setattr(TinyEnv, "step", changed_dynamics)
    assert main(collect_command(ds) + ["--resume", "--repair"]) == 2
    err = capsys.readouterr().err
    assert f"{ds}: cannot repair episode 2: collecting it again (seed 9) gives different" in err, err
    assert "Nothing was changed" in err and "restore the folder from a backup" in err.lower()
    assert _chunk_bytes(ds) == before  # nothing written


def test_damage_in_a_dataset_not_made_by_collect_says_it_cannot_be_recollected(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    store.close()
    damage_file(tmp_path / "ds/obs/c/0/0/0/0", "missing")
    with pytest.raises(DatasetCorruptError, match="cannot be re-collected: restore the folder from a backup"):
        EpisodeStore.open(tmp_path / "ds")


def test_repair_needs_resume_and_an_existing_dataset(tmp_path, capsys):
    assert main(collect_command(tmp_path / "ds") + ["--repair"]) == 2
    assert "needs resume=True (--resume)" in capsys.readouterr().err
    assert main(collect_command(tmp_path / "ds") + ["--resume", "--repair"]) == 2
    assert "nothing to repair" in capsys.readouterr().err


def test_repair_of_an_intact_dataset_changes_nothing(tiny_dataset, tmp_path):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    before = _chunk_bytes(ds)
    assert main(collect_command(ds) + ["--resume", "--repair"]) == 0
    assert _chunk_bytes(ds) == before


def test_repair_with_a_damaged_checksum_log_too_rebuilds_the_log(tiny_dataset, tmp_path):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / "checksums.jsonl", "flipped")
    damage_file(ds / "obs/c/2/0/0/0", "missing")
    assert main(collect_command(ds) + ["--resume", "--repair"]) == 0
    _assert_same_episodes(ds, tiny_dataset)
    assert verify(EpisodeStore.open(ds), full=True).checksummed_episodes == 12
