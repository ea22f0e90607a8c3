from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forethought.data.normalization import NormStats, Normalizer
from forethought.data.store import EpisodeStore

from .conftest import LENGTHS


def _normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    actions = rng.normal([1.0, -2.0], [0.5, 3.0], size=(500, 2))
    states = np.concatenate([rng.normal(size=(500, 2)), np.full((500, 1), 4.0)], axis=1)
    return Normalizer(NormStats.fit(actions), NormStats.fit(states))


def test_fit_matches_numpy_and_floors_std():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [8.0, 5.0]])
    s = NormStats.fit(x, std_floor=1e-3)
    np.testing.assert_allclose(s.mean, [4.0, 5.0])
    np.testing.assert_allclose(s.std, [np.std([1, 3, 8]), 1e-3])  # constant dim floored
    np.testing.assert_array_equal(s.min, [1, 5])
    np.testing.assert_array_equal(s.max, [8, 5])
    assert s.count == 3


def test_normalize_round_trip_numpy_and_torch():
    norm = _normalizer()
    a = np.random.default_rng(1).normal(size=(4, 7, 2)).astype(np.float32)
    na = norm.normalize_action(a)
    assert na.dtype == np.float32 and na.shape == a.shape
    np.testing.assert_allclose(na, (a - norm.action.mean) / norm.action.std, rtol=1e-5)
    np.testing.assert_allclose(norm.denormalize_action(na), a, rtol=1e-5, atol=1e-5)
    t = torch.from_numpy(a)
    nt = norm.normalize_action(t)
    assert isinstance(nt, torch.Tensor) and nt.dtype == torch.float32
    np.testing.assert_allclose(nt.numpy(), na, rtol=1e-6)
    s = torch.randn(3, 3, dtype=torch.float64)
    torch.testing.assert_close(norm.denormalize_state(norm.normalize_state(s)), s)


def test_frameskip_actions_tile_the_statistics():
    norm = _normalizer()
    k = 3
    a = np.random.default_rng(2).normal(size=(5, 4, k * 2)).astype(np.float32)
    na = norm.normalize_action(a)
    for j in range(k):  # each block of A dims is normalized like one env action
        np.testing.assert_allclose(na[..., 2 * j : 2 * j + 2], norm.normalize_action(a[..., 2 * j : 2 * j + 2]))
    with pytest.raises(ValueError, match="not a multiple"):
        norm.normalize_action(np.zeros((2, 5), np.float32))


def test_dict_round_trip_is_json_safe():
    norm = _normalizer()
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back == norm
    np.testing.assert_array_equal(back.state.std, norm.state.std)
    no_state = Normalizer(norm.action)
    assert Normalizer.from_dict(json.loads(json.dumps(no_state.to_dict()))).state is None
    with pytest.raises(ValueError, match="no state statistics"):
        no_state.normalize_state(np.zeros(3))


def test_dataset_stats_exclude_padding_rows(pixel_store):
    path, eps = pixel_store
    store = EpisodeStore.open(path)
    stats = store.compute_stats()
    real_actions = np.concatenate([e.action[:-1] for e in eps])  # without the padding rows
    assert stats.action.count == sum(LENGTHS)
    np.testing.assert_allclose(stats.action.mean, real_actions.mean(axis=0))
    np.testing.assert_allclose(stats.action.std, real_actions.std(axis=0))
    with_padding = np.concatenate([e.action for e in eps]).mean(axis=0)
    assert not np.allclose(stats.action.mean, with_padding)
    states = np.concatenate([e.state for e in eps])  # states: every row is a real state
    np.testing.assert_allclose(stats.state.mean, states.mean(axis=0))


def test_stored_stats_are_read_not_refit(pixel_store):
    path, _ = pixel_store
    store = EpisodeStore.open(path)
    assert store.stats == store.compute_stats()
    # Edit stats.json by hand: readers must return exactly what is stored.
    d = json.loads((path / "stats.json").read_text())
    d["action"]["mean"] = [123.0, 456.0]
    (path / "stats.json").write_text(json.dumps(d))
    np.testing.assert_array_equal(EpisodeStore.open(path).stats.action.mean, [123.0, 456.0])
