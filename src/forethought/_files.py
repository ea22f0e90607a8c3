"""Reading files back: every JSON and safetensors file the package reads goes through here.

A file a user hands us may be damaged (a copy cut short, a disk that filled up), edited by hand, or
something else under the expected name (a ``torch.save`` pickle renamed to ``model.safetensors``).
Each reader here checks what it can before trusting the contents and raises
:class:`CorruptFileError`, whose message names the file, says what is wrong with it and what to
do. It is a ``ValueError``, so the CLI prints it and exits 2. ``tests/test_file_access.py`` fails
when a module reads JSON or safetensors files any other way.

Nothing here executes code from a file: pickles (``torch.save`` files, zip or raw) are recognised
by their first bytes and refused. Torch and safetensors are imported only by the safetensors
readers, so reading JSON stays cheap (the CLI reads run folders without loading torch).

This is a layer-0 utility: it imports nothing from ``forethought``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PICKLE_REFUSAL = "refusing to load a pickle; Forethought never executes code from files"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class CorruptFileError(ValueError):
    """A file is damaged, truncated, foreign or unsafe to read.

    ``str(err)`` reads ``<path>: <what is wrong>. <what to do>``; the parts are kept as attributes.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}" + (f". {fix}" if fix else ""))


# ------------------------------------------------------------------------------------ JSON
def read_json(path: str | os.PathLike[str], *, what: str = "", fix: str = "", expect: type | None = dict) -> Any:
    """Parse a JSON file; a bad file raises :class:`CorruptFileError` naming it and the parse position.

    Args:
        path: the file.
        what: what the file should hold, for messages ("a model config", "a checkpoint's RNG states").
        fix: the sentence saying what to do, appended to every message.
        expect: the type of the top-level value (``dict``: a JSON object; ``None``: anything).
    Raises:
        FileNotFoundError: the file does not exist.
        CorruptFileError: empty, not UTF-8, not valid JSON, or the top level is not ``expect``.
    """
    path = Path(path)
    raw = _read_bytes(path, what, fix)
    if not raw.strip():
        raise CorruptFileError(path, f"empty file ({len(raw)} bytes){_expected(what)}", fix)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptFileError(path, f"not a text file (byte {e.start} is not UTF-8){_expected(what)}", fix) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorruptFileError(path, f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}", fix) from None
    if expect is not None and not isinstance(value, expect):
        raise CorruptFileError(path, f"holds a JSON {_json_kind(value)} where {what or 'the file'} should be a JSON "
                                     f"{_json_kind(expect())}", fix)
    return value


def read_json_lines(path: str | os.PathLike[str], *, fix: str = "", torn_last_line_ok: bool = False) -> list[Any]:
    """Parse a JSON-lines file (one value per line, blank lines skipped).

    ``torn_last_line_ok`` skips a last line cut short by a kill while it was appended; any other
    bad line raises :class:`CorruptFileError` naming the line.
    """
    path = Path(path)
    try:
        lines = _read_bytes(path, "", fix).decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise CorruptFileError(path, f"not a text file (byte {e.start} is not UTF-8)", fix) from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    records = []
    for k, (lineno, line) in enumerate(numbered):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if torn_last_line_ok and k == len(numbered) - 1:
                break
            raise CorruptFileError(path, f"line {lineno} is not valid JSON: {e.msg} at column {e.colno}", fix) from None
    return records


# ------------------------------------------------------------------------------ safetensors
@dataclass(frozen=True)
class SafetensorsHeader:
    """The checked header of a safetensors file."""

    path: Path
    tensors: dict[str, dict[str, Any]]  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict[str, str]  # the free-form "__metadata__" entry ({} when absent)
    size: int  # bytes, equal to what the header accounts for

    def json_entry(self, key: str, *, what: str = "", fix: str = "") -> Any:
        """The metadata entry ``key`` parsed as JSON (a JSON object), or :class:`CorruptFileError`."""
        if key not in self.metadata:
            raise CorruptFileError(self.path, f"its header has no '{key}' entry{_expected(what)}", fix)
        try:
            value = json.loads(self.metadata[key])
        except (TypeError, json.JSONDecodeError) as e:
            raise CorruptFileError(self.path, f"its header's '{key}' entry is not valid JSON ({e})", fix) from None
        if not isinstance(value, dict):
            raise CorruptFileError(self.path, f"its header's '{key}' entry is a JSON {_json_kind(value)}, not an "
                                              "object", fix)
        return value


