"""NaN/inf in a dataset is found before training starts, named by episode and step, and can be dropped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forethought.cli import main
from forethought.data.finite import find_non_finite
from forethought.data.repair import rehash
from forethought.data.store import EpisodeStore

from .conftest import copy_of, strip_checksums

TRAIN = ["--preset", "tiny", "--steps", "2", "--warmup-steps", "0", "--eval-every", "0", "--ckpt-every", "0",
         "--val-fraction", "0.25", "--no-progress", "--no-tensorboard"]


@pytest.fixture
def nan_dataset(tiny_dataset, tmp_path):
    """The tiny dataset with 10 NaN actions: episode 3, steps 2-6, both action dimensions.

    Written past `append_episode`'s own refusal (as hand edits or older code could), then given
    checksums of what it now holds, so only the NaN check can object.
    """
    ds = copy_of(tiny_dataset, tmp_path / "ds")
    with EpisodeStore.open(ds, mode="a") as store:
        start = int(store.episode_starts[3])
        store.array("action")[start + 2 : start + 7] = np.nan
    strip_checksums(ds)
    rehash(ds)
    return ds


def test_find_non_finite_counts_and_locates(nan_dataset, tiny_dataset):
    bad = find_non_finite(EpisodeStore.open(nan_dataset))
    assert bad.counts == {"action": 10} and bad.first == {"action": (3, 2)} and bad.episodes == [3]
    assert find_non_finite(EpisodeStore.open(tiny_dataset)) is None


def test_nan_actions_stop_train_before_it_starts_naming_episode_and_step(nan_dataset, tmp_path, capsys):
    assert main(["train", "--data", str(nan_dataset), "--out", str(tmp_path / "run"), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"forethought train: {nan_dataset}: the dataset holds NaN or inf values: 10 in action (the first at " \
           "episode 3, step 2); 1 of 12 episodes are affected (3)" in err, err
    assert "--drop-bad-episodes" in err and "lower lr" not in err
    assert not (tmp_path / "run" / "ckpt").exists()


def test_drop_bad_episodes_trains_without_them_and_records_them(nan_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"10 in action .*Left out of training"):
        assert main(["train", "--data", str(nan_dataset), "--out", str(run), "--drop-bad-episodes", *TRAIN]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["dropped_episodes"]["episodes"] == [3] and "episode 3, step 2" in info["dropped_episodes"]["reason"]
    assert 3 not in info["train_episodes"] + info["val_episodes"]
    assert sorted(info["train_episodes"] + info["val_episodes"]) == [i for i in range(12) if i != 3]
    from forethought.models import WorldModel

    kept = [i for i in range(12) if i != 3]  # the statistics are fitted without the dropped episode
    expected = EpisodeStore.open(nan_dataset).compute_stats(episodes=kept).to_dict()
    assert WorldModel.from_pretrained(run / "model").normalization == expected
