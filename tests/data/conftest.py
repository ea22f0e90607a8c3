"""Shared fixtures: small stores whose values identify (episode, row), for exact checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore

LENGTHS = (3, 7, 12, 1, 20, 9)  # env steps T per episode: varied, one shorter than most windows


def make_episode(i: int, t: int, *, pixels: bool = True, state: bool = True, action_dim: int = 2) -> Episode:
    """Episode ``i`` of ``t`` steps; obs/state/action values encode (i, row) so windows are checkable."""
    rows = np.arange(t + 1)
    if pixels:
        obs = np.zeros((t + 1, 4, 5, 3), np.uint8)
        obs[:, 0, 0, 0] = i
        obs[:, 0, 0, 1] = rows
        obs[:, 1, 2, 2] = 7  # a non-symmetric pixel to check the HWC -> CHW transpose
    else:
        obs = np.stack([np.full(t + 1, i), rows, -rows], axis=1).astype(np.float32)
    action = np.stack([i * 1000 + np.arange(t) * 10 + d for d in range(action_dim)], axis=1)
    st = np.stack([np.full(t + 1, float(i)), rows * 0.5, rows**2, np.sin(rows)], axis=1) if state else None
    return Episode.from_steps(
        obs=obs,
        action=action.astype(np.float32),
        reward=np.linspace(0, 1, t),
        terminated=np.arange(t) == t - 1,
        truncated=np.zeros(t, bool),
        state=st,
        seed=100 + i,
    )


def build_store(path: Path, lengths=LENGTHS, **kw) -> tuple[EpisodeStore, list[Episode]]:
    eps = [make_episode(i, t, **kw) for i, t in enumerate(lengths)]
    first = eps[0]
    store = EpisodeStore.create(
        path,
        meta={"env_id": "synthetic"},
        obs_shape=first.obs.shape[1:],
        obs_dtype=first.obs.dtype,
        action_dim=first.action.shape[1],
        state_dim=None if first.state is None else first.state.shape[1],
    )
    for ep in eps:
        store.append_episode(ep)
    return store, eps


@pytest.fixture
def pixel_store(tmp_path):
    store, eps = build_store(tmp_path / "ds")
    store.save_stats()
    store.close()
    return tmp_path / "ds", eps
