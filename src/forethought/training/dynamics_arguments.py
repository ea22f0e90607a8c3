"""The `forethought train-dynamics` options, built without importing torch (`forethought --help` stays fast).

`add_train_dynamics_arguments(parser)` adds them; `run_train_dynamics_from_args(args)` runs them.
"""

from __future__ import annotations

import argparse

TRAIN_DYNAMICS_EPILOG = """examples:
  forethought train-dynamics --model runs/tworoom --horizon 10 --steps 3000 --out runs/tworoom_dyn10
  forethought train-dynamics --model runs/reacher --data data/reacher_weak --init runs/reacher_dyn5 \\
      --horizon 5 --steps 500 --out runs/reacher_dyn5_weak          # fine-tune on play data of changed physics
  forethought eval --model runs/tworoom --dynamics runs/tworoom_dyn10 --horizon 10 --out reports/diffusion
  forethought eval --model runs/tworoom --dynamics runs/tworoom_dyn10 --planner ssr --proposal runs/prop \\
      --samples 256 --horizon 10 --out reports/dmpc                 # DMPC: proposal + diffusion dynamics
  python bench/dynamics_error.py --model runs/tworoom --dynamics runs/tworoom_dyn10   # compounding error

A denoising diffusion model over the next --horizon latents of the frozen world model, given the
last --history latents, the actions between them and the chunk's actions: DMPC's multi-step
dynamics, sampled F steps at once instead of one step fed back F times. On the model's own dataset
only the run's training episodes are used: evaluation's held-out tasks stay unseen. A window needs
--horizon x frameskip env steps of its episode after the current frame.

writes: OUT/dynamics/ (model.safetensors + config.json naming the model's encoder fingerprint,
latent dim and action space; loading it next to another model is refused), OUT/run.json,
OUT/ckpt/, OUT/metrics.jsonl. --resume continues a killed run."""


def add_train_dynamics_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought train-dynamics` options to `parser`."""
    parser.epilog = TRAIN_DYNAMICS_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="the world model's run folder (or model folder)")
    parser.add_argument("--data", default=None, help="dataset of episodes (default: the run's dataset)")
    parser.add_argument("--out", required=True, help="folder to write (dynamics/, checkpoints, logs)")
    parser.add_argument("--horizon", type=int, default=5, help="F: future latents per sample (default 5)")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    parser.add_argument("--history", type=int, default=None,
                        help="latents of history it is conditioned on (default and maximum: the model's)")
    parser.add_argument("--episodes", type=int, default=None, help="use only the first N usable episodes")
    parser.add_argument("--width", type=int, default=64,
                        help="denoiser channels (default 64; a decision costs B x N chunks x --sample-steps calls)")
    parser.add_argument("--depth", type=int, default=3, help="denoiser residual blocks (default 3)")
    parser.add_argument("--dilation-growth", type=int, default=2,
                        help="dilation factor between blocks (default 2: 3 blocks see 31 steps)")
    parser.add_argument("--diffusion-steps", type=int, default=100, help="training noise levels T (cosine schedule)")
    parser.add_argument("--sample-steps", type=int, default=10, help="DDIM steps per sample: denoiser calls per chunk")
    parser.add_argument("--batch-size", type=int, default=256, help="windows per step (default 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of AdamW (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--init", default=None,
                        help="fine-tune these dynamics (trained for the same model) instead of starting from scratch")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def run_train_dynamics_from_args(args: argparse.Namespace) -> int:
    """`forethought train-dynamics`: the parsed options -> :func:`forethought.training.dynamics.train_dynamics`."""
    from forethought.training.dynamics import train_dynamics

    for name in ("horizon", "steps", "width", "depth", "dilation_growth", "batch_size", "sample_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.diffusion_steps < 2 or args.sample_steps > args.diffusion_steps:
        raise ValueError(f"--diffusion-steps must be >= 2 and >= --sample-steps, got {args.diffusion_steps}, "
                         f"{args.sample_steps}")
    path = train_dynamics(args.model, args.out, data=args.data, horizon=args.horizon, steps=args.steps,
                          history=args.history, episodes=args.episodes, width=args.width, depth=args.depth,
                          dilation_growth=args.dilation_growth, diffusion_steps=args.diffusion_steps,
                          sample_steps=args.sample_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                          device=args.device, progress=args.progress, resume=args.resume, init=args.init)
    print(f"dynamics saved to {path}")
    return 0
