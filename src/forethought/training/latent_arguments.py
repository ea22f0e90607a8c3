"""The `forethought pretrain` options (stage 1 without actions), built without importing torch.

`add_pretrain_arguments(parser)` adds them; `forethought.training.pretrain.run_pretrain_from_args` runs them.
The stage-2 options (`forethought train --init RUN ...`) are in `forethought.training.arguments`.
"""

from __future__ import annotations

import argparse

from forethought.training.arguments import OVERRIDES
from forethought.training.config import PRESETS

PRETRAIN_EPILOG = """examples:
  forethought pretrain --data data/tworoom_video --out runs/tw_stage1 --latent vq --codes 8
  forethought pretrain --data data/tworoom_video --out runs/tw_stage1c --latent continuous --latent-dim 8
  forethought pretrain --data data/tworoom --out runs/tw_stage1_l --latent vq --label-fraction 0.025
  forethought train --init runs/tw_stage1 --data data/tworoom --episodes 30 --out runs/tw_stage2   # stage 2
  forethought latent-actions --model runs/tw_stage1 --data data/tworoom --transitions 200

The predictor is conditioned on a latent action u_t = inverse(z_t, z_t+1) instead of a recorded
action; a bottleneck (a small variational u, or |A| VQ codes) keeps u from carrying z_t+1 itself.
diag/controllability and val/controllability in metrics.jsonl: how much the prediction error rises
when u is shuffled across the batch (near 0: the predictor ignores u).

writes: OUT/model (the stage-1 world model), OUT/inverse (the inverse model), checkpoints, logs, run.json.
exit status: 0 done, 3 stopped on a NaN/inf loss, 2 bad arguments."""


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought pretrain` options to `parser` (use with `run_pretrain_from_args`)."""
    parser.epilog = PRETRAIN_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", required=True, help="dataset folder, with or without actions")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, model/ and inverse/)")
    parser.add_argument("--latent", choices=("continuous", "vq"), default="continuous",
                        help="latent actions: continuous (variational bottleneck) or vq (discrete codes)")
    parser.add_argument("--latent-dim", dest="latent_dim", type=int, default=8,
                        help="latent action dimension (continuous) or code vector dimension (vq)")
    parser.add_argument("--codes", type=int, default=8, help="number of discrete latent actions |A| (vq)")
    parser.add_argument("--kl-weight", dest="kl_weight", type=float, default=None,
                        help="continuous: weight of the KL bottleneck (default 1e-3; larger: fewer bits in u)")
    parser.add_argument("--inverse-hidden", dest="inverse_hidden", type=int, default=256,
                        help="width of the inverse model's MLP")
    parser.add_argument("--label-fraction", dest="label_fraction", type=float, default=0.0,
                        help="fraction of training episodes whose actions supervise the latent actions (LAOM: "
                             "0.025); the dataset must have actions")
    parser.add_argument("--label-weight", dest="label_weight", type=float, default=1.0,
                        help="weight of the label loss (with --label-fraction)")
    parser.add_argument("--preset", choices=PRESETS, default="small",
                        help="model + training preset (as `forethought train`)")
    parser.add_argument("--regularizer", choices=("sigreg", "vicreg", "none"), default="sigreg",
                        help="collapse regularizer (default sigreg)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out exactly")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast for the forward pass")
    parser.add_argument("--in-memory", dest="in_memory", action=argparse.BooleanOptionalAction, default=None,
                        help="load the dataset into RAM (default on; it streams anyway, with a warning, "
                        "if the pixels would take over half the available memory; --no-in-memory streams from zarr)")
    parser.add_argument("--verify-data", choices=("cheap", "full"), default="cheap",
                        help="dataset check before training (as `forethought train`)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="write metrics.jsonl only")
    for name, typ, help_text in OVERRIDES:
        if name not in ("rollout_weight", "state_weight"):
            parser.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, help=help_text)
    return parser
