"""The `forethought train-proposal` options, built without importing torch (`forethought --help` stays fast).

`add_train_proposal_arguments(parser)` adds them; `run_train_proposal_from_args(args)` runs them.
"""

from __future__ import annotations

import argparse

TRAIN_PROPOSAL_EPILOG = """examples:
  forethought train-proposal --model runs/reacher --horizon 5 --steps 3000 --out runs/reacher_proposal
  forethought train-proposal --model runs/reacher --data data/reacher --condition none --out runs/prior
  forethought train-proposal --model runs/reacher_dyn --data data/reacher_weak --init runs/reacher_proposal \
      --steps 500 --out runs/reacher_proposal_weak      # fine-tune a proposal on play data
  forethought eval --model runs/reacher --planner ssr --proposal runs/reacher_proposal --samples 256 --out reports/ssr

A diffusion model over chunks of --horizon model actions (normalized, frameskip-concatenated, in the
model's action space), conditioned on the frozen encoder's latent of the current frame and, with
--condition goal (default), on a goal latent up to --goal-steps model steps ahead (hindsight goals;
dropped from --goal-dropout of the examples, so it also samples without a goal). On the model's own
dataset only the run's training episodes are used: evaluation's held-out tasks stay unseen.

writes: OUT/proposal/ (model.safetensors + config.json naming the model's action space and the
encoder's SHA-256; loading it next to another model is refused), OUT/run.json, OUT/ckpt/,
OUT/metrics.jsonl. --resume continues a killed run."""


def add_train_proposal_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought train-proposal` options to `parser`."""
    parser.epilog = TRAIN_PROPOSAL_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="the world model's run folder (or model folder)")
    parser.add_argument("--data", default=None, help="dataset of action chunks (default: the run's dataset)")
    parser.add_argument("--out", required=True, help="folder to write (proposal/, checkpoints, logs)")
    parser.add_argument("--horizon", type=int, default=5, help="model steps per chunk: the planning horizon (default 5)")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    parser.add_argument("--condition", choices=("goal", "latent", "none"), default="goal",
                        help="condition on the current latent and a goal latent (default), the current latent only, "
                             "or nothing (an unconditional behaviour prior)")
    parser.add_argument("--episodes", type=int, default=None, help="use only the first N usable episodes")
    parser.add_argument("--goal-steps", type=int, default=None,
                        help="largest hindsight-goal offset in model steps (default 2 x horizon)")
    parser.add_argument("--goal-dropout", type=float, default=0.2, help="fraction of examples without their goal")
    parser.add_argument("--width", type=int, default=64,
                        help="denoiser channels (default 64; the denoiser dominates a decision's cost: B x N chunks "
                             "x --sample-steps calls)")
    parser.add_argument("--depth", type=int, default=2, help="denoiser residual blocks (default 2)")
    parser.add_argument("--diffusion-steps", type=int, default=100, help="training noise levels T (cosine schedule)")
    parser.add_argument("--sample-steps", type=int, default=10, help="DDIM steps per sample: denoiser calls per decision")
    parser.add_argument("--batch-size", type=int, default=256, help="chunks per step (default 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of AdamW (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--init", default=None,
                        help="fine-tune this proposal (trained for the same model) instead of starting from scratch")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def run_train_proposal_from_args(args: argparse.Namespace) -> int:
    """`forethought train-proposal`: the parsed options -> :func:`forethought.policies.training.train_proposal`."""
    from forethought.policies.training import train_proposal

    for name in ("horizon", "steps", "width", "depth", "batch_size", "sample_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    path = train_proposal(args.model, args.out, data=args.data, horizon=args.horizon, steps=args.steps,
                          condition=args.condition, episodes=args.episodes, goal_steps=args.goal_steps,
                          width=args.width, depth=args.depth, diffusion_steps=args.diffusion_steps,
                          sample_steps=args.sample_steps, goal_dropout=args.goal_dropout, batch_size=args.batch_size,
                          lr=args.lr, seed=args.seed, device=args.device, progress=args.progress, resume=args.resume,
                          init=args.init)
    print(f"proposal saved to {path}")
    return 0
