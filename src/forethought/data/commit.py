"""The commit record of a dataset: ``commit.json`` and the checksum log it points into.

``commit.json`` is the commit point (replaced atomically after each append)::

    {"num_episodes": 12, "num_rows": 110,
     "checksums": {"file": "checksums.jsonl", "bytes": 5321, "crc32": 90331, "from_episode": 0, "from_row": 0}}

``checksums.jsonl`` gets one JSON line per commit (per committed episode range)::

    {"episodes": [i0, i1], "rows": [r0, r1], "steps": [...], "seeds": [...],
     "hashes": {"obs": [blake2b of episode i0's obs rows, ...], "action": [...], ...},
     "chunks": {"obs": {"c/0/0/0/0": [size, crc32 of the file bytes]}, "action": {...}, ...}}

and repairs add ``{"repair": [episodes], "chunks": {...}}``. Only the first ``bytes`` bytes are
committed; their crc32 is in ``commit.json``, so a damaged log is told apart from damaged data.

Why two checksums. *Per-episode row hashes* (blake2b of the decoded rows of each array, in the
stored dtype) are what judges the data: the rows of a committed episode never change, whatever
shares their chunks, so these hashes stay true when a later append rewrites a partly filled last
chunk, when a killed writer leaves new bytes in it before its commit, when the arrays are resized,
or when zarr's compressor output changes between versions. They also tell ``--repair`` whether a
re-collected episode is bit-identical to the lost one. *Per-chunk-file (size, crc32)*, taken from
the files as written, make the cheap check cheap (a ``stat`` finds a truncated file) and name the
exact file when bytes are flipped. A file whose size or crc32 no longer matches is only a suspect:
it is decoded and the hashes of its episodes decide (a killed writer's partly filled last chunk
passes, a damaged one does not).

Why a log, not one JSON file. ``collect`` commits every episode; rewriting all hashes at each commit
would write O(episodes^2) bytes. The log is written only past its committed length, like the
arrays past their committed rows, so the usual argument holds: a kill before ``commit.json`` is
replaced leaves bytes past ``bytes`` that readers ignore and the next writer overwrites.
``from_episode``/``from_row`` are where checksums start: datasets written before them (no
``checksums`` entry) open unchanged, and ``forethought verify --rehash`` adds them.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from forethought._atomic import atomic_write_json, fsync_dir
from forethought._files import read_json
from forethought.data.errors import Damage, DatasetCorruptError, DatasetError

ROW_KEYS = ("obs", "action", "state", "reward", "terminated", "truncated")  # one row per env step (+1)
INDEX_KEYS = ("episode_start", "episode_steps", "episode_seed")  # one entry per episode
COMMIT_FILE = "commit.json"
LOG_FILES = ("checksums.jsonl", "checksums.1.jsonl")  # a rehash writes the other one, then switches


@dataclass(frozen=True)
class LogPointer:
    """The committed prefix of the checksum log, and the first episode and row it covers."""

    file: str
    bytes: int
    crc32: int
    from_episode: int
    from_row: int


@dataclass(frozen=True)
class CommitRecord:
    """What ``commit.json`` says: committed episodes and rows, and where their checksums are."""

    num_episodes: int
    num_rows: int
    log: LogPointer | None = None

    @classmethod
    def new(cls) -> CommitRecord:
        """The record of a new, empty dataset: checksums from its first episode."""
        return cls(0, 0, LogPointer(LOG_FILES[0], 0, 0, 0, 0))

    @classmethod
    def read(cls, folder: Path) -> CommitRecord:
        path = folder / COMMIT_FILE
        d = read_json(path, what="a dataset's commit record", fix="The dataset's committed size is unknown: restore "
                      "the folder from a backup")
        try:
            log = d.get("checksums")
            return cls(int(d["num_episodes"]), int(d["num_rows"]), None if log is None else LogPointer(**log))
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{path}: unreadable commit record ({err}); the dataset's committed size is "
                               "unknown: restore the folder from a backup") from None

    def write(self, folder: Path) -> None:
        d: dict[str, Any] = {"num_episodes": self.num_episodes, "num_rows": self.num_rows}
        if self.log is not None:
            d["checksums"] = asdict(self.log)
        atomic_write_json(folder / COMMIT_FILE, d)


def row_digest(rows: np.ndarray) -> str:
    """blake2b (8 bytes, hex) of rows as stored (C order, the array's dtype)."""
    return hashlib.blake2b(np.ascontiguousarray(rows).tobytes(), digest_size=8).hexdigest()


def file_record(path: Path) -> list[int]:
    """``[size, crc32]`` of a file's bytes."""
    data = path.read_bytes()
    return [len(data), zlib.crc32(data)]


def append_entry(folder: Path, record: CommitRecord, entry: dict[str, Any], *, durable: bool = False) -> CommitRecord:
    """Write ``entry`` as the next line of the log, past its committed prefix; returns the record to
    commit (the caller replaces ``commit.json`` with it: until then the line is not committed)."""
    log = record.log
    if log is None:  # the first checksummed commit of this dataset
        log = LogPointer(LOG_FILES[0], 0, 0, record.num_episodes, record.num_rows)
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    path = folder / log.file
    with open(path, "r+b" if path.exists() else "w+b") as f:
        f.seek(log.bytes)
        f.write(line)
        f.truncate()
        if durable:
            f.flush()
            os.fsync(f.fileno())
    return replace(record, log=replace(log, bytes=log.bytes + len(line), crc32=zlib.crc32(line, log.crc32)))


def read_entries(folder: Path, record: CommitRecord) -> list[dict[str, Any]]:
    """The committed log entries (``[]`` without checksums); DatasetCorruptError if the log is damaged."""
    log = record.log
    if log is None or log.bytes == 0:
        return []
    path = folder / log.file
    problem = None
    data = path.read_bytes()[: log.bytes] if path.is_file() else None
    if data is None:
        problem = "is missing"
    elif len(data) < log.bytes or zlib.crc32(data) != log.crc32:
        problem = f"does not match the length and crc32 that {COMMIT_FILE} records for it"
    else:
        try:
            return [json.loads(line) for line in data.decode().splitlines()]
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = f"cannot be parsed ({err})"
    damage = Damage(log.file, path, problem, ())
    raise DatasetCorruptError(
        f"{folder}: the checksum log {path} {problem}, so the data cannot be checked against it. If you trust "
        f"the data, `forethought verify {folder} --rehash` rebuilds the log from it; otherwise restore the "
        "folder from a backup", [damage])


def truncate_log(folder: Path, record: CommitRecord) -> None:
    """Drop log bytes past the committed prefix (left by a killed writer)."""
    if record.log is not None and (folder / record.log.file).is_file():
        with open(folder / record.log.file, "r+b") as f:
            f.truncate(record.log.bytes)


def replace_log(folder: Path, record: CommitRecord, entries: list[dict[str, Any]]) -> CommitRecord:
    """Write ``entries`` as a new log covering every episode (``--rehash``) into the log file not in
    use, fsynced; returns the record to commit. The old log stays valid until ``commit.json`` is replaced."""
    name = LOG_FILES[1] if record.log is not None and record.log.file == LOG_FILES[0] else LOG_FILES[0]
    data = b"".join((json.dumps(e, separators=(",", ":")) + "\n").encode() for e in entries)
    with open(folder / name, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(folder)
    return replace(record, log=LogPointer(name, len(data), zlib.crc32(data), 0, 0))


def remove_unused_logs(folder: Path, record: CommitRecord) -> None:
    """Delete the log file that ``record`` does not point to (after a rehash is committed)."""
    for name in LOG_FILES:
        if record.log is None or name != record.log.file:
            (folder / name).unlink(missing_ok=True)
