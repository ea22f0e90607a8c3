"""Model folders: ``model.safetensors`` + ``config.json`` (+ ``normalization.json``). Never pickle.

Writes are atomic: the folder is written under a temporary name next to the target and renamed
into place, so a crash leaves either the old model or the new one, never half of each. Reads
validate before touching the weights: a missing file, a folder that is not a Forethought model,
or a format newer than this code each raise :class:`ModelFolderError` saying what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from forethought._atomic import atomic_folder

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.json"


class ModelFolderError(ValueError):
    """A model folder is missing, foreign, incomplete or from a newer format."""


def write_model_folder(
    path: str | os.PathLike[str],
    model_type: str,
    config: dict[str, Any],
    state_dict: dict[str, Tensor],
    normalization: dict[str, Any] | None,
) -> Path:
    """Write a model folder at ``path`` atomically and return it.

    An existing folder is replaced only if it is itself a model folder (or empty); anything else
    is left alone and raises, so a typo cannot wipe a dataset.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ModelFolderError(f"{path} exists and is not a folder; choose another path")
        if any(path.iterdir()) and not (path / CONFIG_FILE).is_file():
            raise ModelFolderError(f"{path} is a non-empty folder that is not a model folder; refusing to replace it")
    with atomic_folder(path) as tmp:
        # safetensors refuses non-contiguous and shared tensors; clone detaches them from the module.
        tensors = {k: v.detach().contiguous().cpu().clone() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        meta = {
            "format_version": FORMAT_VERSION,
            "model_type": model_type,
            "normalization": NORMALIZATION_FILE if normalization is not None else None,
            "torch_version": torch.__version__,
            "config": config,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if normalization is not None:
            (tmp / NORMALIZATION_FILE).write_text(json.dumps(normalization, indent=2, sort_keys=True) + "\n")
    return path


def read_model_folder(
    path: str | os.PathLike[str], model_type: str
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any] | None]:
    """Validate and read a model folder: ``(config, state_dict, normalization or None)``."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"no model folder at {path}")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFolderError(f"{path} is not a Forethought model folder: {CONFIG_FILE} is missing")
    try:
        meta = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{cfg_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("model_type") != model_type:
        found = meta.get("model_type") if isinstance(meta, dict) else None
        raise ModelFolderError(f"{path} holds model_type {found!r}, expected {model_type!r}")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelFolderError(f"{cfg_path} has no integer format_version")
    if version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{path} was saved in format v{version}, newer than this Forethought (v{FORMAT_VERSION}); upgrade forethought"
        )
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFolderError(f"{path} is incomplete: {WEIGHTS_FILE} is missing")
    normalization = None
    if meta.get("normalization"):
        norm_path = path / meta["normalization"]
        if not norm_path.is_file():
            raise ModelFolderError(f"{path} is incomplete: {meta['normalization']} is missing")
        normalization = json.loads(norm_path.read_text())
    return meta["config"], load_file(str(weights)), normalization
