"""Model folders: ``model.safetensors`` + ``config.json`` (+ ``normalization.json``). Never pickle.

Writes are atomic: the folder is written under a temporary name next to the target and renamed
into place, so a crash leaves either the old model or the new one, never half of each.
``config.json`` records the folder format, the model type, the Forethought and torch versions
that wrote it, and the config.

Reads validate before touching the weights (:func:`open_model_folder`): a missing file, a folder
that is not a Forethought model or a format newer than this code raise :class:`ModelFolderError`;
a damaged file (bad JSON, truncated safetensors, a pickle) :class:`~forethought._files.CorruptFileError`;
a config whose fields have wrong types, are missing or unknown
:class:`~forethought._schema.ConfigFileError`. All are ``ValueError`` s naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import Tensor

from forethought import __version__
from forethought._atomic import atomic_folder
from forethought._files import read_json, read_safetensors, written_by

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.json"
FIX_MODEL = ("Copy the model folder again from its source, or write it again (`forethought train`, or "
             "WorldModel.save_pretrained)")
C = TypeVar("C")


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
            "forethought_version": __version__,
            "model_type": model_type,
            "normalization": NORMALIZATION_FILE if normalization is not None else None,
            "torch_version": torch.__version__,
            "config": config,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if normalization is not None:
            (tmp / NORMALIZATION_FILE).write_text(json.dumps(normalization, indent=2, sort_keys=True) + "\n")
    return path


@dataclass(frozen=True)
class ModelFolder:
    """A model folder whose ``config.json`` (and ``normalization.json``) were read and checked.

    The weights are read on demand by :meth:`read_weights`, so a bad config is reported first.
    """

    path: Path
    model_type: str
    config: dict[str, Any]  # the "config" entry of config.json, not yet checked against a dataclass
    normalization: dict[str, Any] | None
    written_by: str  # "forethought 0.2.0", or a sentence for files that predate the record
    fix: str  # what to do about a bad file in this folder

    def parse_config(self, cls: type[C]) -> C:
        """``cls.from_dict`` of the config, each field checked; errors name config.json and who wrote it."""
        fix = f"Correct it in {CONFIG_FILE}, or {_lower_first(self.fix)}"
        return cls.from_dict(self.config, source=str(self.path / CONFIG_FILE),  # type: ignore[attr-defined]
                             written_by=self.written_by, fix=fix)

    def read_weights(self) -> dict[str, Tensor]:
        """The state dict in ``model.safetensors`` (checked first: truncated, pickle, ... are named)."""
        return read_safetensors(self.path / WEIGHTS_FILE, fix=self.fix)

    def load_into(self, module: torch.nn.Module) -> None:
        """Load the weights into ``module`` (strict); a shape or key mismatch becomes :meth:`weights_mismatch`."""
        try:
            module.load_state_dict(self.read_weights(), strict=True)
        except RuntimeError as e:
            raise self.weights_mismatch(str(e).strip().splitlines()[-1].strip()) from e

    def weights_mismatch(self, detail: str) -> ModelFolderError:
        """The error for weights that do not fit a valid config (the two files come from different models)."""
        return ModelFolderError(f"{self.path / WEIGHTS_FILE} does not match {CONFIG_FILE}: {detail}. The two files "
                                f"come from different models; {_lower_first(self.fix)}")


def run_subfolder(path: str | os.PathLike[str], name: str) -> Path:
    """The saved folder at ``path``: the folder itself, or ``path/name`` when ``path`` is the ``--out``
    folder of the command that wrote it (e.g. ``train-proposal`` writes ``OUT/proposal``)."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file() and (p / name / CONFIG_FILE).is_file():
        return p / name
    return p


def open_model_folder(path: str | os.PathLike[str], model_type: str, fix: str = FIX_MODEL) -> ModelFolder:
    """Validate a model folder's layout, ``config.json`` and ``normalization.json``; the weights are read later."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"no model folder at {path}")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFolderError(f"{path} is not a Forethought model folder: {CONFIG_FILE} is missing")
    meta = read_json(cfg_path, what="a model folder's config.json", fix=fix)
    if meta.get("model_type") != model_type:
        raise ModelFolderError(f"{path} holds model_type {meta.get('model_type')!r}, expected {model_type!r}")
    version = meta.get("format_version")
    by = written_by(meta)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFolderError(f"{cfg_path}: no integer format_version (written by {by}). {fix}")
    if version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{path} was saved in format v{version} by {by}, newer than this Forethought (v{FORMAT_VERSION}); "
            "upgrade forethought"
        )
    if "config" not in meta:
        raise ModelFolderError(f"{cfg_path}: no \"config\" entry (the model's architecture); the file was written by "
                               f"{by} and cut short or edited. {fix}")
    if not isinstance(meta["config"], dict):
        raise ModelFolderError(f"{cfg_path}: \"config\" must be a JSON object, got {json.dumps(meta['config'])[:60]} "
                               f"(written by {by}). {fix}")
    if not (path / WEIGHTS_FILE).is_file():
        raise ModelFolderError(f"{path} is incomplete: {WEIGHTS_FILE} is missing. {fix}")
    normalization = None
    if meta.get("normalization"):
        norm_path = path / meta["normalization"]
        if not norm_path.is_file():
            raise ModelFolderError(f"{path} is incomplete: {meta['normalization']} is missing. {fix}")
        normalization = read_json(norm_path, what="normalization statistics", fix=fix)
    return ModelFolder(path, model_type, meta["config"], normalization, by, fix)


def read_model_folder(
    path: str | os.PathLike[str], model_type: str
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any] | None]:
    """Validate and read a model folder: ``(config, state_dict, normalization or None)``."""
    folder = open_model_folder(path, model_type)
    return folder.config, folder.read_weights(), folder.normalization


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 (hex) over a module's state dict: names, shapes, dtypes and bytes, buffers included.

    Two modules with the same fingerprint compute the same function; a frozen part of an adapted
    model keeps its parent's fingerprint (``forethought adapt`` records both), and a part trained
    for one model (a draft, a proposal) names the fingerprint it was trained against.
    """
    digest = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _lower_first(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:]
