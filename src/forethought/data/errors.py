"""Dataset errors: a folder that is not a readable dataset, and damage found inside one.

:class:`DatasetCorruptError` is raised wherever damage is found (opening a dataset, ``forethought
verify``, the start of ``train``, any read of a chunk that cannot be decoded). Its message names
the array, the chunk file, the episodes affected and what to do; ``err.damage`` holds the same as
:class:`Damage` records for code (``collect --resume --repair`` re-collects ``err.episodes``).
Both are ``ValueError`` subclasses, so the CLI prints the message and exits with status 2.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A folder that is not a (readable) Forethought dataset, or bad data for one."""


class ActionFreeError(DatasetError):
    """A command that needs action labels was given an action-free dataset."""


def action_free_error(path: Any, what: str) -> ActionFreeError:
    """The error for an action-free dataset at ``path`` where ``what`` (e.g. "train needs action labels")."""
    return ActionFreeError(
        f"{path}: the dataset has no actions (collected with --drop-actions or imported from video), and {what}. "
        f"Pretrain on it without actions (forethought pretrain --data {path} --out RUN), then train on "
        "action-labelled episodes from that run (forethought train --init RUN --data LABELLED)")


def require_actions(store: Any, what: str) -> None:
    """Raise :class:`ActionFreeError` unless the :class:`~forethought.data.store.EpisodeStore` ``store`` has actions."""
    if not store.has_actions:
        raise action_free_error(store.path, what)


@dataclass(frozen=True)
class Damage:
    """One damaged file of a dataset.

    Attributes:
        array: the array (``"obs"``, ``"episode_start"``, ...) or, for the checksum log, its file name.
        path: the damaged chunk file (or log file).
        problem: what is wrong, as the end of a sentence ("is missing", ...).
        episodes: the committed episodes with rows (or index entries) in that file.
    """

    array: str
    path: Path
    problem: str
    episodes: tuple[int, ...]


class DatasetCorruptError(DatasetError):
    """Files of a dataset are missing or corrupt. ``damage`` lists them (empty when unpickled)."""

    def __init__(self, message: str, damage: Sequence[Damage] = ()) -> None:
        super().__init__(message)
        self.damage = tuple(damage)

    @property
    def arrays(self) -> list[str]:
        return sorted({d.array for d in self.damage})

    @property
    def files(self) -> list[Path]:
        return [d.path for d in self.damage]

    @property
    def episodes(self) -> list[int]:
        """Every committed episode with rows in a damaged file, sorted."""
        return sorted({e for d in self.damage for e in d.episodes})


def episode_ranges(ids: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    ids = sorted(set(int(i) for i in ids))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(parts) if parts else "none"


def repair_command(path: Path, meta: dict[str, Any], num_episodes: int) -> str | None:
    """The ``forethought collect ... --resume --repair`` line that re-collects this dataset's
    episodes, or None when its episodes cannot be reproduced (not written by ``collect``)."""
    policy, seed, steps, env_id = meta.get("policy"), meta.get("seed"), meta.get("max_steps"), meta.get("env_id")
    if not (isinstance(policy, dict) and policy.get("name") and isinstance(seed, int)
            and isinstance(steps, int) and isinstance(env_id, str)):
        return None
    words = ["forethought", "collect", "--env", env_id, "--out", str(path), "--episodes", str(num_episodes),
             "--steps", str(steps), "--policy", str(policy["name"]), "--seed", str(seed)]
    if policy.get("kwargs"):
        words += ["--policy-kwargs", json.dumps(policy["kwargs"])]
    if meta.get("env_kwargs"):
        words += ["--env-kwargs", json.dumps(meta["env_kwargs"])]
    return " ".join(shlex.quote(w) for w in words) + " --resume --repair"


def corrupt_error(path: Path, meta: dict[str, Any], num_episodes: int,
                  damage: Sequence[Damage], fix: str | None = None) -> DatasetCorruptError:
    """The error for ``damage`` found in the dataset at ``path``, with what to do about it."""
    lines = []
    for d in damage[:5]:
        eps = (f"episodes {episode_ranges(d.episodes)} ({len(d.episodes)} of {num_episodes})" if d.episodes
               else "no episode")
        lines.append(f"{d.array} chunk file {d.path} {d.problem}; {eps} affected")
    if len(damage) > 5:
        lines.append(f"and {len(damage) - 5} more damaged files")
    if fix is None:
        command = repair_command(path, meta, num_episodes)
        if command is not None:
            fix = (f"Re-collect the affected episodes in place (the dataset is deterministic: episode i "
                   f"uses seed {meta['seed']} + i) with `{command}`, or restore the folder from a backup")
        else:
            fix = ("This dataset was not written by `forethought collect` with a seeded policy, so its episodes "
                   "cannot be re-collected: restore the folder from a backup, or import/collect it again")
    return DatasetCorruptError(f"{path}: damaged dataset: " + "; ".join(lines) + f". {fix}.", damage)

FIX_DATA_JSON = "The dataset was edited or damaged; restore it from a copy, or collect it again"
