"""Training checkpoints: written atomically, read without pickle.

Layout of a run folder's `ckpt/` directory::

    ckpt/step_0000500/          one complete checkpoint per saved step (the newest `keep` are kept)
        module.safetensors      weights and buffers of the trained module (model, EMA target, ...)
        optimizer.safetensors   AdamW moments and step counts, keyed `state.<param index>.<name>`
        optimizer.json          param groups and non-tensor state
        rng.safetensors         torch CPU (and CUDA) generator states, one set per DDP rank
        rng.json                numpy and python `random` states per rank
        trainer.json            step, data-sampler position, TrainConfig, format and forethought versions, and
                                the size and SHA-256 of every other file (written last)
    ckpt/.tmp-step_0000500-<id>/  a checkpoint being written (ignored by readers, removed on start)

A checkpoint is assembled in a temporary sibling folder, every file and the folder are fsynced, and
only then is the folder renamed into place with `os.replace`, so a crash leaves either the previous
checkpoints untouched or the new one complete, never half of one. Older checkpoints are pruned
only after the new one is in place. Loading uses `safetensors` and `json` only, never pickle.

`verify_checkpoint` checks a checkpoint without loading it: every file present, with the size and
SHA-256 recorded in `trainer.json` (checkpoints written before the record: each file's structure),
so a truncated or damaged file is found before any state changes. `--resume` uses it to fall back
to the newest checkpoint that verifies. Every damaged file is reported as a
`forethought._files.CorruptFileError` naming it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file, save_model

from forethought import __version__
from forethought._atomic import atomic_folder, remove_stale
from forethought._files import (CorruptFileError, check_safetensors, file_digest, load_safetensors_into, read_json,
                                read_safetensors, verify_digest)

FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d{7,})$")
DATA_FILES = ("module.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors", "rng.json")
FIX_CHECKPOINT = ("`forethought train --resume` skips a damaged checkpoint and continues from the newest one that "
                  "verifies; delete this one if no other is left")


class CheckpointError(ValueError):
    """A checkpoint folder is missing files, from another format version, or does not fit the module."""


@dataclass(frozen=True)
class RNGState:
    """Every random generator of one process: torch CPU (+ CUDA), numpy's global one, python `random`."""

    torch_cpu: torch.Tensor
    torch_cuda: tuple[torch.Tensor, ...]
    numpy: dict[str, Any]
    python: list[Any]

    @classmethod
    def capture(cls) -> RNGState:
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else ()
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        return cls(
            torch_cpu=torch.get_rng_state().clone(),
            torch_cuda=cuda,
            numpy={"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                   "cached_gaussian": float(cached)},
            python=[version, list(internal), gauss_next],
        )

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(self.torch_cuda))
        n = self.numpy
        np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
        version, internal, gauss_next = self.python
        random.setstate((version, tuple(internal), gauss_next))


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def list_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete checkpoints under `ckpt_root`, oldest first (temporary and incomplete folders skipped)."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / "trainer.json").is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def clean_stale(ckpt_root: str | Path) -> list[Path]:
    """Remove temporary folders left by a crash during a save; returns what was removed.

    Call only when no other process writes to this run (the trainer does so on start, on rank 0).
    """
    return remove_stale(ckpt_root)


