"""The `forethought eval` options, generated from `EvalConfig` and `MPCConfig` without importing torch.

`add_eval_arguments(parser)` adds them; `forethought.evaluation.runner.run_eval_from_args(args)` runs them.
"""

from __future__ import annotations

import argparse

from forethought._config_cli import add_config_arguments, config_from_args
from forethought.evaluation.config import EvalConfig, MPCConfig

EVAL_EPILOG = """examples:
  forethought eval --model runs/tworoom --planner cem --episodes 50 --out reports/tworoom
  forethought eval --model runs/tworoom --bf16 --compile --out reports/fast  # bf16, torch.compile'd rollouts
  forethought eval --model runs/tworoom --planner mppi --samples 128 --iterations 5 --out reports/mppi
  forethought eval --model runs/tworoom --sweep --out reports/scaling        # success vs samples x iterations
  forethought eval --model runs/tworoom --goal-source env --out reports/env  # env-sampled goals
  forethought eval --model runs/tworoom --goal-source env --budget 100 --subgoals graph --out reports/far
                                                  # far goals: subgoals on a graph over the training data's latents
  forethought eval --model runs/tworoom --noise-beta 3 --out reports/smooth  # smooth (colored) CEM samples
  forethought eval --model runs/pusht --skip-solved --out reports/pusht      # drop tasks solved at the start
  forethought eval --model runs/tworoom --decision-ms 100 --batch 1 --out reports/rt   # 100 ms per decision, anytime
  forethought eval --model runs/tworoom --draft runs/tworoom/draft --epsilon 0.03 --out reports/spec
                                                  # candidates rolled out speculatively (forethought distill)
  forethought eval --model runs/tworoom --planner ssr --proposal runs/tworoom_proposal --samples 256 --out reports/ssr
                                                  # sample-score-rank over a diffusion proposal (train-proposal)
  forethought eval --model runs/tworoom --dynamics runs/tworoom_dyn --planner ssr --proposal runs/tworoom_proposal \
      --out reports/dmpc                          # candidates rolled out by diffusion dynamics (train-dynamics)

Start and goal come from held-out episodes of the training run (run.json), the goal --goal-offset
env steps ahead of the start in the same episode. Every episode runs the full --budget of env
steps; success is judged once, from the true simulator state, after the last step. A random policy
is evaluated on the same tasks as a baseline.

The model must fit the env: its env id, observation shape and action dimension are checked
against the env's (--force overrides a differing env id only). The env must honour the reset
contract (forethought/envs/protocols.py): each task is set with
env.reset(seed=..., options={"state": start, "goal_state": goal}) and checked after the reset.

writes: OUT/report.json, OUT/report.md, then OUT/episodes.gif (pixel observations) or
OUT/episodes.png (vector observations) and OUT/sweep.png (with --sweep); a figure that fails is
skipped with a note. OUT must be new or empty unless --overwrite; it is replaced as a whole."""


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought eval` options to `parser`: one per field of `EvalConfig` and `MPCConfig`."""
    parser.epilog = EVAL_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, EvalConfig)
    add_config_arguments(parser.add_argument_group("planning (MPCConfig)"), MPCConfig)
    return parser


def eval_config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The `EvalConfig` the parsed options describe (validated)."""
    return config_from_args(EvalConfig, args, mpc=config_from_args(MPCConfig, args, seed=args.seed))
