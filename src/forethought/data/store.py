"""Crash-safe, append-only episode store on zarr v3.

Layout of a dataset folder (docs/conventions.md, "Episode store")::

    zarr.json                        zarr group
    obs/ action/ reward/             per-row arrays, chunked along time, zstd compressed
    terminated/ truncated/ [state/]
    episode_start/ episode_steps/    the episode index: first row and env steps T of each episode
    episode_seed/                    the seed of each episode (-1 when unknown)
    meta.json                        env, spaces, policy, seeds, package versions, format_version
    stats.json                       normalization statistics (written once, after collection)
    commit.json                      {"num_episodes", "num_rows"}: the commit point

An episode of ``T`` env steps takes ``T + 1`` rows; the last row holds the final observation and
state, a zero padding action, reward 0 and both flags False.

Crash safety. Appends never modify committed rows, and only ``commit.json`` says what is
committed. ``append_episode(s)`` (1) grows the arrays if needed, (2) writes the new rows beyond the
committed end and the index entries, (3) replaces ``commit.json`` atomically (temp file, fsync,
``os.replace``, fsync of the folder). A kill at any point leaves either the old or the new commit
record, and readers only read rows below it. The other writes are safe to interrupt because:

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
"""

from __future__ import annotations

import fcntl
import os
import time
import warnings
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from forethought._atomic import atomic_write_json, remove_stale
from forethought._files import read_json
from forethought.data.episode import Episode
from forethought.data.normalization import NormStats, Normalizer

FORMAT_VERSION = 1
ROW_KEYS = ("obs", "action", "state", "reward", "terminated", "truncated")
INDEX_KEYS = ("episode_start", "episode_steps", "episode_seed")
_REQUIRED_FILES = ("meta.json", "commit.json", "zarr.json")
_OBS_CHUNK_BYTES = 4 << 20  # obs chunks of at most ~4 MB raw: 256 rows of 64x64x3 pixels
_MIN_ROW_CAPACITY = 1024
FIX_DATA_JSON = "The dataset was edited or damaged; restore it from a copy, or collect it again"


class DatasetError(ValueError):
    """A folder that is not a (readable) Forethought dataset, or bad data for one."""


