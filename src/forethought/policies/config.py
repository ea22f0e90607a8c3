"""`PolicyTrainConfig`: one `forethought train-policy` run, and its command-line options (no torch here).

The options are generated from the fields (:mod:`forethought._config_cli`), so each default and help
text lives once; a library user builds the same dataclass and calls
:func:`forethought.policies.train_policy.train_policy`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from forethought._config_cli import add_config_arguments, config_from_args

METHODS = ("gcbc", "gciql", "gcivl", "imagination")
PRESETS = ("tiny", "small", "base")

TRAIN_POLICY_EPILOG = """examples:
  forethought train-policy --method gcbc --model runs/tworoom --out runs/tworoom-gcbc
  forethought train-policy --method gcivl --model runs/tworoom --out runs/tworoom-gcivl --steps 6000
  forethought train-policy --method imagination --model runs/tworoom --out runs/tworoom-dyna
  forethought train-policy --method gcbc --data data/tworoom --preset small --out runs/gcbc-alone
  forethought train-policy --method gcbc --init runs/tworoom-gcbc --data data/tworoom-changed --episodes 30 \
      --steps 500 --out runs/tworoom-gcbc-adapted                   # fine-tune on 30 episodes of new data
  forethought eval --model runs/tworoom-gcbc --out reports/tworoom-gcbc      # the policy acts alone
  forethought eval --model runs/tworoom --warm-start runs/tworoom-dyna/model --out reports/cem-warm

--model RUN (a `forethought train` run folder) makes the comparison fair: the policy trains on the
run's dataset, its training episodes (the held-out ones stay held out, so `eval` draws the same
tasks), its frameskip, its normalization statistics and its encoder architecture. The imagination
policy needs it: it trains through that model's frozen encoder and predictor, never stepping an env.
Without --model, or with --data other than the run's, the split is the one `forethought train` makes
(of the first --episodes episodes) with the same --val-fraction and --seed.

writes: OUT/model/ (the policy: model.safetensors, config.json, normalization.json), OUT/run.json,
OUT/metrics.jsonl, OUT/tb/ (TensorBoard), OUT/ckpt/ (resumable with --resume)."""


@dataclass(frozen=True)
class PolicyTrainConfig:
    """What `forethought train-policy` trains, on what, and how long."""

    method: str = field(metadata={
        "help": "gcbc (goal-conditioned behaviour cloning), gciql (implicit Q-learning + AWR), gcivl (value-only "
                "IQL + AWR), imagination (trained through a frozen world model, Dyna)", "choices": METHODS})
    out: str = field(metadata={"help": "run folder to write (the policy goes to OUT/model)"})
    data: str | None = field(default=None, metadata={"help": "dataset folder (default: the --model run's)"})
    model: str | None = field(default=None, metadata={
        "help": "a world-model run folder: its split, frameskip, statistics and encoder architecture are copied; "
                "the imagination policy trains through it (required there)"})
    init: str | None = field(default=None, metadata={
        "help": "start from this trained policy (a policy run or folder of the same architecture): fine-tuning, "
                "e.g. on a few episodes of changed dynamics (value heads of gciql/gcivl start fresh)"})
    preset: str = field(default="small", metadata={
        "help": "encoder and training preset when there is no --model: tiny (tests), small (laptop CPU), base (GPU)",
        "choices": PRESETS})
    steps: int | None = field(default=None, metadata={"help": "optimizer steps (default: the preset's)"})
    batch_size: int | None = field(default=None, metadata={"help": "samples per step (default: the preset's)"})
    lr: float | None = field(default=None, metadata={"help": "peak learning rate of AdamW (default: the preset's)"})
    frameskip: int | None = field(default=None, metadata={
        "help": "env steps per policy action (default: the --model's, else the preset's)"})
    hidden: int = field(default=256, metadata={"help": "width of the action (and value) heads"})
    depth: int = field(default=2, metadata={"help": "hidden layers of the action (and value) heads"})
    goal_discount: float | None = field(default=None, metadata={
        "help": "gcbc: hindsight goals m >= 1 model steps ahead with m geometric, P(m) ~ d^(m-1) (mean 1 / (1 - d)), "
                "to train on the goal distances you will ask for (default: uniform over the rest of the episode)"})
    discount: float = field(default=0.95, metadata={"help": "gciql/gcivl: discount per model step"})
    expectile: float = field(default=0.9, metadata={"help": "gciql/gcivl: expectile of the value regression"})
    temperature: float = field(default=3.0, metadata={"help": "gciql/gcivl: AWR inverse temperature alpha"})
    horizon: int = field(default=5, metadata={"help": "imagination: imagined model steps per sample"})
    support_weight: float = field(default=1.0, metadata={
        "help": "imagination: weight of the hinge keeping actions in the data's action range"})
    bc_weight: float = field(default=0.1, metadata={
        "help": "imagination: weight of the pull toward the data's action on hindsight goals"})
    episodes: int | None = field(default=None, metadata={
        "help": "train on the first N episodes of the dataset only (a data-efficiency curve, or fine-tuning on 10 / "
                "30 / 100 play episodes); with --model and its own dataset, the run's training episodes among them"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "held-out episodes without --model (the same split as `forethought train`'s)"})
    seed: int = field(default=0, metadata={"help": "seed of the initialisation, data order and goals"})
    ckpt_every: int | None = field(default=None, metadata={
        "help": "checkpoint every N steps, 0: only at the end (default: the preset's)"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    in_memory: bool = field(default=True, metadata={
        "help": "stream pixels from zarr instead of loading them into RAM", "flag": "--no-in-memory"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})
    resume: bool = field(default=False, metadata={"help": "continue the newest checkpoint in --out"})
    progress: bool = field(default=True, metadata={"help": "no progress bar", "flag": "--no-progress"})
    tensorboard: bool = field(default=True, metadata={"help": "write metrics.jsonl only", "flag": "--no-tensorboard"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"--method: unknown method {self.method!r}; available: {', '.join(METHODS)}")
        if self.method == "imagination" and self.model is None:
            raise ValueError("--model: the imagination policy trains through a world model; pass the run folder of "
                             "`forethought train` (e.g. --model runs/tworoom)")
        if self.data is None and self.model is None:
            raise ValueError("--data: no dataset; pass --data DATA (or --model RUN to use the run's dataset)")
        if self.ckpt_every is not None and self.ckpt_every < 0:
            raise ValueError(f"--ckpt-every must be >= 0, got {self.ckpt_every}")
        for name in ("steps", "batch_size", "frameskip", "episodes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.hidden < 1 or self.depth < 1 or self.horizon < 1:
            raise ValueError(f"--hidden, --depth and --horizon must be >= 1, got {self.hidden}, {self.depth}, "
                             f"{self.horizon}")
        if self.goal_discount is not None and (self.method != "gcbc" or not 0 < self.goal_discount < 1):
            raise ValueError(f"--goal-discount applies to --method gcbc and must be in (0, 1), got {self.goal_discount}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


def add_train_policy_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought train-policy` options (one per field of `PolicyTrainConfig`)."""
    parser.epilog = TRAIN_POLICY_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, PolicyTrainConfig)
    return parser


def run_train_policy_from_args(args: argparse.Namespace) -> int:
    """`forethought train-policy`: the parsed options -> :func:`~forethought.policies.train_policy.train_policy`."""
    from forethought.policies.train_policy import train_policy

    path = train_policy(config_from_args(PolicyTrainConfig, args))
    print(f"policy saved to {path}")
    return 0
