"""The `forethought distill` options, built without importing torch (the CLI's --help stays fast).

`add_distill_arguments(parser)` adds them; `run_distill_from_args(args)` runs them.
"""

from __future__ import annotations

import argparse
import sys

DISTILL_EPILOG = """examples:
  forethought distill --model runs/tworoom/model --data data/tworoom --out runs/tworoom/draft
  forethought distill --model runs/tworoom/model --data data/tworoom --out runs/tworoom/draft --steps 1000 --episodes 100

The draft records a fingerprint of --model; loading it next to any other model is refused.
exit status: 0 done, 2 bad arguments or inputs."""


def add_distill_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought distill` options to `parser` (use with `run_distill_from_args`)."""
    parser.epilog = DISTILL_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="target world model folder (WorldModel.save_pretrained)")
    parser.add_argument("--data", required=True, help="dataset folder the target was trained on")
    parser.add_argument("--out", required=True, help="draft folder to write (model.safetensors + config.json)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes encoded for distillation (default 600)")
    parser.add_argument("--rollout-steps", dest="rollout_steps", type=int, default=None,
                        help="length of the target rollouts used as examples (default 200)")
    parser.add_argument("--width", type=int, default=None, help="draft MLP hidden width (default 256)")
    parser.add_argument("--depth", type=int, default=None, help="draft MLP hidden layers (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="Adam steps (default 10000)")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="examples per step (default 512)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    return parser


def run_distill_from_args(args: argparse.Namespace) -> int:
    """Run distillation from parsed `add_distill_arguments` options; returns the exit status."""
    from forethought.models.serialization import ModelFolderError
    from forethought.speculative.distill import DistillConfig, distill_to_folder
    from forethought.speculative.draft import load_draft

    fields = ("episodes", "rollout_steps", "width", "depth", "steps", "batch_size", "lr", "seed")
    try:
        cfg = DistillConfig(**{f: getattr(args, f) for f in fields if getattr(args, f) is not None})
        path = distill_to_folder(args.model, args.data, args.out, cfg, log=print)
    except (ValueError, ModelFolderError, FileNotFoundError) as e:
        print(f"forethought distill: {e}", file=sys.stderr)
        return 2
    stats = load_draft(path).config.stats
    print(f"draft saved to {path} (held-out one-step error {stats['val_rel_error_mean']:.4f} of latent scale, "
          f"p90 {stats['val_rel_error_p90']:.4f})")
    return 0
