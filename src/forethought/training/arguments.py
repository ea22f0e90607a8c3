"""The `forethought train` options, built without importing torch so `forethought --help` stays fast.

`add_train_arguments(parser)` adds them; `forethought.training.api.run_from_args` runs them.
"""

from __future__ import annotations

import argparse

from forethought.training.config import PRESETS, REGULARIZERS

TRAIN_EPILOG = """examples:
  forethought train --data data/tworoom --preset small --out runs/tworoom
  forethought train --data data/tworoom --preset tiny --out runs/smoke --steps 200 --regularizer vicreg
  forethought train --data data/tworoom --out runs/tworoom --resume          # continue after a crash
  forethought train --data data/tworoom --out runs/bf16 --bf16 --batch-size 64 --lr 3e-4
  forethought train --data data/tworoom --out runs/checked --verify-data full   # read every byte first
  forethought train --init runs/tw_stage1 --data data/tworoom --episodes 30 --out runs/tw_stage2
                                                  # stage 2 from a pretrained run (forethought pretrain)
  torchrun --nproc_per_node=2 -m forethought.cli train --data data/tworoom --out runs/ddp   # DDP

exit status: 0 done, 3 stopped on a NaN/inf loss (the last good checkpoint is kept), 2 bad arguments."""

# (TrainConfig field, type, help) for the optional overrides; None keeps the preset's value.
OVERRIDES: list[tuple[str, type, str]] = [
    ("batch_size", int, "global batch size (windows per step, summed over DDP ranks)"),
    ("lr", float, "peak learning rate of AdamW"),
    ("weight_decay", float, "AdamW weight decay"),
    ("warmup_steps", int, "linear warm-up steps before the cosine decay"),
    ("grad_clip", float, "max gradient norm (0 disables clipping)"),
    ("reg_weight", float, "regularizer weight lambda (default: the regularizer's, SIGReg 0.09)"),
    ("rollout_weight", float, "weight of the multi-step rollout loss (needs --horizon >= 2)"),
    ("state_weight", float, "weight of an auxiliary readout of the true state from each latent (privileged "
                            "supervision of the encoder; the dataset must store states)"),
    ("recon_weight", float, "weight of a pixel reconstruction loss that also trains the encoder (adds a decoder; "
                            "not privileged: keeps what prediction alone may drop, e.g. PushT's block)"),
    ("history", int, "context frames of the predictor"),
    ("horizon", int, "predicted frames per training window"),
    ("frameskip", int, "env steps per model step"),
    ("ckpt_every", int, "checkpoint every N steps (0: only at the end)"),
    ("log_every", int, "log metrics every N steps"),
    ("eval_every", int, "validation loss every N steps (0 disables)"),
    ("val_fraction", float, "fraction of episodes held out for validation"),
    ("num_workers", int, "DataLoader worker processes"),
    ("seed", int, "random seed (model init, data order, regularizer)"),
]


def _index_list(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated state indices like 0,1, got {text!r}") from None
    if not dims or min(dims) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated state indices >= 0 like 0,1, got {text!r}")
    return dims


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought train` options to `parser` (use with `run_from_args`)."""
    parser.epilog = TRAIN_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", required=True, help="dataset folder written by `forethought collect`")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, and the final model/)")
    parser.add_argument("--preset", choices=PRESETS, default="small",
                        help="model + training preset: tiny (tests), small (laptop CPU, minutes), medium (2 CPU cores, ~1 hour), base (GPU, LeWM scale); default small")
    parser.add_argument("--regularizer", choices=REGULARIZERS, default="sigreg",
                        help="collapse regularizer (default sigreg, as LeWM)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out exactly")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast for the forward pass")
    parser.add_argument("--in-memory", dest="in_memory", action=argparse.BooleanOptionalAction, default=None,
                        help="load the dataset into RAM (default on; it streams anyway, with a warning, "
                        "if the pixels would take over half the available memory; --no-in-memory streams from zarr)")
    parser.add_argument("--verify-data", choices=("cheap", "full"), default="cheap",
                        help="dataset check before training: cheap (every chunk file present, recorded sizes) or "
                             "full (every byte against its checksums, as `forethought verify --full`)")
    parser.add_argument("--drop-bad-episodes", action="store_true",
                        help="train without the episodes that hold NaN/inf values (listed in run.json) "
                             "instead of refusing the dataset")
    parser.add_argument("--proprio-dims", dest="proprio_dims", type=_index_list, default=None, metavar="I,J,...",
                        help="state dims the agent senses directly (proprioception), e.g. 0,1 for PushT's agent "
                             "position: embedded and added to every latent; eval feeds them from the env's state")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="write metrics.jsonl only")
    parser.add_argument("--episodes", type=int, default=None,
                        help="train on the first N episodes of --data only (a labelled-data curve)")
    # Stage 2 of learning from action-free video (docs/latent-actions.md).
    parser.add_argument("--init", default=None, metavar="RUN",
                        help="stage 2: start from a `forethought pretrain` run (its encoder and predictor; a linear "
                             "action encoder maps real actions into its latent-action space); --preset then picks "
                             "the training settings only")
    parser.add_argument("--freeze-encoder", dest="freeze_encoder", action="store_true",
                        help="with --init: keep the pretrained encoder frozen")
    parser.add_argument("--freeze-predictor", dest="freeze_predictor", action="store_true",
                        help="with --init: keep the pretrained predictor frozen (only the action encoder trains)")
    for name, typ, help_text in OVERRIDES:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, help=help_text)
    return parser


ADAPT_EPILOG = """examples:
  forethought adapt --model runs/reacher --data data/reacher_weak --only dynamics --steps 500 --out runs/reacher_dyn
  forethought adapt --model runs/reacher --data data/reacher_weak --episodes 10 --steps 300 --out runs/reacher_dyn10
  forethought adapt --model runs/reacher --data data/reacher_weak --only all --steps 500 --out runs/reacher_all

--only dynamics (or predictor) fine-tunes the predictor alone: the encoder (weights and BatchNorm
statistics), the readout and the decoder stay bit-identical to the parent's, and so does every
action proposal trained for it (forethought train-proposal), which keeps working with the new
model. --only all fine-tunes everything from the parent's weights with the parent's loss. The
normalization statistics are the parent's. OUT/run.json names the parent model, the data, what
was trained and the SHA-256 of every part before and after.

exit status: 0 done, 3 stopped on a NaN/inf loss, 2 bad arguments."""


def add_adapt_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought adapt` options to `parser` (use with `forethought.training.adapt.run_adapt_from_args`)."""
    parser.epilog = ADAPT_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="the trained run folder (or model folder) to start from")
    parser.add_argument("--data", required=True, help="dataset of the changed system (forethought collect)")
    parser.add_argument("--out", required=True, help="new run folder (checkpoints, logs, run.json, model/)")
    parser.add_argument("--only", choices=("dynamics", "predictor", "all"), default="dynamics",
                        help="what to fine-tune: the dynamics (the predictor; default) or everything")
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps (default 500)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="use only the first N episodes of --data (default: all)")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out exactly")
    parser.add_argument("--force", action="store_true", help="accept a dataset of another env id than the model's")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="write metrics.jsonl only")
    for name, typ, help_text in OVERRIDES:
        if name in ("batch_size", "lr", "warmup_steps", "seed", "horizon", "rollout_weight"):
            parser.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                                help=f"{help_text} (default: the parent run's)")
    return parser
