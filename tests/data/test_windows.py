from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from forethought.data.windows import WindowDataset, split_episodes

from .conftest import LENGTHS, build_store


def _expected_windows(eps, h, H, k):
    """Every valid window computed directly from the raw episode arrays."""
    w = h + H
    out = []
    for i, ep in enumerate(eps):
        t = ep.num_steps
        for s in range(0, t - (w - 1) * k + 1):
            frames = s + k * np.arange(w)
            act = np.stack([np.concatenate(ep.action[s + j * k : s + j * k + k]) for j in range(w - 1)])
            out.append((i, s, ep.obs[frames], act, ep.state[frames]))
    return out


@pytest.mark.parametrize("h,H,k", [(1, 1, 1), (2, 3, 2), (1, 2, 3)])
@pytest.mark.parametrize("in_memory", [False, True])
def test_windows_match_raw_episodes(tmp_path, h, H, k, in_memory):
    store, eps = build_store(tmp_path / "ds")
    ds = WindowDataset(store, history=h, horizon=H, frameskip=k, in_memory=in_memory)
    expected = _expected_windows(eps, h, H, k)
    assert len(ds) == len(expected) > 0
    w = h + H
    for idx, (i, s, obs, act, state) in enumerate(expected):
        item = ds[idx]
        assert ds.locate(idx) == (i, s)
        assert item["obs"].shape == (w, 3, 4, 5) and item["obs"].dtype == torch.uint8
        np.testing.assert_array_equal(item["obs"].numpy(), obs.transpose(0, 3, 1, 2))
        assert item["action"].shape == (w - 1, k * 2) and item["action"].dtype == torch.float32
        np.testing.assert_array_equal(item["action"].numpy(), act)
        np.testing.assert_array_equal(item["state"].numpy(), state.astype(np.float32))
        # never crosses an episode: every frame carries the same episode id
        assert (item["obs"][:, 0, 0, 0] == i).all()


def test_in_memory_streams_when_the_pixels_would_not_fit(tmp_path, monkeypatch):
    """Asked to load more pixels than half the available RAM, the dataset streams them (same windows) and warns."""
    import forethought.data.windows as windows

    store, _ = build_store(tmp_path / "ds")
    roomy = WindowDataset(store, history=2, horizon=1, in_memory=True)
    assert roomy.in_memory
    monkeypatch.setattr(windows, "available_memory_bytes", lambda: 100)  # 100 bytes free
    with pytest.warns(UserWarning, match="streaming"):
        tight = WindowDataset(store, history=2, horizon=1, in_memory=True)
    assert not tight.in_memory and "obs" not in tight._memory
    for idx in range(len(roomy)):
        np.testing.assert_array_equal(roomy[idx]["obs"].numpy(), tight[idx]["obs"].numpy())
    monkeypatch.setattr(windows, "available_memory_bytes", lambda: None)  # unknown (not Linux): as asked
    assert WindowDataset(store, history=2, horizon=1, in_memory=True).in_memory


def test_vector_obs_subset_and_keys(tmp_path):
    store, eps = build_store(tmp_path / "ds", pixels=False, state=False)
    ds = WindowDataset(store, history=1, horizon=2, episodes=[4, 2])
    assert set(ds[0]) == {"obs", "action"}  # no state stored -> not returned by default
    assert ds[0]["obs"].dtype == torch.float32 and ds[0]["obs"].shape == (3, 3)
    ids = {int(ds[j]["obs"][0, 0]) for j in range(len(ds))}
    assert ids == {2, 4} and len(ds) == (LENGTHS[4] - 1) + (LENGTHS[2] - 1)
    mem = WindowDataset(store, history=1, horizon=2, episodes=[4, 2], in_memory=True, keys=("action",))
    assert set(mem[3]) == {"action"}
    torch.testing.assert_close(mem[3]["action"], ds[3]["action"])
    with pytest.raises(ValueError, match="stores no state"):
        WindowDataset(store, history=1, horizon=1, keys=("obs", "state"))


def test_bad_window_arguments(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    with pytest.raises(ValueError, match="needs >= 40 env steps, the longest selected has 20"):
        WindowDataset(store, history=3, horizon=2, frameskip=10)
    with pytest.raises(ValueError, match="frameskip must be an integer >= 1"):
        WindowDataset(store, history=1, horizon=1, frameskip=0)
    ds = WindowDataset(store, history=1, horizon=1)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_dataloader_with_two_workers_matches_single_process(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    store.close()
    ds = WindowDataset(tmp_path / "ds", history=2, horizon=2, frameskip=1)
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives: no zarr handles
    assert clone._lazy is None
    torch.testing.assert_close(clone[5], ds[5])
    ref = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0))
    par = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2))
    assert len(ref) == len(par) > 1
    for a, b in zip(ref, par):
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_split_episodes():
    train, val = split_episodes(20, 0.25, seed=3)
    assert len(val) == 5 and len(train) == 15
    assert sorted(train + val) == list(range(20))
    assert split_episodes(20, 0.25, seed=3) == (train, val)
    assert split_episodes(20, 0.25, seed=4) != (train, val)
    assert len(split_episodes(3, 0.01)[1]) == 1  # never silently empty
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(10, 1.0)
