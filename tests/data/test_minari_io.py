"""Minari interop: a store exported to Minari and imported back is the same data."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minari")
pytest.importorskip("h5py")

from forethought.data.minari_io import export_minari, import_minari  # noqa: E402
from forethought.data.store import EpisodeStore  # noqa: E402

from .conftest import build_store  # noqa: E402


def test_export_then_import_round_trip(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    store.save_stats()
    store.close()

    data_path = export_minari(tmp_path / "ds", tmp_path / "minari", dataset_id="forethought/test-v0", progress=False)
    import minari

    ds = minari.MinariDataset(data_path)
    assert ds.total_episodes == len(eps)
    assert ds.total_steps == sum(ep.num_steps for ep in eps)
    first = next(iter(ds.iterate_episodes()))
    assert first.actions.shape == (eps[0].num_steps, 2)  # the padding action is not exported

    back = import_minari(tmp_path / "minari", tmp_path / "back", progress=False)
    assert len(back) == len(eps)
    for i, ep in enumerate(eps):
        got = back.episode(i)
        np.testing.assert_array_equal(got.obs, ep.obs)
        np.testing.assert_array_equal(got.action, ep.action)
        np.testing.assert_array_equal(got.state, ep.state)
        np.testing.assert_array_equal(got.reward, ep.reward)
        np.testing.assert_array_equal(got.terminated, ep.terminated)
        np.testing.assert_array_equal(got.truncated, ep.truncated)
    # Statistics are written once at import, and they are the store's own.
    reopened = EpisodeStore.open(tmp_path / "back")
    assert reopened.stats == reopened.compute_stats()


def test_export_refuses_existing_folder(tmp_path):
    store, _ = build_store(tmp_path / "ds")
    store.close()
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        export_minari(tmp_path / "ds", tmp_path / "taken", progress=False)


def test_import_missing_source_says_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        import_minari("mujoco/pusher/expert-v0", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a Minari dataset"):
        import_minari(tmp_path / "empty", tmp_path / "out", progress=False)
