"""The `forethought eval` options, built without importing torch so `forethought --help` stays fast.

`add_eval_arguments(parser)` adds them; `forethought.evaluation.runner.run_eval(args)` runs them.
"""

from __future__ import annotations

import argparse

PLANNERS = ("cem", "mppi", "gradient", "random")

EVAL_EPILOG = """examples:
  forethought eval --model runs/tworoom --planner cem --episodes 50 --out reports/tworoom
  forethought eval --model runs/tworoom --planner mppi --samples 128 --iterations 5 --out reports/mppi
  forethought eval --model runs/tworoom --sweep --out reports/scaling        # success vs samples x iterations
  forethought eval --model runs/tworoom --goal-source env --out reports/env  # env-sampled goals
  forethought eval --model runs/tworoom --noise-beta 3 --out reports/smooth  # smooth (colored) CEM samples
  forethought eval --model runs/pusht --skip-solved --out reports/pusht      # drop tasks solved at the start
  forethought eval --model runs/tworoom --draft runs/tworoom/draft --epsilon 0.03 --out reports/spec
                                                  # candidates rolled out speculatively (forethought distill)

Start and goal come from held-out episodes of the training run (run.json), the goal --goal-offset
env steps ahead of the start in the same episode. Every episode runs the full --budget of env
steps; success is judged once, from the true simulator state, after the last step. A random policy
is evaluated on the same tasks as a baseline.

writes: OUT/report.json, OUT/report.md, OUT/episodes.gif, OUT/sweep.png (with --sweep)"""


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought eval` options to `parser` (use with `run_eval`)."""
    parser.epilog = EVAL_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="run folder (with model/ and run.json) or a model folder")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--env", default=None, help="environment id (default: the dataset's)")
    parser.add_argument("--env-kwargs", default=None,
                        help="JSON object of env kwargs (default: the dataset's, e.g. image_size)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the one in the run's run.json)")
    parser.add_argument("--planner", choices=PLANNERS, default="cem", help="planner (default cem)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes (default 50)")
    parser.add_argument("--goal-source", choices=("dataset", "env"), default="dataset",
                        help="dataset: goal = the held-out episode's state --goal-offset steps later (default); "
                             "env: random start and env-sampled goal")
    parser.add_argument("--goal-offset", type=int, default=25, help="env steps from start to goal (default 25)")
    parser.add_argument("--skip-solved", action="store_true",
                        help="keep only tasks whose start does not already satisfy the env's success test against "
                             "the goal (PushT: the block often does not move in 25 steps of data); the counts of "
                             "kept/dropped tasks go to report.json")
    parser.add_argument("--budget", type=int, default=50, help="env steps per episode (default 50)")
    parser.add_argument("--samples", type=int, default=None, help="candidates per planning iteration")
    parser.add_argument("--iterations", type=int, default=None, help="planner iterations per decision")
    parser.add_argument("--horizon", type=int, default=None, help="planning horizon in model steps")
    parser.add_argument("--receding", type=int, default=None, help="model steps executed before replanning")
    parser.add_argument("--cost", choices=("l2", "l1"), default="l2",
                        help="latent distance to the goal: l2 (squared, LeWM) or l1 (V-JEPA 2-AC)")
    parser.add_argument("--reduce", choices=("sum", "last"), default="sum",
                        help="sum the distance over the horizon (arrive early and stay; TwoRoom 82%% vs 50%% "
                             "for last at CEM 100x10) or score only the last predicted step")
    parser.add_argument("--terminal-weight", type=float, default=0.0,
                        help="with --reduce sum: add this multiple of the last step's distance (default 0)")
    parser.add_argument("--noise-beta", type=float, default=0.0,
                        help="cem/mppi: colored sampling noise over env steps, power 1/f^beta (iCEM); 0 = white "
                             "(default), 2-3 = smooth samples that keep a direction")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the planner's rollouts")
    parser.add_argument("--batch", type=int, default=50, help="episodes planned together (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of tasks, envs and planner (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--sweep", action="store_true",
                        help="also sweep the planning budget (samples x iterations) and plot success against it")
    parser.add_argument("--sweep-pairs", default=None,
                        help="samples x iterations pairs for --sweep, e.g. '16x1,32x3,64x5' (default: a 5-point ladder)")
    parser.add_argument("--gif-episodes", type=int, default=4, help="episodes shown in episodes.gif (0: none)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the random-policy baseline")
    parser.add_argument("--surprise", choices=("off", "observe", "replan"), default="off",
                        help="watch every model frame with the model's surprise calibration (forethought "
                             "surprise-calibrate) and report the alarm rate; replan: an alarm also makes the "
                             "agent plan again at once (default off)")
    parser.add_argument("--draft", default=None,
                        help="a draft folder (forethought distill): roll the candidates out speculatively, to "
                             "measure what speculation does to success (slower at planning's batch sizes; float32)")
    parser.add_argument("--epsilon", type=float, default=0.03,
                        help="with --draft: per-step tolerance relative to the draft's latent scale (default 0.03)")
    parser.add_argument("--gamma", type=int, default=4, help="with --draft: drafted steps per round (default 4)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser
