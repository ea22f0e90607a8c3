"""Finding missing and corrupt chunk files of a dataset (the checks; :mod:`.commit` has the record).

Zarr reads a missing chunk file as its fill value, silently, and a truncated one as a raw codec
error naming no file. So:

* **On every open** (:func:`check_presence`): every chunk file the committed rows need must exist
  (one ``stat`` per file), and the episode index must be consistent (episode ``i+1`` starts one
  row after episode ``i`` ends; the last ends at the committed row count).
* **Cheap verify** (:func:`verify`, the default of ``forethought verify`` and ``train``): also the
  recorded steps and seeds of every episode, and the recorded size of every chunk file.
* **Full verify** (``--full``, ``info --verify``, ``train --verify-data full``): also reads every
  chunk, compares each file's crc32 and each episode's row hashes with the record.
* **Every read** goes through :class:`CheckedArray`, which turns a decoding error into the same
  :class:`DatasetCorruptError` naming the chunk file.

Which chunk files must exist. Datasets written with checksums write every chunk, even all-zero
ones (zarr skips those by default). In the part of a dataset written before that
(``from_row``/``from_episode`` of the log pointer; all of it without one) a chunk of ``reward``,
``terminated``, ``truncated`` or ``episode_seed`` may legitimately be absent (all zeros), so only
``obs``, ``action``, ``state``, ``episode_steps`` and ``episode_start`` (except a chunk holding
episode 0 alone) are required there.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forethought.data.commit import INDEX_KEYS, ROW_KEYS, file_record, read_entries, row_digest
from forethought.data.errors import Damage, DatasetCorruptError, corrupt_error

if TYPE_CHECKING:
    from forethought.data.episode import Episode
    from forethought.data.store import EpisodeStore

_OPTIONAL_BEFORE_CHECKSUMS = ("reward", "terminated", "truncated", "episode_seed")


# ---- geometry ---------------------------------------------------------------------------------
def chunk_rows(store: EpisodeStore, name: str) -> int:
    return int(store.array(name).zarr.chunks[0])


def chunk_key(store: EpisodeStore, name: str, k: int) -> str:
    arr = store.array(name).zarr
    return arr.metadata.chunk_key_encoding.encode_chunk_key((k,) + (0,) * (arr.ndim - 1))


def chunk_path(store: EpisodeStore, name: str, k: int) -> Path:
    return store.path / name / chunk_key(store, name, k)


def committed_length(store: EpisodeStore, name: str) -> int:
    return store.num_episodes if name in INDEX_KEYS else store.num_rows


def chunk_range(store: EpisodeStore, name: str, begin: int, end: int) -> range:
    """Chunk indices holding rows ``[begin, end)`` of ``name``."""
    c = chunk_rows(store, name)
    return range(begin // c, (end - 1) // c + 1) if end > begin else range(0)


def episodes_in_chunk(store: EpisodeStore, name: str, k: int,
                      bounds: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, ...]:
    """Committed episodes with rows (or index entries) in chunk ``k`` of ``name`` (``bounds``: the
    episodes' first rows and ends, when the caller has them)."""
    c = chunk_rows(store, name)
    a, b = k * c, min((k + 1) * c, committed_length(store, name))
    if name in INDEX_KEYS:
        return tuple(range(a, b))
    if bounds is None:
        bounds = (store.episode_starts, store.episode_starts + store.episode_lengths + 1)
    starts, ends = bounds
    return tuple(range(int(np.searchsorted(ends, a, "right")), int(np.searchsorted(starts, b, "left"))))


def _required(store: EpisodeStore, name: str, k: int) -> bool:
    log = store.commit_record.log
    first = 0 if log is None else (log.from_episode if name in INDEX_KEYS else log.from_row)
    if log is not None and (k + 1) * chunk_rows(store, name) > first:
        return True  # written with every chunk present
    if name == "episode_start":
        return not (k == 0 and store.num_episodes == 1)  # only a lone episode 0 starts at 0 = fill
    return name not in _OPTIONAL_BEFORE_CHECKSUMS


# ---- presence (every open) ----------------------------------------------------------------------
def _scan(store: EpisodeStore, names: tuple[str, ...], sizes: dict[tuple[str, int], int]) -> list[Damage]:
    damage = []
    for name in (n for n in names if n in store.array_names):
        arr, length = store.array(name).zarr, committed_length(store, name)
        if arr.shape[0] < length:
            eps = tuple(range(store.num_episodes))
            damage.append(Damage(name, store.path / name / "zarr.json",
                                 f"says the array has {arr.shape[0]} rows, fewer than the {length} committed", eps))
            continue
        for k in range(-(-length // int(arr.chunks[0]))):
            path = chunk_path(store, name, k)
            try:
                sizes[(name, k)] = path.stat().st_size
            except FileNotFoundError:
                if _required(store, name, k):
                    what = "entries" if name in INDEX_KEYS else "rows"
                    damage.append(Damage(name, path, f"is missing (zarr would read its {what} as zeros)",
                                         episodes_in_chunk(store, name, k)))
    return damage


def _index_damage(store: EpisodeStore) -> list[Damage]:
    starts, steps, n = store.episode_starts, store.episode_lengths, store.num_episodes
    if n == 0:
        return []
    expected = np.concatenate([[0], np.cumsum(steps + 1)[:-1]])
    bad = (starts != expected) | (steps < 1)
    bad[-1] |= int(expected[-1] + steps[-1] + 1) != store.num_rows
    if not bad.any():
        return []
    i = int(np.argmax(bad))
    what = (f"is inconsistent with the rest of the episode index (episode {i}: start row {starts[i]}, "
            f"{steps[i]} steps; expected start row {expected[i]}, and the episodes to end at row {store.num_rows})")
    k = i // chunk_rows(store, "episode_start")
    return [Damage(name, chunk_path(store, name, k), what, episodes_in_chunk(store, name, k))
            for name in ("episode_start", "episode_steps")]


def find_missing(store: EpisodeStore, sizes: dict[tuple[str, int], int] | None = None) -> list[Damage]:
    """Missing chunk files and an inconsistent index (fills ``sizes`` with the files' sizes)."""
    sizes = {} if sizes is None else sizes
    damage = _scan(store, INDEX_KEYS, sizes) or _index_damage(store)
    if damage:  # the rows of an episode cannot be located without its index
        return damage
    return _scan(store, ROW_KEYS, sizes)


def check_presence(store: EpisodeStore) -> None:
    """Raise :class:`DatasetCorruptError` if a chunk file the committed rows need is missing."""
    damage = find_missing(store)
    if damage:
        raise corrupt_error(store.path, store.meta, store.num_episodes, damage)


# ---- verify -------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """What :func:`verify` checked."""

    path: Path
    full: bool
    episodes: int
    chunk_files: int
    checksummed_episodes: int
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.checksummed_episodes == 0:
            what = "every chunk file present" + (" and decoded" if self.full else "") + "; no checksums recorded"
        else:
            what = ("every chunk read, crc32 and episode checksums match" if self.full
                    else "every chunk file present, recorded sizes match")
        return (f"{self.path}: OK ({'full' if self.full else 'cheap'} check: {self.episodes} episodes, "
                f"{self.chunk_files} chunk files, {what})")


@dataclass
class ChecksumRecord:
    """The committed checksum log, indexed: hashes[name][episode], chunks[(name, key)] = [size, crc32]."""

    hashes: dict[str, dict[int, str]] = field(default_factory=dict)
    chunks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    seeds: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(cls, store: EpisodeStore) -> ChecksumRecord:
        rec = cls()
        for entry in read_entries(store.path, store.commit_record):
            for name, files in entry.get("chunks", {}).items():
                rec.chunks.update({(name, key): value for key, value in files.items()})
            if "episodes" in entry:
                ids = range(*entry["episodes"])
                rec.steps.update(zip(ids, entry["steps"]))
                rec.seeds.update(zip(ids, entry["seeds"]))
                for name, digests in entry["hashes"].items():
                    rec.hashes.setdefault(name, {}).update(zip(ids, digests))
        return rec


def _index_vs_record(store: EpisodeStore, rec: ChecksumRecord) -> list[Damage]:
    for name, recorded, stored in (("episode_steps", rec.steps, store.episode_lengths),
                                   ("episode_seed", rec.seeds, store.episode_seeds)):
        bad = [i for i, v in recorded.items() if i < store.num_episodes and int(stored[i]) != v]
        if bad:
            i = bad[0]
            k = i // chunk_rows(store, name)
            return [Damage(name, chunk_path(store, name, k), f"does not match the checksum log (episode {i}: "
                           f"{stored[i]}, recorded {recorded[i]})", episodes_in_chunk(store, name, k))]
    return []


def _decode(store: EpisodeStore, name: str, k: int) -> tuple[np.ndarray | None, Damage | None]:
    c = chunk_rows(store, name)
    try:
        return np.asarray(store.array(name).zarr[k * c : min((k + 1) * c, committed_length(store, name))]), None
    except Exception as err:  # noqa: BLE001 (any codec error means the same: the file cannot be decoded)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, Damage(name, chunk_path(store, name, k), f"cannot be decoded (truncated or corrupt: {first})",
                            episodes_in_chunk(store, name, k))


def _mismatch(store: EpisodeStore, name: str, k: int) -> Damage:
    return Damage(name, chunk_path(store, name, k), "does not match the checksums recorded when it was written",
                  episodes_in_chunk(store, name, k))


def _judge(store: EpisodeStore, name: str, k: int, rec: ChecksumRecord) -> Damage | None:
    """A suspect chunk (size or crc32 changed): damaged unless it decodes and its episodes hash right."""
    _, damage = _decode(store, name, k)
    if damage is not None or name in INDEX_KEYS:  # index values were checked against the log already
        return damage
    hashes, starts, steps = rec.hashes.get(name, {}), store.episode_starts, store.episode_lengths
    arr = store.array(name)  # checked: a neighbouring chunk that cannot be decoded is named
    for e in episodes_in_chunk(store, name, k):
        if e in hashes and row_digest(np.asarray(arr[starts[e] : starts[e] + steps[e] + 1])) != hashes[e]:
            return _mismatch(store, name, k)
    return None


def stream_digests(store: EpisodeStore, name: str, wanted: Collection[int] | None = None
                   ) -> tuple[dict[int, str], list[Damage]]:
    """Row hashes of the ``wanted`` episodes (default all) of a row array, reading one chunk at a
    time, and the chunks that cannot be decoded (their episodes get no hash)."""
    digests: dict[int, str] = {}
    damage: list[Damage] = []
    starts = store.episode_starts
    ends = starts + store.episode_lengths + 1
    c, length = chunk_rows(store, name), committed_length(store, name)
    hashers: dict[int, Any] = {}
    for k in range(-(-length // c)):
        data, bad = _decode(store, name, k)
        if bad is not None:
            damage.append(bad)
            for e in bad.episodes:
                hashers.pop(e, None)
            continue
        a, b = k * c, min((k + 1) * c, length)
        for e in episodes_in_chunk(store, name, k, (starts, ends)):
            if (wanted is not None and e not in wanted) or (e not in hashers and starts[e] < a):
                continue  # not wanted, or its first chunk could not be decoded
            h = hashers.setdefault(e, hashlib.blake2b(digest_size=8))
            h.update(np.ascontiguousarray(data[max(starts[e], a) - a : min(ends[e], b) - a]).tobytes())
            if ends[e] <= b:
                digests[e] = hashers.pop(e).hexdigest()
    return digests, damage


def _stream(store: EpisodeStore, name: str, rec: ChecksumRecord, suspects: set[int]) -> list[Damage]:
    """Full check of a row array: decode every chunk, hash every episode that has a recorded hash."""
    hashes = rec.hashes.get(name, {})
    digests, damage = stream_digests(store, name, hashes)
    starts, steps = store.episode_starts, store.episode_lengths
    bad_chunks: set[int] = set()
    for e in sorted(e for e, h in digests.items() if h != hashes[e]):
        chunks = set(chunk_range(store, name, int(starts[e]), int(starts[e] + steps[e] + 1)))
        bad_chunks |= (chunks & suspects) or chunks  # the file whose crc32 changed, if one did
    return damage + [_mismatch(store, name, k) for k in sorted(bad_chunks)]


def find_damage(store: EpisodeStore, full: bool = False, *, ignore_log: bool = False
                ) -> tuple[list[Damage], VerifyReport]:
    """Every damaged file found by the cheap (or full) check, and what was checked (``ignore_log``:
    check the data as if it had no checksums, for rebuilding a damaged log)."""
    sizes: dict[tuple[str, int], int] = {}
    damage = find_missing(store, sizes)
    if damage:
        return damage, VerifyReport(store.path, full, store.num_episodes, len(sizes), 0)
    rec = ChecksumRecord() if ignore_log else ChecksumRecord.load(store)
    report = VerifyReport(store.path, full, store.num_episodes, len(sizes), len(rec.hashes.get("obs", {})))
    if damage := _index_vs_record(store, rec):
        return damage, report
    for name in (n for n in ROW_KEYS + INDEX_KEYS if n in store.array_names):
        suspects = set()
        for k in range(-(-committed_length(store, name) // chunk_rows(store, name))):
            recorded = rec.chunks.get((name, chunk_key(store, name, k)))
            if (name, k) in sizes and recorded is not None:
                crc = zlib.crc32(chunk_path(store, name, k).read_bytes()) if full else recorded[1]
                if [sizes[(name, k)], crc] != recorded:
                    suspects.add(k)
        if full and name in ROW_KEYS:
            damage += _stream(store, name, rec, suspects)
        else:
            damage += [d for k in sorted(suspects) if (d := _judge(store, name, k, rec)) is not None]
            if full:  # index arrays: their values were checked; make sure every chunk decodes
                damage += [d for k in range(-(-store.num_episodes // chunk_rows(store, name)))
                           if (d := _decode(store, name, k)[1]) is not None]
    unchecked = store.num_episodes - report.checksummed_episodes
    if unchecked:
        report.notes.append(
            f"{store.path}: {unchecked} of {store.num_episodes} episodes have no checksums (written before "
            f"forethought recorded them), so only their chunk files' presence{' and decoding' if full else ''} "
            f"is checked; `forethought verify {store.path} --rehash` adds checksums")
    return damage, report


def verify(store: EpisodeStore, full: bool = False) -> VerifyReport:
    """Check a dataset (cheap: presence, sizes, index; full: also every byte); raise
    :class:`DatasetCorruptError` naming every damaged file, the episodes affected and the fix."""
    damage, report = find_damage(store, full)
    if damage:
        raise corrupt_error(store.path, store.meta, store.num_episodes, damage)
    return report


# ---- writing and reading ----------------------------------------------------------------------
def commit_entry(store: EpisodeStore, i0: int, r0: int, episodes: list[Episode]) -> dict[str, Any]:
    """The log entry of an append of ``episodes`` at episode ``i0`` / row ``r0`` (after writing them)."""
    i1, r1 = i0 + len(episodes), r0 + sum(ep.num_steps + 1 for ep in episodes)
    names = [n for n in ROW_KEYS if n in store.array_names]
    dtypes = {n: store.array(n).zarr.dtype for n in names}
    return {
        "episodes": [i0, i1], "rows": [r0, r1],
        "steps": [ep.num_steps for ep in episodes],
        "seeds": [-1 if ep.seed is None else ep.seed for ep in episodes],
        "hashes": {n: [row_digest(np.asarray(getattr(ep, n), dtypes[n])) for ep in episodes] for n in names},
        "chunks": written_chunks(store, {n: (r0, r1) for n in names} | {n: (i0, i1) for n in INDEX_KEYS}),
    }


def written_chunks(store: EpisodeStore, spans: dict[str, tuple[int, int]]) -> dict[str, dict[str, list[int]]]:
    """``{array: {chunk key: [size, crc32]}}`` of the chunk files holding rows ``spans[array]``."""
    out: dict[str, dict[str, list[int]]] = {}
    for name, (a, b) in spans.items():
        for k in chunk_range(store, name, a, b):
            path = chunk_path(store, name, k)
            if path.is_file():
                out.setdefault(name, {})[chunk_key(store, name, k)] = file_record(path)
    return out


class CheckedArray:
    """A dataset's zarr array whose read errors name the chunk file (:class:`DatasetCorruptError`).

    Slicing, writing and attributes (``shape``, ``dtype``, ``resize``...) go to the zarr array,
    which is ``.zarr``.
    """

    def __init__(self, store: EpisodeStore, name: str, array: Any) -> None:
        self._store, self.name, self.zarr = store, name, array

    def __getitem__(self, key: Any) -> Any:
        return self._read(self.zarr.__getitem__, key)

    def get_orthogonal_selection(self, selection: Any, **kwargs: Any) -> Any:
        return self._read(lambda key: self.zarr.get_orthogonal_selection(key, **kwargs), selection)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.zarr[key] = value

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "zarr":  # not set yet (copying, unpickling)
            raise AttributeError(attr)
        return getattr(self.zarr, attr)

    def _read(self, read: Any, key: Any) -> Any:
        try:
            return read(key)
        except Exception as err:
            explained = self._explain(key)
            if explained is None:
                raise
            raise explained from err

    def __len__(self) -> int:
        return int(self.zarr.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[...], dtype=dtype)

    def _explain(self, key: Any) -> DatasetCorruptError | None:
        first = key[0] if isinstance(key, tuple) and key else key
        n, c = self.zarr.shape[0], int(self.zarr.chunks[0])
        if isinstance(first, (int, np.integer)):
            first = slice(int(first) % max(n, 1), int(first) % max(n, 1) + 1)
        a, b, _ = first.indices(n) if isinstance(first, slice) else (0, n, 1)
        for k in range(a // c, (max(b, a + 1) - 1) // c + 1):
            _, damage = _decode(self._store, self.name, k)
            if damage is not None:
                s = self._store
                return corrupt_error(s.path, s.meta, s.num_episodes, [damage])
        return None