def check_safetensors(path: str | os.PathLike[str], *, fix: str = "") -> SafetensorsHeader:
    """Check that ``path`` is a whole safetensors file, reading only its header.

    Tells apart an empty file, a pickle (``torch.save`` output, refused), a file that is not
    safetensors at all, a truncated file (the header says N bytes, the file has M) and a damaged
    header, each as a :class:`CorruptFileError` ending in ``fix``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file" + (f". {fix}" if fix else ""))
    size = path.stat().st_size
    if size == 0:
        raise CorruptFileError(path, "empty file (0 bytes), expected safetensors", fix)
    with open(path, "rb") as f:
        head = f.read(9)
        n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else -1
        looks_like_header = len(head) == 9 and head[8:9] == b"{" and 2 <= n <= _MAX_HEADER
        if not (looks_like_header and n <= size - 8):
            if _is_pickle(head):
                raise CorruptFileError(path, f"a pickle (torch.save output), not safetensors: {PICKLE_REFUSAL}",
                                       "Convert it with safetensors.torch.save_file in code you trust, or save "
                                       "the model with save_pretrained")
            if looks_like_header:
                raise CorruptFileError(path, f"truncated: its header alone says {8 + n} bytes, the file has {size}",
                                       fix)
            raise CorruptFileError(path, f"not a safetensors file ({size} bytes that do not start with a "
                                         "safetensors header)", fix)
        f.seek(8)
        raw_header = f.read(n)
    try:
        header = json.loads(raw_header.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict):
            raise ValueError("__metadata__ is not a JSON object")
        end = 0
        for name, info in header.items():
            begin, stop = info["data_offsets"]
            numel = 1
            for s in info["shape"]:
                numel *= int(s)
            if info["dtype"] in _DTYPE_BYTES and stop - begin != numel * _DTYPE_BYTES[info["dtype"]]:
                raise ValueError(f"tensor {name!r} has {stop - begin} bytes for shape {info['shape']}")
            end = max(end, int(stop))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CorruptFileError(path, f"damaged safetensors header ({e})", fix) from None
    expected = 8 + n + end
    if size < expected:
        raise CorruptFileError(path, f"truncated: its header says {expected} bytes, the file has {size}", fix)
    if size > expected:
        raise CorruptFileError(path, f"damaged: its header accounts for {expected} bytes, the file has {size}", fix)
    return SafetensorsHeader(path, header, metadata, size)


def read_safetensors(path: str | os.PathLike[str], *, fix: str = "", device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, after :func:`check_safetensors`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_safetensors(path, fix=fix)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CorruptFileError(path, f"unreadable safetensors file ({e})", fix) from None


def load_safetensors_into(module: torch.nn.Module, path: str | os.PathLike[str], *, strict: bool = True,
                          device: str = "cpu", fix: str = "") -> tuple[list[str], list[str]]:
    """Load a file written by ``safetensors.torch.save_model`` into ``module`` in place.

    Returns ``(missing, unexpected)`` keys (both empty when ``strict``); shape mismatches and, with
    ``strict``, missing or unexpected keys raise ``RuntimeError`` as ``load_state_dict`` does.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    check_safetensors(path, fix=fix)
    try:
        missing, unexpected = load_model(module, str(path), strict=strict, device=device)
    except (SafetensorError, OSError) as e:
        raise CorruptFileError(path, f"unreadable safetensors file ({e})", fix) from None
    return list(missing), list(unexpected)


# ---------------------------------------------------------------------------------- digests
def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_digest(path: str | os.PathLike[str], size: int, sha256: str, *, fix: str = "") -> None:
    """Raise :class:`CorruptFileError` unless the file has ``size`` bytes and this SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "missing", fix)
    actual = path.stat().st_size
    if actual != size:
        raise CorruptFileError(path, f"{'truncated' if actual < size else 'damaged'}: it was written with {size} "
                                     f"bytes, it has {actual}", fix)
    if file_digest(path) != sha256:
        raise CorruptFileError(path, "damaged: its contents differ from what was written (SHA-256 mismatch)", fix)


def written_by(record: dict[str, Any]) -> str:
    """Who wrote a file, from the ``forethought_version`` it records, for messages."""
    version = record.get("forethought_version")
    if isinstance(version, str):
        return f"forethought {version}"
    return "an older version of forethought (no forethought_version recorded)"


# ---------------------------------------------------------------------------------- helpers
def _read_bytes(path: Path, what: str, fix: str) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file{_expected(what)}" + (f". {fix}" if fix else ""))
    return path.read_bytes()


def _expected(what: str) -> str:
    return f", expected {what}" if what else ""


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _is_pickle(head: bytes) -> bool:
    """``torch.save`` output: a zip archive (torch >= 1.6) or a raw pickle (protocol 2-5)."""
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)
