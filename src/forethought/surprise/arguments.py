"""Options of `forethought surprise-calibrate`, `surprise-eval` and `surprise`, without importing torch.

Each `add_*_arguments(parser)` adds one command's options; `forethought.surprise.runner` runs them.
"""

from __future__ import annotations

import argparse

PERTURBATION_NAMES = ("teleport", "door_closed", "door_moved", "wall_removed", "action_scale", "broken_actuator",
                      "colour_shift", "occluder")  # forethought.surprise.perturbations.PERTURBATIONS (no torch here)

CALIBRATE_EPILOG = """examples:
  forethought surprise-calibrate --model runs/tworoom
  forethought surprise-calibrate --model runs/tworoom --steps 1 3 --fpr 0.005 --generate 200

Fits the per-dimension spread of embeddings and one alarm threshold per surprise horizon (--steps)
on in-distribution clips: the run's held-out episodes (run.json), plus --generate fresh episodes
collected with the dataset's own policy. Half the clips choose the threshold (the 1 - FPR quantile
of per-frame scores), the other half measure the false-alarm rate it really gives.

writes: MODEL/surprise.safetensors (next to model.safetensors)"""

EVAL_EPILOG = """examples:
  forethought surprise-eval --model runs/tworoom --out reports/surprise
  forethought surprise-eval --model runs/tworoom --perturbations teleport door_closed --pairs 100 --out reports/s

For every perturbation, --pairs episodes are generated with the environment twice from the same
seed and actions, once normal and once perturbed at --event-frame. Reported: AUROC and FPR at 95%%
TPR of the largest surprise in the --window frames from the event on; detection delay (model steps
from the event to the first alarm); false alarms on normal clips. Then violation of expectation:
pairwise accuracy of possible vs impossible clips (teleport, passing through a wall).
Needs a calibrated model (forethought surprise-calibrate).

writes: OUT/report.json, OUT/report.md, OUT/timeline_<perturbation>.png"""

PLOT_EPILOG = """examples:
  forethought surprise --model runs/tworoom --episode 3 --out reports/surprise_ep3.png       # a dataset episode
  forethought surprise --model runs/tworoom --perturbation teleport --seed 1 --out reports/teleport.png

Draws the surprise of every model frame under the frames, with the alarm threshold (when the model
is calibrated) and, for --perturbation, the first perturbed frame; the same episode without the
perturbation is drawn beside it for comparison."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="run folder (with model/ and run.json) or a model folder")
    parser.add_argument("--data", default=None, help="dataset folder (default: the one in the run's run.json)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--env", default=None, help="environment id (default: the dataset's)")
    parser.add_argument("--env-kwargs", default=None, help="JSON object of env kwargs (default: the dataset's)")
    parser.add_argument("--force", action="store_true",
                        help="run the model on an env with another id than the one it was trained on (observation "
                             "and action spaces must still match); the warning goes into the report")


def _env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=1, help="surprise horizon k in model steps (default 1)")
    parser.add_argument("--score", choices=("whitened", "diag"), default="whitened",
                        help="residual normalization: whitened (Mahalanobis w.r.t. in-distribution residuals, "
                             "default) or diag (per-dimension spread of embeddings)")
    parser.add_argument("--frames", type=int, default=20, help="model frames per generated clip (default 20)")
    parser.add_argument("--event-frame", type=int, default=8, help="first perturbed model frame (default 8)")


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog, parser.formatter_class = CALIBRATE_EPILOG, argparse.RawDescriptionHelpFormatter
    _common(parser)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3],
                        help="surprise horizons to calibrate, in model steps (default: 1 3)")
    parser.add_argument("--fpr", type=float, default=0.01,
                        help="target false-alarm rate per in-distribution frame (default 0.01)")
    parser.add_argument("--generate", type=int, default=0,
                        help="also generate this many fresh in-distribution episodes with the env and the "
                             "dataset's policy (default 0: held-out dataset episodes only)")
    return parser


def add_surprise_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog, parser.formatter_class = EVAL_EPILOG, argparse.RawDescriptionHelpFormatter
    _common(parser)
    _env(parser)
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--perturbations", nargs="+", choices=PERTURBATION_NAMES, default=list(PERTURBATION_NAMES),
                        help="perturbations to test (default: all)")
    parser.add_argument("--pairs", type=int, default=50, help="normal/perturbed episode pairs each (default 50)")
    parser.add_argument("--window", type=int, default=3,
                        help="frames from the event on that count for AUROC and 'detected in time' (default 3)")
    parser.add_argument("--voe-pairs", type=int, default=50,
                        help="possible/impossible clip pairs per violation kind; 0 skips it (default 50)")
    parser.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")
    return parser


def add_surprise_plot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog, parser.formatter_class = PLOT_EPILOG, argparse.RawDescriptionHelpFormatter
    _common(parser)
    _env(parser)
    parser.add_argument("--out", required=True, help="PNG file to write")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--episode", type=int, help="index of a dataset episode to draw")
    which.add_argument("--perturbation", choices=PERTURBATION_NAMES,
                       help="generate an episode with this perturbation (and its normal twin) and draw both")
    return parser
