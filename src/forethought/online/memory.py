"""The online agent's memory: every episode it lived, in a crash-safe episode store, with a record each.

``<folder>/memory/`` is an :class:`~forethought.data.store.EpisodeStore` (zarr, append-only, a
commit record written last: see :mod:`forethought.data.store`), and ``<folder>/episodes.jsonl``
holds one JSON record per episode (outcome, surprise, model version, timings).

An episode is *finished* when the store has committed it. Its record line is written (and
fsynced) *before* that commit, so a kill between the two leaves a record without an episode, never
an episode without a record; :meth:`Memory.open` drops such trailing records (and a line cut short
by the kill), and the run continues from the last finished episode.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from forethought._atomic import atomic_write_bytes
from forethought._files import read_json_lines
from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore
from forethought.surprise.clips import Clip, store_clip

STORE = "memory"
RECORDS = "episodes.jsonl"


def read_jsonl(path: Path, keep: int | None = None) -> list[dict[str, Any]]:
    """The complete JSON lines of ``path`` (a last line cut short by a kill is dropped), at most ``keep``."""
    if not path.is_file():
        return []
    fix = "The log is damaged: restore it from a copy, or start a new run folder"
    records = read_json_lines(path, fix=fix, torn_last_line_ok=True)
    return records if keep is None else records[:keep]


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it (the line is on disk before anything that depends on it)."""
    with open(path, "ab") as f:
        f.write(json.dumps(record, sort_keys=True).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace ``path`` atomically by exactly ``records``."""
    atomic_write_bytes(path, b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records))


class Memory:
    """Episodes and their records in ``folder`` (module docstring). Create with :meth:`create`,
    reopen with :meth:`open`; one writer at a time (the store's lock)."""

    def __init__(self, folder: Path, store: EpisodeStore, records: list[dict[str, Any]]) -> None:
        self.folder, self.store, self.records = folder, store, records

    @classmethod
    def create(cls, folder: str | os.PathLike[str], *, meta: dict[str, Any], obs_shape: tuple[int, ...],
               obs_dtype: Any, action_dim: int, state_dim: int | None) -> Memory:
        folder = Path(folder)
        store = EpisodeStore.create(folder / STORE, meta=meta, obs_shape=obs_shape, obs_dtype=obs_dtype,
                                    action_dim=action_dim, state_dim=state_dim)
        rewrite_jsonl(folder / RECORDS, [])
        return cls(folder, store, [])

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Memory:
        """Reopen after a stop or a kill: uncommitted rows trimmed, records cut to the finished episodes."""
        folder = Path(folder)
        store = EpisodeStore.open(folder / STORE, mode="a")
        store.truncate_to_committed()
        path = folder / RECORDS
        records = read_jsonl(path)
        n = store.num_episodes
        if len(records) < n:
            store.close()
            raise ValueError(f"{path}: {len(records)} episode records for {n} episodes in {folder / STORE}; records "
                             "are written before episodes, so the log was damaged or replaced. Restore it, or start "
                             "a new run folder")
        if len(records) != n or path.read_bytes().count(b"\n") != n:
            rewrite_jsonl(path, records[:n])  # the episode being recorded when the run stopped never finished
        return cls(folder, store, records[:n])

    @property
    def num_episodes(self) -> int:
        return self.store.num_episodes

    def append(self, episode: Episode, record: dict[str, Any]) -> int:
        """Record, then commit ``episode``; returns its index (``record["episode"]`` is set to it)."""
        index = self.store.num_episodes
        record = {**record, "episode": index}
        append_jsonl(self.folder / RECORDS, record)
        self.store.append_episode(episode)
        self.records.append(record)
        return index

    def clips(self, episodes: list[int], frameskip: int) -> list[Clip]:
        """Episodes at the model's rate (frames every ``frameskip`` steps; model actions between them)."""
        return [store_clip(self.store, i, frameskip) for i in episodes]

    def close(self) -> None:
        self.store.close()


def episode_from_steps(obs: list[np.ndarray], actions: list[np.ndarray], rewards: list[float],
                       terminated: list[bool], truncated: list[bool], states: list[np.ndarray] | None,
                       seed: int | None) -> Episode:
    """An :class:`Episode` from what an agent saw: ``T + 1`` observations and ``T`` steps."""
    return Episode.from_steps(
        obs=np.stack(obs), action=np.stack(actions).astype(np.float32), reward=np.asarray(rewards, np.float64),
        terminated=np.asarray(terminated, bool), truncated=np.asarray(truncated, bool),
        state=None if states is None else np.stack(states).astype(np.float64), seed=seed)
