"""The `forethought run` options, generated from `RunConfig`, `MPCConfig` and `UpdateConfig` without torch."""

from __future__ import annotations

import argparse

from forethought._config_cli import add_config_arguments, config_from_args
from forethought.evaluation.config import MPCConfig
from forethought.online.config import RunConfig, UpdateConfig

RUN_EPILOG = """examples:
  forethought run --model runs/tworoom --memory runs/online-weak --episodes 100 --update surprise \\
      --change-at 20 --change-action-scale 0.3              # the motor weakens at episode 20
  forethought run --model runs/tworoom --memory runs/online-off --episodes 100 --update off \\
      --change-at 20 --change-action-scale 0.3              # the same world, no updates (the control)
  forethought run --model runs/tworoom --memory runs/online-door --episodes 100 \\
      --change-at 20 --change-kwargs '{"door_center": 52}'  # the door moves
  forethought run --model runs/tworoom --memory runs/online-weak --episodes 100 --resume   # after a kill
  forethought run --model runs/tworoom --memory runs/rt --episodes 50 --decision-ms 100   # 100 ms per decision

Each episode starts a task (as `eval`: a held-out start and the state --goal-offset steps later),
shows the agent the goal image and runs --budget env steps; success is judged afterwards from the
true state. The agent plans with its model, remembers every episode in MEMORY/memory (a crash-safe
episode store), watches calibrated surprise with a CUSUM detector, and, with --update surprise,
fine-tunes its predictor on recent + replayed memory when surprise stays high, keeping the new
weights only if held-out prediction error went down.

writes: MEMORY/summary.json (success per block, updates, every episode), episodes.jsonl,
updates.jsonl, models/vNNNN/ (model versions), state.json (the version in use), cusum.json."""


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought run` options: one per field of `RunConfig`, `MPCConfig` and `UpdateConfig`."""
    parser.epilog = RUN_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, RunConfig)
    add_config_arguments(parser.add_argument_group("planning (MPCConfig)"), MPCConfig)
    add_config_arguments(parser.add_argument_group("updates (UpdateConfig)"), UpdateConfig)
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[RunConfig, MPCConfig, UpdateConfig]:
    """The validated configs the parsed options describe."""
    run = config_from_args(RunConfig, args)
    return (run, config_from_args(MPCConfig, args, seed=run.seed),
            config_from_args(UpdateConfig, args, trigger=run.update, seed=run.seed))
