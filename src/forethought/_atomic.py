"""Crash-safe writes: a file or a folder is always either its whole old or its whole new version.

Used by every writer whose output a later step trusts: dataset commit records and statistics,
model folders, training checkpoints, exports. A write goes to a temporary sibling (``.tmp-*``),
is fsynced, and is renamed into place; a replaced folder is first moved aside (``.old-*``) and
deleted only after the new one is in place. A crash can leave such dot-prefixed siblings behind;
readers ignore them and ``remove_stale`` deletes them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STALE_PREFIXES = (".tmp-", ".old-")
_UMASK = os.umask(0)
os.umask(_UMASK)  # read the process umask (there is no getter)


def fsync_dir(path: Path) -> None:
    """Persist a folder's entries (a rename into it); a no-op where the OS does not support it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` so that ``path`` is always either the old or the new whole file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{STALE_PREFIXES[0]}{path.name}-")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON so that ``path`` is always either the old or the new whole file."""
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on normal exit it replaces ``path`` as a whole.

    Its files are fsynced before the rename. On an exception the temporary folder is removed and
    ``path`` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{STALE_PREFIXES[0]}{path.name}-", dir=path.parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        fsync_dir(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{STALE_PREFIXES[1]}{path.name}-", dir=path.parent))
            os.replace(path, old / path.name)  # aside first, so `path` is never half-written
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary siblings a crashed write left in ``folder``; returns what was removed.

    Call only when no other process is writing into ``folder``.
    """
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name.startswith(STALE_PREFIXES):
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
                removed.append(child)
    return removed
