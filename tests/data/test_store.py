from __future__ import annotations

import json

import numpy as np
import pytest

from forethought.data.episode import Episode
from forethought._atomic import atomic_write_json
from forethought.data.store import FORMAT_VERSION, DatasetError, EpisodeStore

from .conftest import LENGTHS, build_store, make_episode


def test_round_trip_is_bit_exact_with_random_access(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    store.close()
    r = EpisodeStore.open(tmp_path / "ds")
    assert len(r) == r.num_episodes == len(LENGTHS)
    assert r.num_rows == sum(t + 1 for t in LENGTHS) and r.num_steps == sum(LENGTHS)
    np.testing.assert_array_equal(r.episode_lengths, LENGTHS)
    for i in np.random.default_rng(0).permutation(len(eps)):  # random order
        got = r.episode(int(i))
        assert got.equals(eps[i]), f"episode {i} differs after the round trip"
        assert got.obs.dtype == np.uint8 and got.state.dtype == np.float64
    assert r.episode(-1).equals(eps[-1])
    with pytest.raises(IndexError):
        r.episode(len(eps))


def test_store_rows_follow_the_contract(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    start, t = int(store.episode_starts[2]), LENGTHS[2]
    last = start + t
    np.testing.assert_array_equal(store.array("action")[last], 0)  # padding action
    assert store.array("reward")[last] == 0 and not store.array("terminated")[last]
    np.testing.assert_array_equal(store.array("obs")[last], eps[2].obs[-1])  # final observation
    np.testing.assert_array_equal(store.array("action")[start : start + t], eps[2].action[:-1])


def test_store_without_state(tmp_path):
    store, eps = build_store(tmp_path / "ds", pixels=False, state=False)
    assert not store.has_state and store.episode(1).state is None
    assert store.episode(1).equals(eps[1])
    assert store.compute_stats().state is None


def test_not_a_dataset_names_folder_and_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        EpisodeStore.open(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"junk is not a Forethought dataset: missing meta.json, commit.json"):
        EpisodeStore.open(tmp_path / "junk")


def test_newer_format_version_says_upgrade(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    store.close()
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "ds" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="upgrade forethought"):
        EpisodeStore.open(tmp_path / "ds")


@pytest.mark.parametrize("key", ["action", "state", "obs"])
def test_non_finite_values_refused_with_episode_and_step(tmp_path, key):
    store, _ = build_store(tmp_path / "ds", pixels=False)
    ep = make_episode(9, 6, pixels=False)
    getattr(ep, key)[4, 1] = np.nan if key != "state" else np.inf
    with pytest.raises(DatasetError, match=rf"episode {len(LENGTHS)} .*{key} contains NaN or inf at step 4"):
        store.append_episode(ep)
    assert store.num_episodes == len(LENGTHS)  # nothing committed
    assert len(EpisodeStore.open(tmp_path / "ds")) == len(LENGTHS)


def test_shape_and_dtype_mismatch_refused(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    ep = make_episode(0, 4)
    bad_shape = Episode(np.zeros((5, 4, 6, 3), np.uint8), ep.action, ep.reward, ep.terminated, ep.truncated, ep.state)
    with pytest.raises(DatasetError, match=r"obs rows have shape \(4, 6, 3\), the dataset stores \(4, 5, 3\)"):
        store.append_episode(bad_shape)
    bad_dtype = Episode(ep.obs.astype(np.float32), ep.action, ep.reward, ep.terminated, ep.truncated, ep.state)
    with pytest.raises(DatasetError, match="obs dtype is float32, the dataset stores uint8"):
        store.append_episode(bad_dtype)
    with pytest.raises(DatasetError, match="action has dimension 3"):
        store.append_episode(make_episode(0, 4, action_dim=3))
    with pytest.raises(DatasetError, match="stores state but the episode has none"):
        store.append_episode(make_episode(0, 4, state=False))


def test_episode_validation():
    ep = make_episode(0, 4)
    with pytest.raises(ValueError, match="padding"):
        Episode(ep.obs, ep.action + 1, ep.reward, ep.terminated, ep.truncated)
    with pytest.raises(ValueError, match=r"action must have shape \(T\+1, A\)"):
        Episode(ep.obs, ep.action[:-1], ep.reward, ep.terminated, ep.truncated)
    with pytest.raises(ValueError, match="at least one env step"):
        Episode(ep.obs[:1], ep.action[:1], ep.reward[:1], ep.terminated[:1], ep.truncated[:1])
    assert ep.num_steps == 4


def test_uncommitted_rows_are_invisible_and_truncated(tmp_path):
    """Simulate a writer killed after writing rows and index entries but before the commit."""
    store, eps = build_store(tmp_path / "ds")
    n_rows, n_eps = store.num_rows, store.num_episodes
    obs = store.array("obs")
    obs.resize((n_rows + 500, *obs.shape[1:]))
    obs[n_rows : n_rows + 500] = 255  # garbage beyond the commit
    store.array("episode_steps")[n_eps : n_eps + 1] = np.array([499])
    (tmp_path / "ds" / "obs" / "zarr.abc123.partial").write_bytes(b"half a file")
    store.close()

    reader = EpisodeStore.open(tmp_path / "ds")
    assert (reader.num_episodes, reader.num_rows) == (n_eps, n_rows)
    assert all(reader.episode(i).equals(e) for i, e in enumerate(eps))

    writer = EpisodeStore.open(tmp_path / "ds", mode="a")
    writer.truncate_to_committed()
    assert writer.array("obs").shape[0] == n_rows
    assert not list((tmp_path / "ds").rglob("*.partial"))
    extra = make_episode(42, 5)
    writer.append_episode(extra)
    writer.close()
    again = EpisodeStore.open(tmp_path / "ds")
    assert again.episode(n_eps).equals(extra)
    assert all(again.episode(i).equals(e) for i, e in enumerate(eps))


def test_capacity_grows_geometrically_and_logical_length_lives_in_commit(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    # Over-allocated (so zarr.json is not rewritten on every append) ...
    assert store.array("obs").shape[0] >= 1024 > store.num_rows
    commit = json.loads((tmp_path / "ds" / "commit.json").read_text())
    assert commit["num_episodes"] == store.num_episodes and commit["num_rows"] == store.num_rows
    assert set(commit) == {"num_episodes", "num_rows", "checksums"}  # no array size in the commit record
    store.truncate_to_committed()  # ... and trimmed when a writer finishes
    assert store.array("obs").shape[0] == store.num_rows


def test_atomic_write_json_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "commit.json"
    atomic_write_json(p, {"num_episodes": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"num_episodes": object()})  # fails half-way through json.dump
    assert json.loads(p.read_text()) == {"num_episodes": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["commit.json"]  # no temp file left


def test_read_only_and_single_writer(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    with pytest.raises(DatasetError, match="another process"):
        EpisodeStore.open(tmp_path / "ds", mode="a")
    store.close()
    reader = EpisodeStore.open(tmp_path / "ds")
    with pytest.raises(DatasetError, match="read-only"):
        reader.append_episode(make_episode(0, 3))
    with pytest.raises(DatasetError, match="not empty"):
        EpisodeStore.create(tmp_path / "ds", meta={}, obs_shape=(3,), obs_dtype="f4", action_dim=1, state_dim=None)


def test_summary_and_meta(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    s = store.summary()
    assert s["episodes"] == len(LENGTHS) and s["env_steps"] == sum(LENGTHS)
    assert s["rows"] == sum(LENGTHS) + len(LENGTHS) and s["bytes_on_disk"] > 0
    meta = store.meta
    assert meta["env_id"] == "synthetic" and meta["format_version"] == FORMAT_VERSION
    assert {"numpy", "zarr", "gymnasium", "torch", "forethought"} <= set(meta["versions"])
    assert meta["layout"]["obs_shape"] == [4, 5, 3]


def test_batch_append_is_all_or_nothing(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    good, bad = make_episode(10, 4), make_episode(11, 5)
    bad.state[2, 0] = np.nan
    with pytest.raises(DatasetError, match=rf"episode {len(LENGTHS) + 1} .*state contains NaN or inf at step 2"):
        store.append_episodes([good, bad])
    assert len(EpisodeStore.open(tmp_path / "ds")) == len(LENGTHS)
    assert store.append_episodes([good, make_episode(12, 2)]) == [len(LENGTHS), len(LENGTHS) + 1]
    r = EpisodeStore.open(tmp_path / "ds")
    assert r.episode(len(LENGTHS)).equals(good) and r.episode(len(LENGTHS) - 1).equals(eps[-1])


def test_stats_of_some_episodes_use_only_their_rows(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    sub = store.compute_stats(episodes=[1, 4])
    actions = np.concatenate([eps[1].action[:-1], eps[4].action[:-1]])  # padding rows excluded
    np.testing.assert_allclose(sub.action.mean, actions.mean(axis=0))
    np.testing.assert_allclose(sub.state.mean, np.concatenate([eps[1].state, eps[4].state]).mean(axis=0))
    assert sub.action.count == len(actions)
    assert store.compute_stats(episodes=range(len(eps))) == store.compute_stats()
