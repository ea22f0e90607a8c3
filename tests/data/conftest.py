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


# ---- damaged datasets (integrity, repair and non-finite tests) ----------------------------------
COLLECT = dict(episodes=12, steps=10, seed=7)  # episode lengths 10,10,10,10,3,4,...,10: 104 rows
OBS_CHUNK_ROWS = 16  # obs chunks of 16 rows (8x8x3 pixels), so damage hits a few episodes, not all


def collect_command(path: Path) -> list[str]:
    """The `forethought collect` arguments that made (and re-make) the tiny dataset at ``path``."""
    from .tiny_env import ENV_ID

    return ["collect", "--env", ENV_ID, "--out", str(path), "--episodes", str(COLLECT["episodes"]),
            "--steps", str(COLLECT["steps"]), "--seed", str(COLLECT["seed"]), "--quiet"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """A deterministic dataset collected from the tiny env (do not modify: copy it with ``copy_of``)."""
    import forethought.data.layout as layout
    from forethought.data.collect import collect

    from .tiny_env import ENV_ID

    path = tmp_path_factory.mktemp("pristine") / "ds"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layout, "_OBS_CHUNK_BYTES", 8 * 8 * 3 * OBS_CHUNK_ROWS)
        collect(ENV_ID, path, progress=False, **COLLECT)
    return path


def copy_of(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def damage_file(path: Path, kind: str) -> None:
    """Damage one file: ``missing`` (deleted), ``truncated`` (first half kept), ``flipped`` (a byte inverted)."""
    if kind == "missing":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if kind == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


def strip_checksums(path: Path) -> None:
    """Make ``path`` look like a dataset written before checksums (no log, no pointer to one)."""
    import json

    commit = json.loads((path / "commit.json").read_text())
    commit.pop("checksums")
    (path / "commit.json").write_text(json.dumps(commit))
    for log in path.glob("checksums*.jsonl"):
        log.unlink()
