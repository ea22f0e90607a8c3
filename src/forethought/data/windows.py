"""Fixed-length training windows over an episode store, as a torch ``Dataset``.

With ``history=h``, ``horizon=H`` and ``frameskip=k`` a window has ``T = h + H`` frames taken
every ``k`` rows from a start row ``s`` with ``s + (T-1)k <= last row`` of one episode, and
``T - 1`` model actions, ``action[j] = concat(a[s+jk], ..., a[s+jk+k-1])`` taking frame ``j`` to
frame ``j+1`` (docs/conventions.md). Windows never cross episodes, so they never touch another
episode's rows, and never read the padding action of the last row (the last action read is row
``s + (T-1)k - 1 <= last row - 1``).

DataLoader workers: the dataset holds only a path and numpy index arrays; each process opens
the zarr arrays lazily on first access, so it pickles cleanly for ``num_workers > 0`` under
both fork and spawn. Actions, states and vector observations are always held in RAM (small);
``in_memory=True`` also loads pixel observations (fast path for datasets that fit). If those pixels
would take more than half of the memory the machine has available, the dataset streams them
instead, with a warning: an out-of-memory kill loses a run's progress since its last checkpoint
(4,000 PushT episodes of 64x64 frames are 5 GB, per training process).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forethought._hardware import available_memory_bytes
from forethought.data.errors import action_free_error
from forethought.data.store import EpisodeStore

_ALL_KEYS = ("obs", "action", "state")
RAM_SHARE = 0.5  # in_memory loads pixels only if they take at most this share of the available memory



class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``T = history + horizon`` frames from a dataset.

    Items are dicts of tensors (raw, unnormalized):
        ``obs``: ``(T, C, H, W)`` uint8 for pixel datasets, ``(T, S_obs)`` float32 for vector obs.
        ``action``: ``(T-1, k*A)`` float32.
        ``state``: ``(T, S)`` float32 (when requested and stored).

    Args:
        store_or_path: an :class:`EpisodeStore` or a dataset folder; only committed episodes
            (at construction time) are used.
        history, horizon: ``h >= 1`` context frames and ``H >= 1`` predicted frames.
        frameskip: ``k >= 1`` env steps per model step.
        episodes: episode ids to draw windows from (e.g. a train split); default all.
        keys: subset of ``("obs", "action", "state")``; default all that the dataset has (an
            action-free dataset has no ``action``: asking for it raises a ValueError that says what to do).
        in_memory: also load pixel observations into RAM (low-dim arrays always are).
    """

    def __init__(
        self,
        store_or_path: EpisodeStore | str | os.PathLike[str],
        history: int,
        horizon: int,
        frameskip: int = 1,
        episodes: Sequence[int] | np.ndarray | None = None,
        keys: Sequence[str] | None = None,
        in_memory: bool = False,
    ) -> None:
        for name, value in (("history", history), ("horizon", horizon), ("frameskip", frameskip)):
            if int(value) != value or value < 1:
                raise ValueError(f"WindowDataset: {name} must be an integer >= 1, got {value!r}")
        store = store_or_path if isinstance(store_or_path, EpisodeStore) else EpisodeStore.open(store_or_path)
        self.path = Path(store.path)
        self.history, self.horizon, self.frameskip = int(history), int(horizon), int(frameskip)
        self.window = self.history + self.horizon
        self.span = (self.window - 1) * self.frameskip  # rows from first to last frame

        if keys is None:
            keys = tuple(k for k in _ALL_KEYS if (k != "state" or store.has_state)
                         and (k != "action" or store.has_actions))
        unknown = set(keys) - set(_ALL_KEYS)
        if unknown:
            raise ValueError(f"WindowDataset: unknown keys {sorted(unknown)}; choose from {_ALL_KEYS}")
        if "state" in keys and not store.has_state:
            raise ValueError(f"WindowDataset: key 'state' requested but {self.path} stores no state")
        if "action" in keys and not store.has_actions:
            raise action_free_error(self.path, "this needs action labels")
        self.keys = tuple(keys)
        self.pixels = len(store.layout["obs_shape"]) == 3
        self.action_dim = int(store.layout["action_dim"]) if store.has_actions else 0

        n = store.num_episodes
        ids = np.arange(n) if episodes is None else np.asarray(episodes, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise IndexError(f"WindowDataset: episode ids must be in [0, {n}), got {ids.min()}..{ids.max()}")
        self.episode_ids = ids
        self._steps = store.episode_lengths[ids]
        self._starts = store.episode_starts[ids]
        counts = np.maximum(self._steps - self.span + 1, 0)
        self._cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if self._cum[-1] == 0:
            longest = int(self._steps.max()) if ids.size else 0
            raise ValueError(
                f"WindowDataset: no episode of {self.path} is long enough for history={history}, "
                f"horizon={horizon}, frameskip={frameskip} (needs >= {self.span} env steps, the "
                f"longest selected has {longest}); use a shorter window or smaller frameskip"
            )
        self.in_memory = bool(in_memory) and self._pixels_fit(store)
        # Low-dimensional arrays (actions, states, vector obs) are tiny next to pixels, and each
        # lazy zarr read costs ~0.4 ms of fixed overhead: they always live in RAM. Only pixel obs
        # are read lazily, unless in_memory=True.
        self._memory_keys = tuple(k for k in self.keys if self.in_memory or k != "obs" or not self.pixels)
        self._memory = self._load_rows(store, self._memory_keys)
        self._lazy: dict[str, Any] | None = None
        self._pid: int | None = None

    def _pixels_fit(self, store: EpisodeStore) -> bool:
        """Whether the selected episodes' pixels fit in RAM_SHARE of the available memory (else warn)."""
        if not self.pixels or "obs" not in self.keys:
            return True
        need = int((self._steps + 1).sum()) * int(np.prod(store.layout["obs_shape"])) * store.array("obs").dtype.itemsize
        free = available_memory_bytes()
        if free is None or need <= RAM_SHARE * free:
            return True
        warnings.warn(f"{self.path}: its pixels need {need / 2**30:.1f} GiB in RAM but only {free / 2**30:.1f} GiB "
                      "is available; streaming them from disk instead (as --no-in-memory does)", stacklevel=3)
        return False

    def _load_rows(self, store: EpisodeStore, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The selected episodes' rows of ``keys``, back to back in selection order.

        ``self._mem_starts[j]`` is where selected episode ``j`` starts in these arrays.
        """
        rows = self._steps + 1
        self._mem_starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        contiguous = np.array_equal(self._starts, self._mem_starts)  # all episodes, in order
        out: dict[str, np.ndarray] = {}
        for key in keys:
            src = store.array(key)
            if contiguous:  # one read
                out[key] = np.asarray(src[: int(rows.sum())])
                continue
            # Filled in place, episode by episode: concatenating a list of per-episode arrays held
            # both at once, and the heap kept that peak (8.4 GB resident for 5 GB of PushT pixels).
            dst = np.empty((int(rows.sum()), *src.shape[1:]), dtype=src.dtype)
            for s, r, m in zip(self._starts, rows, self._mem_starts):
                dst[m : m + r] = src[s : s + r]
            out[key] = dst
        return out

    def _rows(self, key: str, j: int, begin: int, end: int) -> np.ndarray:
        """Rows ``[begin, end)`` of selected episode ``j``, relative to the episode's first row."""
        if key in self._memory:
            base = int(self._mem_starts[j])
            return self._memory[key][base + begin : base + end]
        if self._lazy is None or self._pid != os.getpid():
            store = EpisodeStore.open(self.path)  # per process: zarr handles are not shared
            self._lazy = {k: store.array(k) for k in self.keys if k not in self._memory}
            self._pid = os.getpid()
        base = int(self._starts[j])
        return np.asarray(self._lazy[key][base + begin : base + end])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lazy"], state["_pid"] = None, None  # zarr handles are reopened in each worker
        return state

    def __len__(self) -> int:
        return int(self._cum[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """``(episode id, start step within the episode)`` of window ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        j = int(np.searchsorted(self._cum, index, side="right")) - 1
        return int(self.episode_ids[j]), int(index - self._cum[j])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        j = int(np.searchsorted(self._cum, index, side="right")) - 1
        s0, k, out = int(index - self._cum[j]), self.frameskip, {}
        if "obs" in self.keys:
            obs = self._rows("obs", j, s0, s0 + self.span + 1)[::k]  # (T, ...)
            if self.pixels:
                out["obs"] = torch.from_numpy(np.ascontiguousarray(obs.transpose(0, 3, 1, 2)))
            else:
                out["obs"] = torch.from_numpy(obs.astype(np.float32))
        if "action" in self.keys:
            act = self._rows("action", j, s0, s0 + self.span).astype(np.float32)
            # (T-1)*k consecutive env actions -> (T-1, k*A): row j = a[s+jk], ..., a[s+jk+k-1]
            out["action"] = torch.from_numpy(act.reshape(self.window - 1, k * self.action_dim))
        if "state" in self.keys:
            state = self._rows("state", j, s0, s0 + self.span + 1)[::k]
            out["state"] = torch.from_numpy(state.astype(np.float32))
        return out


def split_episodes(
    num_episodes: int, val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Split episode ids into sorted ``(train_ids, val_ids)`` by a seeded permutation.

    Splitting by episode (not by window) keeps validation windows out of training episodes.
    """
    if num_episodes < 1:
        raise ValueError(f"split_episodes: num_episodes must be >= 1, got {num_episodes}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"split_episodes: val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(num_episodes * val_fraction))
    if val_fraction > 0 and n_val == 0 and num_episodes >= 2:
        n_val = 1  # a requested validation set is never silently empty
    if n_val >= num_episodes:
        raise ValueError(
            f"split_episodes: val_fraction={val_fraction} leaves no training episodes out of {num_episodes}"
        )
    perm = np.random.default_rng(seed).permutation(num_episodes)
    return sorted(int(i) for i in perm[n_val:]), sorted(int(i) for i in perm[:n_val])
