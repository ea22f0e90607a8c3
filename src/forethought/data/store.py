"""Crash-safe, append-only episode store on zarr v3.

Layout of a dataset folder (docs/conventions.md, "Episode store")::

    zarr.json                        zarr group
    obs/ [action/] reward/           per-row arrays, chunked along time, zstd compressed (no action/ in
                                     an action-free dataset: meta.json's layout says has_actions false)
    terminated/ truncated/ [state/]
    episode_start/ episode_steps/    the episode index: first row and env steps T of each episode
    episode_seed/                    the seed of each episode (-1 when unknown)
    meta.json                        env, spaces, policy, seeds, package versions, format_version
    stats.json                       normalization statistics (written once, after collection)
    commit.json                      {"num_episodes", "num_rows", "checksums"}: the commit point
    checksums.jsonl                  per committed episode range: chunk files written, row hashes

An episode of ``T`` env steps takes ``T + 1`` rows; the last row holds the final observation and
state, a zero padding action, reward 0 and both flags False.

Crash safety. Appends never modify committed rows, and only ``commit.json`` says what is
committed. ``append_episode(s)`` (1) grows the arrays if needed, (2) writes the new rows beyond the
committed end and the index entries, (3) replaces ``commit.json`` atomically (temp file, fsync,
``os.replace``, fsync of the folder). A kill at any point leaves either the old or the new commit
record, and readers only read rows below it. (Before (3) a line of checksums is written past the
committed end of ``checksums.jsonl``: see :mod:`forethought.data.commit`.) The other writes are
safe to interrupt because:

* zarr 3's ``LocalStore`` writes every key (chunk files and ``zarr.json``) to a temporary file
  and renames it into place, so a chunk or metadata file is always a whole old or a whole new
  version; a chunk shared by committed and new rows holds the same committed rows in both.
  (A killed write can leave a ``*.partial`` temp file behind; ``truncate_to_committed`` removes
  them.) We check at import that LocalStore still works this way.
* Array metadata is rewritten only when capacity grows, geometrically (x2), so a few times per
  dataset rather than per episode; the logical length lives in the commit record, never in
  ``zarr.json``. Capacity beyond the commit is garbage that the next append overwrites.
* A resumed writer calls ``truncate_to_committed()``: it trims the arrays back to the committed
  size (zarr drops chunks past the end) and removes temp files.

Process crashes (SIGKILL, OOM, exceptions) are covered. For power loss the commit record is
fsynced, but chunk data is left to the OS unless ``durable=True`` (``os.sync()`` before each
commit). One writer at a time: mode ``"a"`` takes an advisory ``flock`` on ``writer.lock``.

Damage after the fact (deleted or truncated chunk files, flipped bytes): :mod:`forethought.data.integrity`.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from forethought._atomic import atomic_write_json, remove_stale
from forethought._files import read_json
from forethought.data.commit import INDEX_KEYS, ROW_KEYS, CommitRecord, append_entry, truncate_log
from forethought.data.episode import Episode
from forethought.data.errors import FIX_DATA_JSON, DatasetCorruptError, DatasetError
from forethought.data.integrity import CheckedArray, check_presence, commit_entry
from forethought.data.layout import (FORMAT_VERSION, check_arrays, check_folder, check_zarr_local_store_is_atomic,
                                     create_arrays, dataset_meta)
from forethought.data.normalization import NormStats, Normalizer

__all__ = ["EpisodeStore", "DatasetError", "DatasetCorruptError", "FORMAT_VERSION", "ROW_KEYS", "INDEX_KEYS"]
_MIN_ROW_CAPACITY = 1024


class EpisodeStore:
    """A folder of episodes. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, path: Path, group: Any, mode: str, lock_fd: int | None, check: bool = True) -> None:
        # Use create()/open(); the constructor assumes a validated folder.
        self.path = path
        self._check = check
        self._group = group
        self._mode = mode
        self._lock_fd = lock_fd
        self._meta: dict[str, Any] = read_json(path / "meta.json", what="a dataset's metadata", fix=FIX_DATA_JSON)
        self._arrays = self._open_arrays()
        self.durable = False
        self.refresh()

    def _open_arrays(self) -> dict[str, CheckedArray]:
        # Every chunk is written, even an all-zero one (zarr skips those by default), so a missing
        # chunk file is always damage (forethought.data.integrity).
        cfg = {"write_empty_chunks": True}
        names = [k for k in ROW_KEYS + INDEX_KEYS if k in self._group]
        return {k: CheckedArray(self, k, self._group[k].with_config(cfg)) for k in names}

    # ---- creation and opening ------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        meta: dict[str, Any],
        obs_shape: tuple[int, ...],
        obs_dtype: Any,
        action_dim: int,
        state_dim: int | None,
    ) -> EpisodeStore:
        """Create an empty dataset at ``path`` (which must not exist or be an empty folder).

        ``action_dim=0`` creates an action-free dataset (frames without action labels, e.g. video):
        it has no ``action`` array and takes episodes whose ``action`` is ``(T+1, 0)``.
        """
        import zarr

        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise DatasetError(f"cannot create a dataset at {path}: it exists and is not empty")
        obs_shape, obs_dtype = tuple(int(d) for d in obs_shape), np.dtype(obs_dtype)
        if action_dim < 0 or (state_dim is not None and state_dim < 1):
            raise DatasetError(f"action_dim must be >= 0 (0: no actions) and state_dim >= 1, got {action_dim}, "
                               f"{state_dim}")
        path.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(str(path), mode="w")
        layout = create_arrays(group, obs_shape, obs_dtype, action_dim, state_dim)
        atomic_write_json(path / "meta.json", dataset_meta(meta, layout))
        # The commit record is written last: its presence means creation finished.
        CommitRecord.new().write(path)
        return cls.open(path, mode="a")

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "r", *, check: bool = True) -> EpisodeStore:
        """Open a dataset for reading (``"r"``) or appending (``"a"``, single writer).

        Raises :class:`DatasetCorruptError` if a chunk file the committed rows need is missing or
        the episode index is inconsistent (``check=False`` skips that, for repairing).
        """
        import zarr

        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        meta = check_folder(path)
        lock_fd = None
        if mode == "a":
            lock_fd = os.open(path / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                raise DatasetError(f"{path} is being written by another process") from None
        group = zarr.open_group(str(path), mode="r+" if mode == "a" else "r")
        check_arrays(path, group, meta)
        try:
            store = cls(path, group, mode, lock_fd, check)
            if check:
                check_presence(store)
        except DatasetCorruptError:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return store

    def close(self) -> None:
        """Release the writer lock (reading stays possible)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the fd drops the flock
            self._lock_fd = None
            self._mode = "r"

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Re-read the commit record and the episode index (sees a concurrent writer's commits)."""
        if self._mode == "r":  # a concurrent writer may have grown the arrays since we opened
            self._arrays = self._open_arrays()
        self._commit = CommitRecord.read(self.path)
        self._num_episodes, self._num_rows = self._commit.num_episodes, self._commit.num_rows
        self._starts, self._steps, self._seeds = (self._read_index(k) for k in INDEX_KEYS)

    def _read_index(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self._arrays[name][: self._num_episodes], dtype=np.int64)
        except DatasetCorruptError:
            if self._check:
                raise
            return np.zeros(self._num_episodes, np.int64)  # opened to repair: the checks name the file

    # ---- properties ----------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    @property
    def layout(self) -> dict[str, Any]:
        return self._meta["layout"]

    @property
    def commit_record(self) -> CommitRecord:
        return self._commit

    def _recommit(self, record: CommitRecord) -> None:
        """Replace ``commit.json`` with ``record`` (appends, repairs, rehashes)."""
        record.write(self.path)
        self._commit = record

    @property
    def array_names(self) -> tuple[str, ...]:
        return tuple(self._arrays)

    @property
    def has_state(self) -> bool:
        return "state" in self._arrays

    @property
    def has_actions(self) -> bool:
        """False for an action-free dataset (collected with ``--drop-actions`` or imported from video)."""
        return "action" in self._arrays

    @property
    def num_episodes(self) -> int:
        return self._num_episodes

    def __len__(self) -> int:
        return self._num_episodes

    @property
    def num_rows(self) -> int:
        """Committed rows (``sum(T + 1)`` over episodes)."""
        return self._num_rows

    @property
    def num_steps(self) -> int:
        """Committed env steps (``sum(T)``; rows minus one padding row per episode)."""
        return self._num_rows - self._num_episodes

    @property
    def episode_lengths(self) -> np.ndarray:
        """``(num_episodes,)`` env steps ``T`` of each episode (each takes ``T + 1`` rows)."""
        return self._steps.copy()

    @property
    def episode_starts(self) -> np.ndarray:
        """``(num_episodes,)`` first row of each episode."""
        return self._starts.copy()

    @property
    def episode_seeds(self) -> np.ndarray:
        return self._seeds.copy()

    def array(self, key: str) -> CheckedArray:
        """The zarr array behind ``key`` (reads name a damaged chunk file); only rows below
        ``num_rows`` are committed."""
        if key not in self._arrays:
            raise KeyError(f"dataset {self.path} has no array {key!r}; it has {sorted(self._arrays)}")
        return self._arrays[key]

    # ---- reading -------------------------------------------------------------------------
    def episode(self, i: int) -> Episode:
        """Random access to committed episode ``i`` (negative indices count from the end)."""
        n = self._num_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range for a dataset of {n} episodes")
        i %= n
        start, t = int(self._starts[i]), int(self._steps[i])
        rows = slice(start, start + t + 1)
        a = self._arrays
        return Episode(
            obs=a["obs"][rows],
            action=a["action"][rows] if self.has_actions else np.zeros((t + 1, 0), np.float32),
            reward=a["reward"][rows],
            terminated=a["terminated"][rows],
            truncated=a["truncated"][rows],
            state=a["state"][rows] if self.has_state else None,
            seed=None if self._seeds[i] < 0 else int(self._seeds[i]),
        )

    # ---- writing -------------------------------------------------------------------------
    def _ensure_capacity(self, keys: tuple[str, ...], needed: int, minimum: int) -> None:
        for k in keys:
            arr = self._arrays.get(k)
            if arr is None or arr.shape[0] >= needed:
                continue
            # Geometric growth: zarr.json is rewritten O(log n) times, not once per episode.
            new = max(needed, 2 * arr.shape[0], minimum)
            arr.resize((new, *arr.shape[1:]))

    def append_episode(self, ep: Episode) -> int:
        """Append and commit one episode; returns its index. Committed data is never modified."""
        return self.append_episodes([ep])[0]

    def append_episodes(self, episodes: Sequence[Episode]) -> list[int]:
        """Append several episodes with one write per array and one commit; returns their indices.

        All or nothing: every episode is validated before anything is written, and a crash
        before the commit leaves none of them visible. Batching amortizes zarr's per-write
        overhead (several ms per array) over many episodes.
        """
        if self._mode != "a":
            raise DatasetError(f"{self.path} is open read-only; open it with mode='a' to append")
        if not episodes:
            return []
        for j, ep in enumerate(episodes):
            where = f"episode {self._num_episodes + j} (to be appended to {self.path})"
            ep.check_fits(self.layout, self.has_state, where)
        i0, r0 = self._num_episodes, self._num_rows
        steps = np.array([ep.num_steps for ep in episodes], dtype=np.int64)
        starts = r0 + np.concatenate([[0], np.cumsum(steps + 1)[:-1]]).astype(np.int64)
        seeds = np.array([-1 if ep.seed is None else ep.seed for ep in episodes], dtype=np.int64)
        i1, r1 = i0 + len(episodes), r0 + int((steps + 1).sum())
        self._ensure_capacity(ROW_KEYS, r1, _MIN_ROW_CAPACITY)
        self._ensure_capacity(INDEX_KEYS, i1, 256)
        a = self._arrays
        cat = lambda name, dtype: np.concatenate([np.asarray(getattr(e, name), dtype) for e in episodes])  # noqa: E731
        a["obs"][r0:r1] = cat("obs", a["obs"].dtype)
        if self.has_actions:
            a["action"][r0:r1] = cat("action", np.float32)
        a["reward"][r0:r1] = cat("reward", np.float64)
        a["terminated"][r0:r1] = cat("terminated", np.bool_)
        a["truncated"][r0:r1] = cat("truncated", np.bool_)
        if self.has_state:
            a["state"][r0:r1] = cat("state", np.float64)
        a["episode_start"][i0:i1] = starts
        a["episode_steps"][i0:i1] = steps
        a["episode_seed"][i0:i1] = seeds
        entry = commit_entry(self, i0, r0, list(episodes))
        record = append_entry(self.path, CommitRecord(i1, r1, self._commit.log), entry, durable=self.durable)
        if self.durable:
            os.sync()
        self._recommit(record)
        self._num_episodes, self._num_rows = i1, r1
        self._starts = np.concatenate([self._starts, starts])
        self._steps = np.concatenate([self._steps, steps])
        self._seeds = np.concatenate([self._seeds, seeds])
        return list(range(i0, i1))

    def truncate_to_committed(self) -> None:
        """Trim arrays to the committed size and delete temp files left by a killed writer."""
        if self._mode != "a":
            raise DatasetError(f"{self.path} is open read-only; open it with mode='a' to truncate")
        self.refresh()
        for p in self.path.rglob("*.partial"):  # zarr's own temp files
            p.unlink(missing_ok=True)
        remove_stale(self.path)  # ours (commit record, stats)
        truncate_log(self.path, self._commit)
        for k, arr in self._arrays.items():
            size = self._num_episodes if k in INDEX_KEYS else self._num_rows
            if arr.shape[0] != size:
                arr.resize((size, *arr.shape[1:]))

    # ---- statistics ----------------------------------------------------------------------
    def padding_mask(self) -> np.ndarray:
        """``(num_rows,)`` bool, True on the padding row (the last row) of every episode."""
        mask = np.zeros(self._num_rows, dtype=bool)
        mask[self._starts + self._steps] = True
        return mask

    def row_mask(self, episodes: Sequence[int]) -> np.ndarray:
        """``(num_rows,)`` bool, True on every row of the given episodes."""
        change = np.zeros(self._num_rows + 1, dtype=np.int64)
        ids = np.asarray(episodes, dtype=np.int64)
        np.add.at(change, self._starts[ids], 1)
        np.add.at(change, self._starts[ids] + self._steps[ids] + 1, -1)
        return np.cumsum(change[:-1]) > 0

    def compute_stats(self, episodes: Sequence[int] | None = None) -> Normalizer:
        """Fit normalization statistics on all committed data (or on ``episodes`` only).

        Actions exclude the padding rows (their zeros are not actions); states use every row,
        the final state of an episode being a real state. An action-free dataset has no action
        statistics (``Normalizer.action`` is None).
        """
        if self._num_episodes == 0 or (episodes is not None and len(episodes) == 0):
            raise DatasetError(f"{self.path} has no episodes to compute statistics from")
        n = self._num_rows
        rows = np.ones(n, bool) if episodes is None else self.row_mask(episodes)
        state = NormStats.fit(np.asarray(self._arrays["state"][:n])[rows]) if self.has_state else None
        if not self.has_actions:
            return Normalizer(action=None, state=state)
        action = np.asarray(self._arrays["action"][:n])[rows & ~self.padding_mask()]
        return Normalizer(action=NormStats.fit(action), state=state)

    def save_stats(self, normalizer: Normalizer | None = None) -> Normalizer:
        """Write ``stats.json`` (computing the statistics if none are given) and return them."""
        normalizer = normalizer if normalizer is not None else self.compute_stats()
        atomic_write_json(self.path / "stats.json", normalizer.to_dict())
        return normalizer

    @property
    def stats(self) -> Normalizer | None:
        """The stored statistics (never refitted here), or None before ``save_stats``."""
        p = self.path / "stats.json"
        return Normalizer.from_dict(read_json(p, what="normalization statistics", fix=FIX_DATA_JSON)) if p.is_file() else None

    # ---- summary -------------------------------------------------------------------------
    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def summary(self) -> dict[str, Any]:
        lengths = self._steps
        return {
            "path": str(self.path),
            "env_id": self._meta.get("env_id"),
            "episodes": self._num_episodes,
            "rows": self._num_rows,
            "env_steps": self.num_steps,
            "mean_episode_steps": float(lengths.mean()) if len(lengths) else 0.0,
            "bytes_on_disk": self.bytes_on_disk(),
            "has_state": self.has_state,
            "has_actions": self.has_actions,
            "has_stats": (self.path / "stats.json").is_file(),
        }

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, episodes={self._num_episodes}, rows={self._num_rows})"


check_zarr_local_store_is_atomic()
