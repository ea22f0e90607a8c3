"""Mending a damaged dataset in place (``collect --resume --repair``) and adding checksums to one
written before them (``forethought verify --rehash``).

Repair. A full check (:func:`~forethought.data.integrity.find_damage`) lists the damaged chunk
files and every episode with rows in them. A damaged episode index is rebuilt first, from the
checksum log or from the index arrays that are intact. The affected episodes are then collected
again exactly as ``collect`` made them (episode ``i``: env reset and policy rng seeded with
``seed + i``) and checked before anything is written: the same number of steps, the same row
hashes as recorded, and, where no hash was recorded, the same rows as the arrays that are intact.
A re-collection that differs (the env, the policy or a package changed) is refused and nothing is
written. Otherwise the damaged files are deleted and the episodes' rows are written back in place:
later episodes are kept as they are, never truncated. A damaged checksum log is rebuilt from the
repaired data (as ``--rehash`` would). A full check must pass afterwards.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from forethought.data.collect import _make_env, _make_policy, rollout
from forethought.data.commit import (INDEX_KEYS, LOG_FILES, ROW_KEYS, append_entry, remove_unused_logs, replace_log,
                                     row_digest)
from forethought.data.episode import Episode
from forethought.data.errors import Damage, DatasetCorruptError, DatasetError, corrupt_error, episode_ranges
from forethought.data.integrity import (ChecksumRecord, VerifyReport, chunk_path, chunk_rows, committed_length,
                                        find_damage, stream_digests, verify, written_chunks)
from forethought.data.layout import package_versions
from forethought.data.store import EpisodeStore


def _record(store: EpisodeStore, entry: dict[str, Any]) -> None:
    """Add a repair entry to the checksum log (datasets without checksums get none)."""
    if store.commit_record.log is not None:
        store._recommit(append_entry(store.path, store.commit_record, entry, durable=store.durable))


def _complete(values: dict[int, int], n: int) -> np.ndarray | None:
    return np.array([values[i] for i in range(n)], np.int64) if all(i in values for i in range(n)) else None


def _repair_index(store: EpisodeStore, damage: list[Damage], seed: int | None, rec: ChecksumRecord) -> None:
    """Rebuild ``episode_start/steps/seed`` from the log or the intact index arrays."""
    n, rows = store.num_episodes, store.num_rows
    starts = store.episode_starts
    steps_options = [_complete(rec.steps, n), store.episode_lengths, np.diff(np.append(starts, rows)) - 1]
    steps = next((s for s in steps_options if s is not None and (s >= 1).all() and int((s + 1).sum()) == rows
                  and all(s[i] == v for i, v in rec.steps.items() if i < n)), None)
    damaged = {d.array for d in damage}
    seed_options = [_complete(rec.seeds, n), None if "episode_seed" in damaged else store.episode_seeds,
                    None if seed is None else seed + np.arange(n)]
    seeds = next((s for s in seed_options if s is not None and all(s[i] == v for i, v in rec.seeds.items() if i < n)),
                 None)
    if steps is None or seeds is None:
        raise corrupt_error(store.path, store.meta, n, damage, fix=(
            "The episode index cannot be rebuilt (neither the checksum log nor the intact index arrays give every "
            "episode's length and seed): restore the folder from a backup"))
    for d in damage:
        if d.array in INDEX_KEYS:
            d.path.unlink(missing_ok=True)
    for name, values in zip(INDEX_KEYS, (np.concatenate([[0], np.cumsum(steps + 1)[:-1]]), steps, seeds)):
        store.array(name)[:n] = values
    _record(store, {"repair": [], "chunks": written_chunks(store, {k: (0, n) for k in INDEX_KEYS})})
    store.refresh()


def _differs(store: EpisodeStore, e: int, ep: Episode, rec: ChecksumRecord,
             damaged: set[tuple[str, int]]) -> str | None:
    """How re-collected episode ``e`` differs from what the dataset recorded, or None."""
    if ep.num_steps != int(store.episode_lengths[e]):
        return f"{ep.num_steps} steps where the dataset recorded {store.episode_lengths[e]}"
    start = int(store.episode_starts[e])
    for name in (n for n in ROW_KEYS if n in store.array_names):
        new = np.asarray(getattr(ep, name), store.array(name).dtype)
        recorded = rec.hashes.get(name, {}).get(e)
        if recorded is not None and row_digest(new) != recorded:
            return f"different {name} rows (their checksum differs from the recorded one)"
        if recorded is None and (name, e) not in damaged:
            old = np.asarray(store.array(name)[start : start + len(new)])
            diff = np.flatnonzero((old != new).reshape(len(new), -1).any(axis=1))
            if diff.size:
                return f"different {name} rows from step {diff[0]} on"
    return None


def _unverifiable(store: EpisodeStore, e: int, rec: ChecksumRecord, damaged: set[tuple[str, int]]) -> bool:
    names = [n for n in ROW_KEYS if n in store.array_names]
    return not any(e in rec.hashes.get(n, {}) or (n, e) not in damaged for n in names)


def repair(store: EpisodeStore, *, env_id: str, env_kwargs: dict[str, Any], policy: str,
           policy_kwargs: dict[str, Any], seed: int, steps: int) -> list[int]:
    """Repair ``store`` (opened with ``mode="a", check=False``) in place; returns the re-collected episodes.

    The arguments are ``collect``'s, already checked against ``meta.json``. Raises
    :class:`DatasetError` (nothing written) when an affected episode cannot be reproduced.
    """
    try:
        rec = ChecksumRecord.load(store)
        log_ok = True
    except DatasetCorruptError as err:  # the log itself: repair against the intact arrays, then rebuild it
        if not all(d.array in LOG_FILES for d in err.damage):
            raise
        rec, log_ok = ChecksumRecord(), False
    damage, _ = find_damage(store, full=True, ignore_log=not log_ok)
    if any(d.array in INDEX_KEYS for d in damage):
        _repair_index(store, damage, seed, rec)
        damage, _ = find_damage(store, full=True, ignore_log=not log_ok)
    damage = [d for d in damage if d.array in ROW_KEYS]
    episodes = sorted({e for d in damage for e in d.episodes})
    if episodes:
        _recollect(store, damage, episodes, rec, env_id=env_id, env_kwargs=env_kwargs, policy=policy,
                   policy_kwargs=policy_kwargs, seed=seed, steps=steps)
    if not log_ok:
        _write_checksums(store)
    verify(store, full=True)
    return episodes


def _recollect(store: EpisodeStore, damage: list[Damage], episodes: list[int], rec: ChecksumRecord, *,
               env_id: str, env_kwargs: dict[str, Any], policy: str, policy_kwargs: dict[str, Any], seed: int,
               steps: int) -> None:
    """Collect ``episodes`` again, check them against the record, and write them over the damage."""
    wrong_seed = [e for e in episodes if int(store.episode_seeds[e]) != seed + e]
    if wrong_seed:
        raise DatasetError(f"{store.path}: cannot repair episodes {episode_ranges(wrong_seed)}: they were not "
                           f"recorded with seed {seed} + episode (so they cannot be re-collected); nothing was "
                           "changed. Restore the folder from a backup")
    env = _make_env(env_id, env_kwargs)
    try:
        pol = _make_policy(policy, env.action_space, env_id, policy_kwargs)
        new = {e: rollout(env, pol, seed + e, steps) for e in episodes}
    finally:
        env.close()
    damaged = {(d.array, e) for d in damage for e in d.episodes}
    for e, ep in new.items():
        why = _differs(store, e, ep, rec, damaged)
        if why is not None:
            raise DatasetError(
                f"{store.path}: cannot repair episode {e}: collecting it again (seed {seed + e}) gives {why}, so "
                "the env, the policy or a package changed since the dataset was collected (it was made with "
                f"{store.meta.get('versions')}; now {package_versions()}). Nothing was changed. Restore the folder "
                "from a backup, or collect a new dataset")
    unverified = [e for e in episodes if _unverifiable(store, e, rec, damaged)]
    if unverified:
        warnings.warn(f"{store.path}: episodes {episode_ranges(unverified)} were re-collected without a checksum or "
                      "an intact array to compare them with", stacklevel=2)
    for d in damage:
        d.path.unlink(missing_ok=True)
    starts = store.episode_starts
    for e, ep in new.items():
        for name in (n for n in ROW_KEYS if n in store.array_names):
            arr = store.array(name)
            arr[int(starts[e]) : int(starts[e]) + ep.num_steps + 1] = np.asarray(getattr(ep, name), arr.dtype)
    span = (int(starts[episodes[0]]), int(starts[episodes[-1]] + store.episode_lengths[episodes[-1]] + 1))
    _record(store, {"repair": episodes, "chunks": written_chunks(store, {n: span for n in ROW_KEYS
                                                                         if n in store.array_names})})


def rehash(path: Any) -> VerifyReport:
    """Record checksums of every episode of the dataset at ``path`` (``forethought verify --rehash``).

    For a dataset written before checksums, or one whose checksum log is damaged. The data is
    checked first (every chunk decoded; against the log, when it is intact) and refused if damaged:
    checksums record what the data reads as now, so only rehash data you trust.
    """
    store = EpisodeStore.open(path, mode="a")
    try:
        store.truncate_to_committed()
        try:
            damage, _ = find_damage(store, full=True)
        except DatasetCorruptError as err:  # the log itself is damaged: check the data without it
            if not all(d.array in LOG_FILES for d in err.damage):
                raise
            damage, _ = find_damage(store, full=True, ignore_log=True)
        if damage:
            raise corrupt_error(store.path, store.meta, store.num_episodes, damage)
        _write_checksums(store)
        return verify(store, full=True)
    finally:
        store.close()


def _write_checksums(store: EpisodeStore) -> None:
    """Record checksums of every episode as the data reads now, in a new log (and write the chunk
    files of all-zero chunks, which datasets written before checksums lack)."""
    names = [n for n in ROW_KEYS + INDEX_KEYS if n in store.array_names]
    for name in names:  # datasets written before checksums have no file for an all-zero chunk
        c, length, arr = chunk_rows(store, name), committed_length(store, name), store.array(name)
        for k in range(-(-length // c)):
            if not chunk_path(store, name, k).is_file():
                arr[k * c : min((k + 1) * c, length)] = np.asarray(arr[k * c : min((k + 1) * c, length)])
    n, rows = store.num_episodes, store.num_rows
    hashes = {name: stream_digests(store, name)[0] for name in names if name in ROW_KEYS}
    entry = {"episodes": [0, n], "rows": [0, rows], "steps": store.episode_lengths.tolist(),
             "seeds": store.episode_seeds.tolist(), "hashes": {k: [v[e] for e in range(n)] for k, v in hashes.items()},
             "chunks": written_chunks(store, {k: (0, committed_length(store, k)) for k in names})}
    record = replace_log(store.path, store.commit_record, [entry])
    store._recommit(record)
    remove_unused_logs(store.path, record)
