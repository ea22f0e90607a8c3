"""forethought.training: the trainer (single process and torchrun DDP), checkpoints, logging.

>>> from forethought.training import train
>>> train("data/tworoom", "runs/tworoom", preset="small")          # doctest: +SKIP
PosixPath('runs/tworoom/model')

`train` is what `forethought train` calls; `Trainer` is the model-agnostic loop underneath it.
"""

import importlib
from typing import Any

# Submodule of each public name: loaded on first access (PEP 562), so that importing
# `forethought.training.arguments` for the CLI does not import torch.
_LAZY = {
    "add_train_arguments": "arguments",
    "run_from_args": "api",
    "seed_everything": "api",
    "train": "api",
    "CheckpointError": "checkpoint",
    "latest_checkpoint": "checkpoint",
    "list_checkpoints": "checkpoint",
    "TrainConfig": "config",
    "read_metrics": "logging",
    "ResumableBatchSampler": "sampler",
    "warmup_cosine": "schedule",
    "NonFiniteLossError": "trainer",
    "Trainer": "trainer",
    "TrainResult": "trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"forethought.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'forethought.training' has no attribute {name!r}")


__all__ = sorted(_LAZY)