def save_checkpoint(ckpt_root: str | Path, step: int, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    rng_states: list[RNGState], meta: dict[str, Any], *, keep: int = 2) -> Path:
    """Write checkpoint `step` atomically and prune all but the newest `keep`; returns its folder.

    `rng_states` holds one `RNGState` per DDP rank (index = rank). `meta` (JSON-ready) is stored in
    `trainer.json` together with `step` and the format version.
    """
    root = Path(ckpt_root)
    final = root / step_dir_name(step)
    with atomic_folder(final) as tmp:
        save_model(_unwrap(module), str(tmp / "module.safetensors"))
        opt_tensors, opt_json = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        _write_json(tmp / "optimizer.json", opt_json)
        rng_tensors: dict[str, torch.Tensor] = {}
        rng_json = []
        for rank, state in enumerate(rng_states):
            rng_tensors[f"rank{rank}.torch_cpu"] = state.torch_cpu
            for i, t in enumerate(state.torch_cuda):
                rng_tensors[f"rank{rank}.torch_cuda.{i}"] = t.cpu()
            rng_json.append({"numpy": state.numpy, "python": state.python, "num_cuda": len(state.torch_cuda)})
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        _write_json(tmp / "rng.json", rng_json)
        files = {name: {"bytes": (tmp / name).stat().st_size, "sha256": file_digest(tmp / name)} for name in DATA_FILES}
        # trainer.json last: a folder without it is never treated as a checkpoint.
        _write_json(tmp / "trainer.json", {"format_version": FORMAT_VERSION, "forethought_version": __version__,
                                           "step": step, **meta, "files": files})
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_meta(path: str | Path) -> dict[str, Any]:
    """`trainer.json` of a checkpoint folder, format-checked."""
    path = Path(path)
    meta_file = path / "trainer.json"
    if not meta_file.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no trainer.json)")
    meta = read_json(meta_file, what="a checkpoint's trainer state", fix=FIX_CHECKPOINT)
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')}, this forethought reads "
                              f"{FORMAT_VERSION}")
    return meta


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check every file of a checkpoint without loading it; returns its `trainer.json`.

    Files are checked against the size and SHA-256 recorded at save time (older checkpoints: each
    safetensors file's header against its size, each JSON file's syntax).

    Raises:
        CorruptFileError: a file is missing, truncated or damaged (the message names it).
        CheckpointError: not a checkpoint, or one of another format version.
    """
    path = Path(path)
    meta = read_meta(path)
    recorded = meta.get("files")
    for name in DATA_FILES:
        file = path / name
        if not file.is_file():
            raise CorruptFileError(file, "missing from the checkpoint", FIX_CHECKPOINT)
        if isinstance(recorded, dict) and isinstance(recorded.get(name), dict):
            verify_digest(file, int(recorded[name]["bytes"]), str(recorded[name]["sha256"]), fix=FIX_CHECKPOINT)
        elif name.endswith(".safetensors"):
            check_safetensors(file, fix=FIX_CHECKPOINT)
        else:
            read_json(file, fix=FIX_CHECKPOINT, expect=None)
    return meta


def load_checkpoint(path: str | Path, module: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> tuple[dict[str, Any], list[RNGState]]:
    """Load weights (strict) and optimizer state in place; returns `(trainer meta, per-rank RNG states)`.

    Only `safetensors` and `json` are read, each checked first (`forethought._files`): nothing in a
    checkpoint can execute code, and a damaged file raises `CorruptFileError` naming it.
    """
    path = Path(path)
    meta = read_meta(path)
    device = next(iter(_unwrap(module).state_dict().values()), torch.empty(0)).device
    missing, unexpected = load_safetensors_into(_unwrap(module), path / "module.safetensors", strict=False,
                                                device=str(device), fix=FIX_CHECKPOINT)
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit this model: missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]} (different preset or regularizer?)")
    if optimizer is not None:
        opt_json = read_json(path / "optimizer.json", fix=FIX_CHECKPOINT)
        opt_tensors = read_safetensors(path / "optimizer.safetensors", fix=FIX_CHECKPOINT)
        optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, opt_json))
    rng_tensors = read_safetensors(path / "rng.safetensors", fix=FIX_CHECKPOINT)
    states = []
    for rank, info in enumerate(read_json(path / "rng.json", fix=FIX_CHECKPOINT, expect=list)):
        cuda = tuple(rng_tensors[f"rank{rank}.torch_cuda.{i}"] for i in range(info["num_cuda"]))
        states.append(RNGState(rng_tensors[f"rank{rank}.torch_cpu"], cuda, info["numpy"], info["python"]))
    return meta, states


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into safetensors-ready tensors and a JSON-ready rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state_dict["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars, "tuple_keys": ["betas"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, values in data["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for group in data["param_groups"]:
        groups.append({k: tuple(v) if k in data["tuple_keys"] and isinstance(v, list) else v for k, v in group.items()})
    return {"state": state, "param_groups": groups}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