def _check_zarr_local_store_is_atomic() -> None:
    from zarr.storage import _local

    if not hasattr(_local, "_atomic_write"):
        warnings.warn(
            "zarr's LocalStore no longer writes through _atomic_write; the episode store's "
            "crash-safety argument (see forethought.data.store) must be re-checked for this zarr.",
            stacklevel=2,
        )


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape a dataset (read from metadata: imports nothing)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("forethought", "numpy", "zarr", "gymnasium", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _obs_chunk_rows(obs_shape: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(obs_shape)) * dtype.itemsize)
    return int(np.clip(_OBS_CHUNK_BYTES // row_bytes, 16, 256))


class EpisodeStore:
    """A folder of episodes. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, path: Path, group: Any, mode: str, lock_fd: int | None) -> None:
        # Use create()/open(); the constructor assumes a validated folder.
        self.path = path
        self._group = group
        self._mode = mode
        self._lock_fd = lock_fd
        self._meta: dict[str, Any] = read_json(path / "meta.json", what="a dataset's metadata", fix=FIX_DATA_JSON)
        self._arrays = {k: group[k] for k in ROW_KEYS + INDEX_KEYS if k in group}
        self.durable = False
        self.refresh()

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
        """Create an empty dataset at ``path`` (which must not exist or be an empty folder)."""
        import zarr
        from zarr.codecs import BloscCodec, ZstdCodec

        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise DatasetError(f"cannot create a dataset at {path}: it exists and is not empty")
        obs_shape, obs_dtype = tuple(int(d) for d in obs_shape), np.dtype(obs_dtype)
        if action_dim < 1 or (state_dim is not None and state_dim < 1):
            raise DatasetError(f"action_dim and state_dim must be >= 1, got {action_dim}, {state_dim}")
        path.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(str(path), mode="w")
        obs_rows = _obs_chunk_rows(obs_shape, obs_dtype)
        specs: dict[str, tuple[tuple[int, ...], Any, int]] = {
            "obs": (obs_shape, obs_dtype, obs_rows),
            "action": ((int(action_dim),), np.float32, 4096),
            "reward": ((), np.float64, 4096),
            "terminated": ((), np.bool_, 4096),
            "truncated": ((), np.bool_, 4096),
            "episode_start": ((), np.int64, 4096),
            "episode_steps": ((), np.int64, 4096),
            "episode_seed": ((), np.int64, 4096),
        }
        if state_dim is not None:
            # float64: stored states are exactly what set_state() gets back at evaluation.
            specs["state"] = ((int(state_dim),), np.float64, 4096)
        for name, (shape, dtype, rows) in specs.items():
            # Pixels: plain zstd (bench/store.py: smaller and faster than blosc+bitshuffle on
            # uint8 frames). Floats: blosc byte-shuffle+zstd, which groups exponent bytes.
            codec = (
                ZstdCodec(level=3)
                if name == "obs" and obs_dtype == np.uint8
                else BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
            )
            group.create_array(
                name,
                shape=(0, *shape),
                chunks=(rows, *shape),
                dtype=dtype,
                compressors=codec,
                fill_value=0,
            )
        full_meta = dict(meta)
        full_meta.update(
            format_version=FORMAT_VERSION,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            versions=package_versions(),
            layout={
                "obs_shape": list(obs_shape),
                "obs_dtype": obs_dtype.str,
                "action_dim": int(action_dim),
                "state_dim": None if state_dim is None else int(state_dim),
                "obs_chunk_rows": obs_rows,
            },
        )
        atomic_write_json(path / "meta.json", full_meta)
        # The commit record is written last: its presence means creation finished.
        atomic_write_json(path / "commit.json", {"num_episodes": 0, "num_rows": 0})
        return cls.open(path, mode="a")

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "r") -> EpisodeStore:
        """Open a dataset for reading (``"r"``) or appending (``"a"``, single writer)."""
        import zarr

        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        if not path.is_dir():
            raise DatasetError(f"{path} is not a dataset: the folder does not exist")
        missing = [f for f in _REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            hint = (
                " (an interrupted create(); delete the folder and collect again)"
                if (path / "meta.json").is_file() and missing == ["commit.json"]
                else ""
            )
            raise DatasetError(
                f"{path} is not a Forethought dataset: missing {', '.join(missing)}{hint}"
            )
        meta = read_json(path / "meta.json", what="a dataset's metadata", fix=FIX_DATA_JSON)
        version = meta.get("format_version")
        if not isinstance(version, int):
            raise DatasetError(f"{path}/meta.json has no integer format_version")
        if version > FORMAT_VERSION:
            raise DatasetError(
                f"{path} has dataset format_version {version}, newer than this forethought "
                f"understands ({FORMAT_VERSION}); upgrade forethought to read it"
            )
        lock_fd = None
        if mode == "a":
            lock_fd = os.open(path / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                raise DatasetError(f"{path} is being written by another process") from None
        group = zarr.open_group(str(path), mode="r+" if mode == "a" else "r")
        missing_arrays = [k for k in ("obs", "action", "reward") + INDEX_KEYS if k not in group]
        if missing_arrays:
            raise DatasetError(f"{path} is not a Forethought dataset: missing arrays {missing_arrays}")
        return cls(path, group, mode, lock_fd)

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
            self._arrays = {k: self._group[k] for k in ROW_KEYS + INDEX_KEYS if k in self._group}
        commit = read_json(self.path / "commit.json", what="a dataset's commit record", fix=FIX_DATA_JSON)
        self._num_episodes = int(commit["num_episodes"])
        self._num_rows = int(commit["num_rows"])
        n = self._num_episodes
        self._starts = np.asarray(self._arrays["episode_start"][:n], dtype=np.int64)
        self._steps = np.asarray(self._arrays["episode_steps"][:n], dtype=np.int64)
        self._seeds = np.asarray(self._arrays["episode_seed"][:n], dtype=np.int64)

    # ---- properties ----------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    @property
    def layout(self) -> dict[str, Any]:
        return self._meta["layout"]

    @property
    def has_state(self) -> bool:
        return "state" in self._arrays

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

    def array(self, key: str) -> Any:
        """The zarr array behind ``key``; only rows below ``num_rows`` are committed."""
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
            action=a["action"][rows],
            reward=a["reward"][rows],
            terminated=a["terminated"][rows],
            truncated=a["truncated"][rows],
            state=a["state"][rows] if self.has_state else None,
            seed=None if self._seeds[i] < 0 else int(self._seeds[i]),
        )

    # ---- writing -------------------------------------------------------------------------
    def _validate(self, ep: Episode, idx: int) -> None:
        lay = self.layout
        where = f"episode {idx} (to be appended to {self.path})"
        if tuple(ep.obs.shape[1:]) != tuple(lay["obs_shape"]):
            raise DatasetError(
                f"{where}: obs rows have shape {tuple(ep.obs.shape[1:])}, the dataset stores "
                f"{tuple(lay['obs_shape'])}"
            )
        if ep.obs.dtype != np.dtype(lay["obs_dtype"]):
            raise DatasetError(
                f"{where}: obs dtype is {ep.obs.dtype}, the dataset stores {np.dtype(lay['obs_dtype'])}"
            )
        if ep.action.shape[1] != lay["action_dim"]:
            raise DatasetError(
                f"{where}: action has dimension {ep.action.shape[1]}, the dataset stores {lay['action_dim']}"
            )
        if self.has_state != (ep.state is not None):
            raise DatasetError(
                f"{where}: the dataset {'stores' if self.has_state else 'has no'} state but the "
                f"episode {'has none' if ep.state is None else 'has one'}"
            )
        if ep.state is not None and ep.state.shape[1] != lay["state_dim"]:
            raise DatasetError(
                f"{where}: state has dimension {ep.state.shape[1]}, the dataset stores {lay['state_dim']}"
            )
        bad = ep.first_non_finite()
        if bad is not None:
            raise DatasetError(f"{where}: {bad[0]} contains NaN or inf at step {bad[1]}; refused")

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
            self._validate(ep, self._num_episodes + j)
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
        a["action"][r0:r1] = cat("action", np.float32)
        a["reward"][r0:r1] = cat("reward", np.float64)
        a["terminated"][r0:r1] = cat("terminated", np.bool_)
        a["truncated"][r0:r1] = cat("truncated", np.bool_)
        if self.has_state:
            a["state"][r0:r1] = cat("state", np.float64)
        a["episode_start"][i0:i1] = starts
        a["episode_steps"][i0:i1] = steps
        a["episode_seed"][i0:i1] = seeds
        if self.durable:
            os.sync()
        atomic_write_json(self.path / "commit.json", {"num_episodes": i1, "num_rows": r1})
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

    def compute_stats(self) -> Normalizer:
        """Fit normalization statistics on all committed data.

        Actions exclude the padding rows (their zeros are not actions); states use every row,
        the final state of an episode being a real state.
        """
        if self._num_episodes == 0:
            raise DatasetError(f"{self.path} has no episodes to compute statistics from")
        n = self._num_rows
        action = np.asarray(self._arrays["action"][:n])[~self.padding_mask()]
        state = NormStats.fit(np.asarray(self._arrays["state"][:n])) if self.has_state else None
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
        if not p.is_file():
            return None
        return Normalizer.from_dict(read_json(p, what="normalization statistics", fix=FIX_DATA_JSON))

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
            "has_stats": (self.path / "stats.json").is_file(),
        }

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, episodes={self._num_episodes}, rows={self._num_rows})"


_check_zarr_local_store_is_atomic()
