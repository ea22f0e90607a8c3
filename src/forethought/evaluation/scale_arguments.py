"""`ScaleConfig` and the `forethought scale` options (no torch: `--help` stays fast)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from forethought._config_cli import add_config_arguments, config_from_args, parse_json_object

CONFIGS = ("eager", "fp32", "bf16", "compiled", "compiled-bf16", "speculative")
DEFAULT_CONFIGS = "fp32,bf16,compiled-bf16"
DEFAULT_PAIRS = "16x1,32x3,64x5,128x10,300x30"
DEFAULT_BUDGETS_MS = "20,50,100,200,500"


@dataclass(frozen=True)
class ScaleConfig:
    """One `forethought scale` run: which planner configurations, which compute and time budgets."""

    model: str = field(metadata={"help": "run folder (with model/ and run.json) or a model folder"})
    out: str = field(metadata={"help": "folder to write scale.json and scale.png into"})
    configs: str = field(default=DEFAULT_CONFIGS, metadata={
        "help": f"planner configurations, comma-separated, of: {', '.join(CONFIGS)} (eager: the reference rollout "
                "that repeats the history per candidate; fp32: the KV-cached rollout; speculative needs --draft)"})
    pairs: str = field(default=DEFAULT_PAIRS, metadata={
        "help": "compute axis: samples x iterations per decision, e.g. '16x1,64x5' (iterations run in full)"})
    decision_ms: str = field(default=DEFAULT_BUDGETS_MS, metadata={
        "help": "time axis: wall-clock budgets per decision in ms, e.g. '20,100,500' (anytime planning with "
                "--samples candidates and up to --max-iterations iterations; overruns counted)"})
    samples: int = field(default=300, metadata={"help": "candidates per iteration on the time axis"})
    max_iterations: int = field(default=1000, metadata={"help": "iteration cap on the time axis"})
    planner: str = field(default="cem", metadata={"help": "sampling planner", "choices": ("cem", "mppi")})
    horizon: int = field(default=5, metadata={"help": "planning horizon in model steps"})
    env: str | None = field(default=None, metadata={"help": "environment id (default: the dataset's)"})
    env_kwargs: dict[str, Any] | None = field(default=None, metadata={
        "help": "JSON object of env kwargs (default: the dataset's)", "type": str})
    data: str | None = field(default=None, metadata={"help": "dataset folder (default: the run's)"})
    episodes: int = field(default=20, metadata={"help": "tasks per point (the same tasks at every point)"})
    goal_source: str = field(default="dataset", metadata={"help": "as in eval", "choices": ("dataset", "env")})
    goal_offset: int = field(default=25, metadata={"help": "as in eval: env steps from start to goal"})
    budget: int = field(default=50, metadata={"help": "env steps per episode"})
    batch: int = field(default=1, metadata={
        "help": "episodes planned together (1: one agent, so a decision's wall clock is one agent's latency)"})
    draft: str | None = field(default=None, metadata={"help": "a draft folder (forethought distill), for speculative"})
    seed: int = field(default=0, metadata={"help": "seed of tasks, envs and planner"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty --out folder"})
    progress: bool = field(default=True, metadata={"help": "no progress lines", "flag": "--quiet"})

    def __post_init__(self) -> None:
        for name in ("episodes", "budget", "batch", "samples", "max_iterations", "horizon", "goal_offset"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        unknown = [c for c in self.config_list if c not in CONFIGS]
        if unknown or not self.config_list:
            raise ValueError(f"--configs: unknown {unknown or 'none given'}; available: {', '.join(CONFIGS)}")
        if "speculative" in self.config_list and self.draft is None:
            raise ValueError("--configs speculative needs --draft (a draft folder from `forethought distill`)")
        self.budgets_ms  # validated here, not after an hour of evaluation
        if isinstance(self.env_kwargs, str):
            object.__setattr__(self, "env_kwargs", parse_json_object(self.env_kwargs))

    @property
    def config_list(self) -> list[str]:
        return [c.strip() for c in self.configs.split(",") if c.strip()]

    @property
    def budgets_ms(self) -> list[float]:
        try:
            values = [float(v) for v in self.decision_ms.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--decision-ms: expected milliseconds like '20,100,500', got {self.decision_ms!r}") from None
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"--decision-ms: give budgets > 0 ms, got {self.decision_ms!r}")
        return values


SCALE_EPILOG = """examples:
  forethought scale --model runs/tworoom --out reports/scale                    # fp32, bf16, compiled bf16
  forethought scale --model runs/pusht --out reports/scale-pusht --episodes 50 --decision-ms 20,50,100,200,500
  forethought scale --model runs/tworoom --out reports/s --configs eager,fp32 --pairs 16x1,64x5,300x30

Two curves per configuration on the same tasks: success against planning compute (samples x
iterations x horizon predictor steps per decision, iterations run in full) and against the
wall-clock budget of a decision (anytime planning: as many iterations as fit; a late decision
takes the previous plan's next action). With --batch 1 a decision is one agent's latency.

writes: OUT/scale.json (every point: success, CI, decision time, iterations run, overruns) and
OUT/scale.png (both curves; skipped with a note when matplotlib is missing)."""


def add_scale_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog = SCALE_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, ScaleConfig)
    return parser


def run_scale_from_args(args: argparse.Namespace) -> int:
    from forethought.evaluation.scale import run_scale

    run_scale(config_from_args(ScaleConfig, args))
    return 0
