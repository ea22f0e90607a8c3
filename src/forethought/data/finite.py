"""Finding NaN and inf values in a dataset before training on it.

``append_episode`` refuses non-finite values, but a dataset edited by hand, written by other code
or damaged in a way its checksums cannot see may hold some; training on them stops at a NaN loss
with nothing pointing at the data. :func:`find_non_finite` reads the float arrays one chunk at a
time and reports, per array, how many values are bad and where the first one is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from forethought.data.errors import DatasetError, episode_ranges

if TYPE_CHECKING:
    from collections.abc import Sequence

    from forethought.data.store import EpisodeStore


@dataclass
class NonFinite:
    """Non-finite values of a dataset: ``counts[array]`` values, first at ``first[array] = (episode, step)``."""

    path: Path
    num_episodes: int
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, tuple[int, int]] = field(default_factory=dict)
    episodes: list[int] = field(default_factory=list)

    def message(self, fix: str) -> str:
        where = ", ".join(f"{n} in {name} (the first at episode {self.first[name][0]}, step {self.first[name][1]})"
                          for name, n in self.counts.items())
        return (f"{self.path}: the dataset holds NaN or inf values: {where}; {len(self.episodes)} of "
                f"{self.num_episodes} episodes are affected ({episode_ranges(self.episodes)}). {fix}")

    def error(self) -> DatasetError:
        return DatasetError(self.message(
            "Training on them would stop at a NaN loss: pass --drop-bad-episodes (train(..., "
            "drop_bad_episodes=True)) to train without these episodes, or collect the dataset again"))


def find_non_finite(store: EpisodeStore, keys: Sequence[str] = ("obs", "action", "state")) -> NonFinite | None:
    """NaN/inf values in the float arrays ``keys`` of the committed rows, or None if there are none."""
    out = NonFinite(store.path, store.num_episodes)
    starts = store.episode_starts
    bad_episodes: set[int] = set()
    for name in (k for k in keys if k in store.array_names):
        arr = store.array(name)
        if not np.issubdtype(arr.dtype, np.floating):
            continue  # uint8 pixels cannot hold NaN
        c = int(arr.chunks[0])
        for a in range(0, store.num_rows, c):
            x = np.asarray(arr[a : min(a + c, store.num_rows)])
            bad = ~np.isfinite(x.reshape(len(x), -1))
            rows = np.flatnonzero(bad.any(axis=1)) + a
            if not rows.size:
                continue
            eps = np.searchsorted(starts, rows, side="right") - 1
            out.counts[name] = out.counts.get(name, 0) + int(bad.sum())
            out.first.setdefault(name, (int(eps[0]), int(rows[0] - starts[eps[0]])))
            bad_episodes.update(int(e) for e in eps)
    out.episodes = sorted(bad_episodes)
    return out if out.episodes else None


def check_training_data(store: EpisodeStore, verify_data: str = "cheap", drop_bad_episodes: bool = False
                        ) -> dict[str, Any]:
    """What ``train`` checks before it starts: integrity (``verify_data``: ``"cheap"`` or ``"full"``,
    raising :class:`~forethought.data.errors.DatasetCorruptError`), then NaN/inf values (raising
    :class:`DatasetError` naming the episode and step, unless ``drop_bad_episodes``).

    Returns ``{}``, or ``{"episodes": [...], "reason": "..."}`` for the episodes to leave out (for run.json).
    """
    from forethought.data.integrity import verify

    if verify_data not in ("cheap", "full"):
        raise ValueError(f"verify_data must be 'cheap' or 'full', got {verify_data!r}")
    for note in verify(store, full=verify_data == "full").notes:
        warnings.warn(note, stacklevel=3)
    bad = find_non_finite(store)
    if bad is None:
        return {}
    if not drop_bad_episodes:
        raise bad.error()
    reason = bad.message("Left out of training, validation and the statistics (--drop-bad-episodes)")
    warnings.warn(reason, stacklevel=3)
    return {"episodes": bad.episodes, "reason": reason}
