"""forethought.training: the trainer (single process and torchrun DDP), checkpoints, logging.

>>> from forethought.training import train
>>> train("data/tworoom", "runs/tworoom", preset="small")          # doctest: +SKIP
PosixPath('runs/tworoom/model')

`train` is what `forethought train` calls; `Trainer` is the model-agnostic loop underneath it.
"""

from forethought._lazy import lazy_exports

# Loaded on first access, so that importing `forethought.training.arguments` for the CLI
# does not import torch.
_EXPORTS = {
    "add_train_arguments": "forethought.training.arguments",
    "run_from_args": "forethought.training.api",
    "seed_everything": "forethought.training.api",
    "train": "forethought.training.api",
    "CheckpointError": "forethought.training.checkpoint",
    "latest_checkpoint": "forethought.training.checkpoint",
    "list_checkpoints": "forethought.training.checkpoint",
    "TrainConfig": "forethought.training.config",
    "pretrain": "forethought.training.pretrain",
    "train_from_init": "forethought.training.stage2",
    "read_metrics": "forethought.training.logging",
    "RunPaths": "forethought.training.run_folder",
    "held_out_episodes": "forethought.training.run_folder",
    "ResumableBatchSampler": "forethought.training.sampler",
    "warmup_cosine": "forethought.training.schedule",
    "NonFiniteLossError": "forethought.training.trainer",
    "Trainer": "forethought.training.trainer",
    "TrainResult": "forethought.training.trainer",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
