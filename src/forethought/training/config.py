"""`TrainConfig`: every knob of a training run, validated on creation, with named presets.

The presets match the model presets of the same name (`tiny` for tests, `small` for a laptop CPU,
`medium` for about an hour of 2 CPU cores, `base` for a GPU at LeWM scale). A run folder stores its `TrainConfig` as `train_config.json`;
`--resume` refuses to continue a run whose result-changing fields differ (see `RESUME_KEYS`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from forethought._schema import from_json_dict

REGULARIZERS = ("sigreg", "vicreg", "ema", "none")
PRESETS = ("tiny", "small", "medium", "base")

# Fields that may change between a run and its resumption without changing the result: how often
# to log, checkpoint or evaluate, how many loader workers, how many checkpoints to keep. Everything
# else (data order, schedule, model, loss) must match for `--resume` to continue exactly. `steps`
# may grow (with a warning: the cosine schedule is stretched, so the result differs from a run
# started with the larger `steps`).
RESUME_FREE_KEYS = frozenset({"log_every", "ckpt_every", "eval_every", "eval_batches", "num_workers",
                              "keep_checkpoints", "in_memory", "steps"})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. Counts are optimizer steps; batch sizes are global."""

    steps: int = 2000
    """Total optimizer steps."""
    batch_size: int = 64
    """Global batch (windows per step, summed over all DDP ranks); must divide by the world size."""
    lr: float = 3e-4
    """Peak learning rate of AdamW, reached at the end of the warm-up."""
    weight_decay: float = 1e-3
    """AdamW decoupled weight decay (applied to every parameter)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    warmup_steps: int = 100
    """Linear warm-up steps from 0 to `lr`, then cosine decay to `min_lr_ratio * lr` at `steps`."""
    min_lr_ratio: float = 0.0
    """Floor of the cosine decay as a fraction of `lr`."""
    grad_clip: float = 1.0
    """Max global gradient L2 norm; 0 disables clipping (the norm is still logged)."""
    bf16: bool = False
    """bfloat16 autocast for the forward pass (parameters and optimizer stay float32)."""
    ckpt_every: int = 500
    """Write a checkpoint every N steps (and at the end). 0 writes only the final one."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (oldest deleted only after a newer one is complete)."""
    log_every: int = 20
    """Log scalars (losses, lr, grad norm, samples/s) and collapse diagnostics every N steps."""
    eval_every: int = 500
    """Validation loss on held-out episodes every N steps (and at the end). 0 disables."""
    eval_batches: int = 8
    """Number of validation batches (always the same windows, in the same order)."""
    seed: int = 0
    """Seeds model init, data order and every RNG; the same seed gives the same run."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    in_memory: bool = True
    """Load the whole dataset into RAM (fast for small datasets) instead of reading zarr chunks."""
    history: int = 3
    """Frames the predictor conditions on (the model's context length)."""
    horizon: int = 1
    """Frames predicted after the history; a window has `history + horizon` frames."""
    frameskip: int = 5
    """Env steps per model step; a model action concatenates `frameskip` env actions."""
    regularizer: str = "sigreg"
    """Collapse regularizer: sigreg (LeWM default), vicreg, ema (stop-gradient target), none."""
    reg_weight: float | None = None
    """Weight lambda in `pred_loss + lambda * reg`; None = the regularizer's default (SIGReg: LeWM's 0.09)."""
    rollout_weight: float = 0.0
    """Weight of the multi-step open-loop rollout loss (needs horizon >= 2; 0 disables it)."""
    state_weight: float = 0.0
    """Weight of an auxiliary readout of the dataset's true state from every latent (privileged
    supervision: it teaches the encoder what the state is; say so wherever a model trained with it is
    reported). 0 disables it; the dataset must store states."""
    recon_weight: float = 0.0
    """Weight of a pixel reconstruction loss from every latent that trains the encoder too (a decoder
    is added to the model). Not privileged: the target is the observed frame. It keeps what the JEPA
    loss alone may drop (PushT's block). 0: no decoder."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation (at least one episode when > 0)."""

    def __post_init__(self) -> None:
        _positive_int(self, "steps", "batch_size", "history", "horizon", "frameskip", "eval_batches",
                      "keep_checkpoints")
        _nonnegative_int(self, "warmup_steps", "ckpt_every", "log_every", "eval_every", "seed", "num_workers")
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be < steps ({self.steps}); "
                             f"a warm-up of ~5% of the steps is typical")
        for name in ("lr", "weight_decay", "grad_clip", "reg_weight", "rollout_weight", "state_weight", "recon_weight",
                     "min_lr_ratio", "val_fraction"):
            value = getattr(self, name)
            if value is None and name == "reg_weight":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr == 0:
            raise ValueError("lr must be > 0 (try 3e-4)")
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.val_fraction >= 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}; 0.1 holds out 10% of episodes")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"Unknown regularizer {self.regularizer!r}; available: {', '.join(REGULARIZERS)}")
        if not isinstance(self.bf16, bool) or not isinstance(self.in_memory, bool):
            raise TypeError("bf16 and in_memory must be bools")

    @property
    def window(self) -> int:
        """Frames per training window, `history + horizon`."""
        return self.history + self.horizon

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The named preset (`tiny`, `small`, `medium`, `base`) with `overrides` applied (None values are ignored)."""
        if name not in _PRESETS:
            raise ValueError(f"Unknown training preset {name!r}; available: {', '.join(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"Unknown TrainConfig field(s) {unknown}; valid fields: {sorted(fields)}")
        values = {**_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = "") -> TrainConfig:
        """Inverse of `to_dict`, every field type-checked (`forethought._schema.from_json_dict`).

        Every field must be present and known (a missing one means a damaged file, an unknown one a
        newer or foreign one): `forethought._schema.ConfigFileError` (a ValueError) names the field,
        the expected type and the value, with `source`, `written_by` and `fix`.
        """
        if isinstance(data, dict):
            data = {"state_weight": 0.0, "recon_weight": 0.0, **data}  # written before these fields existed
        return from_json_dict(cls, data, source=source, written_by=written_by, fix=fix)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def resume_mismatches(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Result-changing fields where `self` and `other` differ: `{name: (self_value, other_value)}`."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in RESUME_FREE_KEYS and a[k] != b[k]}


def _positive_int(cfg: TrainConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _nonnegative_int(cfg: TrainConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")


# Why these numbers: `tiny` runs in seconds in tests (few steps, small batch, short windows);
# `small` is a few minutes of a laptop CPU; `medium` about an hour of 2 CPU cores (bench/train.py
# measures its samples/s; 8,000 steps of 32 windows); `base` follows LeWM (history 3, one predicted frame,
# frameskip 5, AdamW, warm-up + cosine) at GPU batch sizes.
_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=60, batch_size=8, lr=1e-3, warmup_steps=5, ckpt_every=20, log_every=5, eval_every=20,
                 eval_batches=2, history=3, horizon=1, frameskip=1),
    "small": dict(steps=3000, batch_size=32, lr=5e-4, warmup_steps=150, ckpt_every=500, log_every=25,
                  eval_every=250, eval_batches=8, history=3, horizon=1, frameskip=5),
    "medium": dict(steps=8000, batch_size=32, lr=5e-4, warmup_steps=300, ckpt_every=500, log_every=25,
                   eval_every=500, eval_batches=8, history=3, horizon=1, frameskip=5),
    "base": dict(steps=100_000, batch_size=128, lr=3e-4, warmup_steps=2000, ckpt_every=5000, log_every=100,
                 eval_every=2500, eval_batches=32, history=3, horizon=1, frameskip=5, num_workers=4),
}
