"""What a dataset folder holds: its arrays (dtypes, chunking, codecs), ``meta.json``, and the
checks that a folder is a dataset this version can read. Used by :class:`~forethought.data.store.EpisodeStore`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from forethought.data.commit import INDEX_KEYS
from forethought._files import read_json
from forethought.data.errors import FIX_DATA_JSON, DatasetError

FORMAT_VERSION = 1
_REQUIRED_FILES = ("meta.json", "commit.json", "zarr.json")
_OBS_CHUNK_BYTES = 4 << 20  # obs chunks of at most ~4 MB raw: 256 rows of 64x64x3 pixels


def check_zarr_local_store_is_atomic() -> None:
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


def obs_chunk_rows(obs_shape: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(obs_shape)) * dtype.itemsize)
    return int(np.clip(_OBS_CHUNK_BYTES // row_bytes, 16, 256))


def create_arrays(group: Any, obs_shape: tuple[int, ...], obs_dtype: np.dtype, action_dim: int,
                  state_dim: int | None) -> dict[str, Any]:
    """Create the empty arrays of a dataset in the zarr ``group``; returns ``meta.json``'s ``layout``.

    ``action_dim=0`` makes an action-free dataset (video without action labels): no ``action``
    array, and ``layout["has_actions"]`` is false so that readers know.
    """
    from zarr.codecs import BloscCodec, ZstdCodec

    obs_rows = obs_chunk_rows(obs_shape, obs_dtype)
    specs: dict[str, tuple[tuple[int, ...], Any, int]] = {
        "obs": (obs_shape, obs_dtype, obs_rows),
        "reward": ((), np.float64, 4096),
        "terminated": ((), np.bool_, 4096),
        "truncated": ((), np.bool_, 4096),
        "episode_start": ((), np.int64, 4096),
        "episode_steps": ((), np.int64, 4096),
        "episode_seed": ((), np.int64, 4096),
    }
    if action_dim > 0:
        specs["action"] = ((int(action_dim),), np.float32, 4096)
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
        group.create_array(name, shape=(0, *shape), chunks=(rows, *shape), dtype=dtype, compressors=codec,
                           fill_value=0)
    return {
        "obs_shape": list(obs_shape),
        "obs_dtype": obs_dtype.str,
        "action_dim": int(action_dim),
        "has_actions": action_dim > 0,
        "state_dim": None if state_dim is None else int(state_dim),
        "obs_chunk_rows": obs_rows,
    }


def dataset_meta(meta: dict[str, Any], layout: dict[str, Any]) -> dict[str, Any]:
    """``meta.json`` of a new dataset: the caller's ``meta`` plus format, date, versions and layout."""
    full = dict(meta)
    full.update(format_version=FORMAT_VERSION, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                versions=package_versions(), layout=layout)
    return full


def check_folder(path: Path) -> dict[str, Any]:
    """Refuse a folder that is not a dataset this version reads; returns its ``meta.json``."""
    if not path.is_dir():
        raise DatasetError(f"{path} is not a dataset: the folder does not exist")
    missing = [f for f in _REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        hint = (
            " (an interrupted create(); delete the folder and collect again)"
            if (path / "meta.json").is_file() and missing == ["commit.json"]
            else ""
        )
        raise DatasetError(f"{path} is not a Forethought dataset: missing {', '.join(missing)}{hint}")
    meta = read_json(path / "meta.json", what="a dataset's metadata", fix=FIX_DATA_JSON)
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise DatasetError(f"{path}/meta.json has no integer format_version")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{path} has dataset format_version {version}, newer than this forethought "
            f"understands ({FORMAT_VERSION}); upgrade forethought to read it"
        )
    return meta


def has_actions(meta: dict[str, Any]) -> bool:
    """Whether a dataset's ``meta.json`` says it stores actions (datasets written before the key do)."""
    return (meta.get("layout") or {}).get("has_actions", True) is not False


def check_arrays(path: Path, group: Any, meta: dict[str, Any] | None = None) -> None:
    needed = ("obs", "action", "reward") if meta is None or has_actions(meta) else ("obs", "reward")
    missing_arrays = [k for k in needed + INDEX_KEYS if k not in group]
    if missing_arrays:
        raise DatasetError(f"{path} is not a Forethought dataset: missing arrays {missing_arrays}")
