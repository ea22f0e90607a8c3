"""Damaged datasets on disk: every damage is found, named (array, file, episodes) and comes with the fix.

Each test damages a real file of a small collected dataset and runs the real command or function.
The tiny dataset: 12 episodes (lengths 10,10,10,10,3,4,5,6,7,8,9,10: 104 rows) with obs chunks of
16 rows, so obs chunk 1 (rows 16-31) holds episodes 1-2, chunk 2 (rows 32-47) episodes 2-4 and
chunk 3 (rows 48-63) episodes 5-7.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from forethought.cli import main
from forethought.data.errors import DatasetCorruptError
from forethought.data.integrity import verify
from forethought.data.repair import rehash
from forethought.data.store import EpisodeStore
from forethought.data.windows import WindowDataset

from .conftest import copy_of, damage_file, strip_checksums

# (array, chunk file, damage, episodes affected, what the message says, needs the full check)
CASES = {
    "obs-deleted": ("obs", "obs/c/2/0/0/0", "missing", "episodes 2-4", "is missing", False),
    "action-deleted": ("action", "action/c/0/0", "missing", "episodes 0-11", "is missing", False),
    "index-deleted": ("episode_start", "episode_start/c/0", "missing", "episodes 0-11", "is missing", False),
    "obs-truncated": ("obs", "obs/c/1/0/0/0", "truncated", "episodes 1-2", "cannot be decoded", False),
    "obs-flipped": ("obs", "obs/c/3/0/0/0", "flipped", "episodes 5-7", "", True),
}
COMMANDS = {
    "info": lambda ds, full: ["info", str(ds)] + (["--verify"] if full else []),
    "verify": lambda ds, full: ["verify", str(ds)] + (["--full"] if full else []),
    "train": lambda ds, full: ["train", "--data", str(ds), "--out", str(ds.parent / "run"), "--preset", "tiny",
                               "--no-progress", "--no-tensorboard"] + (["--verify-data", "full"] if full else []),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CASES))
def test_damaged_chunk_exits_2_naming_array_file_episodes_and_fix(tiny_dataset, tmp_path, capsys, case, command):
    array, rel, kind, episodes, problem, full = CASES[case]
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / rel, kind)
    assert main(COMMANDS[command](ds, full)) == 2
    err = capsys.readouterr().err
    assert f"{array} chunk file {ds / rel} {problem}" in err, err
    assert episodes in err, err
    assert "--resume --repair" in err and f"--out {ds}" in err, err  # the fix, as a command to run
    assert "Traceback" not in err and not (tmp_path / "run" / "model").exists()


def test_intact_dataset_passes_every_check(tiny_dataset, capsys):
    assert main(["verify", str(tiny_dataset), "--full"]) == 0
    assert main(["info", str(tiny_dataset), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "OK (full check: 12 episodes" in out and "episode checksums match" in out
    assert "full check passed" in out and "no checksums" not in out


def test_a_chunk_of_zeros_is_written_so_its_loss_is_seen(tiny_dataset, tmp_path):
    """`truncated` is all False: zarr skips such chunks by default, which would hide a deleted one."""
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / "truncated" / "c" / "0", "missing")
    with pytest.raises(DatasetCorruptError, match=r"truncated chunk file .*truncated/c/0 is missing") as err:
        EpisodeStore.open(ds)
    assert err.value.arrays == ["truncated"] and err.value.episodes == list(range(12))


@pytest.mark.parametrize("in_memory", [True, False])
def test_reading_a_truncated_chunk_names_the_file_not_the_codec(tiny_dataset, tmp_path, in_memory):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / "obs/c/1/0/0/0", "truncated")
    store = EpisodeStore.open(ds)  # presence is fine; reading is not
    with pytest.raises(DatasetCorruptError, match=r"obs chunk file .*obs/c/1/0/0/0 cannot be decoded.*episodes 1-2"):
        store.episode(1)
    assert store.episode(5).obs.shape[0] == 5  # other chunks still read
    with pytest.raises(DatasetCorruptError, match=r"obs/c/1/0/0/0 cannot be decoded.*--repair"):
        windows = WindowDataset(ds, history=1, horizon=1, in_memory=in_memory)
        for i in range(len(windows)):
            windows[i]


def test_index_that_does_not_add_up_is_refused_on_open(tiny_dataset, tmp_path):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    with EpisodeStore.open(ds, mode="a") as store:
        store.array("episode_steps")[3] = 5  # decodes fine, but episode 4 no longer starts after episode 3
    with pytest.raises(DatasetCorruptError, match=r"episode_start chunk file .* is inconsistent .*episode 4"):
        EpisodeStore.open(ds)


def test_a_killed_writers_leftovers_in_a_shared_chunk_are_not_damage(tiny_dataset, tmp_path):
    """A kill between writing rows and committing them leaves new bytes in the last, shared chunk."""
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    store = EpisodeStore.open(ds, mode="a")
    n = store.num_rows
    for name in ("obs", "action", "state"):
        arr = store.array(name)
        arr.resize((n + 20, *arr.shape[1:]))
        arr[n : n + 20] = 1  # uncommitted rows in the chunk that holds the last committed ones
    store.array("episode_steps")[12:13] = 99
    store.close()
    assert verify(EpisodeStore.open(ds), full=True).checksummed_episodes == 12
    pristine = EpisodeStore.open(tiny_dataset)
    assert all(EpisodeStore.open(ds).episode(i).equals(pristine.episode(i)) for i in range(12))


def test_dataset_without_checksums_opens_with_a_note_and_rehash_adds_them(tiny_dataset, tmp_path, capsys):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    strip_checksums(ds)
    damage_file(ds / "terminated/c/0", "missing")  # before checksums, an all-zero chunk had no file
    assert main(["verify", str(ds), "--full"]) == 0
    out = capsys.readouterr().out
    assert "no checksums recorded" in out and f"forethought verify {ds} --rehash` adds checksums" in out
    damage_file(ds / "action/c/0/0", "missing")  # but a missing action chunk is damage
    assert main(["info", str(ds)]) == 2 and "action/c/0/0 is missing" in capsys.readouterr().err
    ds2 = copy_of(tiny_dataset, tmp_path / "ds2")
    strip_checksums(ds2)
    damage_file(ds2 / "terminated/c/0", "missing")
    assert main(["verify", str(ds2), "--rehash"]) == 0
    assert "checksums recorded for 12 episodes" in capsys.readouterr().out
    assert (ds2 / "terminated/c/0").is_file()  # written, so that its loss would be seen
    report = verify(EpisodeStore.open(ds2), full=True)
    assert report.checksummed_episodes == 12 and not report.notes


def test_damaged_checksum_log_is_named_and_rehash_rebuilds_it(tiny_dataset, tmp_path, capsys):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    damage_file(ds / "checksums.jsonl", "flipped")
    assert main(["verify", str(ds)]) == 2
    err = capsys.readouterr().err
    assert f"the checksum log {ds / 'checksums.jsonl'} does not match" in err and "--rehash" in err
    assert main(["verify", str(ds), "--rehash"]) == 0
    assert main(["verify", str(ds), "--full"]) == 0
    commit = json.loads((ds / "commit.json").read_text())
    assert commit["checksums"]["file"] == "checksums.1.jsonl" and not (ds / "checksums.jsonl").exists()


def test_rehash_refuses_data_that_does_not_match_its_checksums(tiny_dataset, tmp_path):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    with EpisodeStore.open(ds, mode="a") as store:
        store.array("action")[5] = np.float32(0.5)
    with pytest.raises(DatasetCorruptError, match=r"action chunk file .*action/c/0/0 does not match the checksums"):
        rehash(ds)


def test_truncated_chunk_without_checksums_is_named_when_train_reads_it(tiny_dataset, tmp_path, capsys):
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    strip_checksums(ds)  # no recorded size: only reading the chunk finds the damage
    damage_file(ds / "obs/c/1/0/0/0", "truncated")
    with pytest.warns(UserWarning, match=r"12 of 12 episodes have no checksums .*--rehash` adds checksums"):
        assert main(COMMANDS["train"](ds, False)) == 2
    err = capsys.readouterr().err
    assert f"obs chunk file {ds / 'obs/c/1/0/0/0'} cannot be decoded" in err and "--repair" in err, err
