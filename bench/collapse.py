"""Issue-3 experiment: does the latent space carry the state, and does it collapse without a regularizer?

For each regularizer, trains the same preset on the same dataset (or reuses a finished run), then
fits a linear ridge probe embedding -> true state on training episodes and scores R² on the held-out
episodes of the run's own split. Prints a table, writes bench/results/collapse_<name>.json and a plot
of effective rank and prediction loss against training step.

    OMP_NUM_THREADS=2 python bench/collapse.py --data data/tworoom --runs runs/collapse --steps 1500
    python bench/collapse.py --data data/pusht --runs runs/pusht --regularizers sigreg \
        --state-dims 0 1 2 3 4 --angle-dims 4 --name pusht   # agent xy, block xy, block angle
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def train_or_reuse(data: Path, run: Path, regularizer: str, preset: str, steps: int) -> float | None:
    """Train unless ``run/model`` exists; returns the wall time of training (None if reused)."""
    from forethought.training import train

    if (run / "model" / "config.json").is_file():
        return None
    start = time.perf_counter()
    train(data, run, preset=preset, regularizer=regularizer, steps=steps, resume=run.exists(), tensorboard=False,
          progress=sys.stderr.isatty())
    return time.perf_counter() - start


def metric_curve(run: Path, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if key in rec:
            steps.append(rec["step"])
            values.append(rec[key])
    return steps, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="folder for one run per regularizer")
    parser.add_argument("--regularizers", nargs="+", default=["sigreg", "none"])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--state-dims", type=int, nargs="*", default=None, help="state columns to probe (default all)")
    parser.add_argument("--angle-dims", type=int, nargs="*", default=[], help="state columns probed as (cos, sin)")
    parser.add_argument("--probe-episodes", type=int, default=200, help="training episodes used to fit the probe")
    parser.add_argument("--name", default=None, help="result name (default: the dataset folder's name)")
    args = parser.parse_args()

    from forethought.data import EpisodeStore
    from forethought.evaluation.probe import linear_probe
    from forethought.models import WorldModel

    name = args.name or args.data.name
    store = EpisodeStore.open(args.data)
    rows = []
    for reg in args.regularizers:
        run = args.runs / reg
        seconds = train_or_reuse(args.data, run, reg, args.preset, args.steps)
        split = json.loads((run / "run.json").read_text())
        model = WorldModel.from_pretrained(run / "model")
        result = linear_probe(
            model,
            store,
            split["train_episodes"][: args.probe_episodes],
            split["val_episodes"],
            state_dims=args.state_dims,
            angle_dims=args.angle_dims,
        )
        _, val = metric_curve(run, "val/pred_loss")
        rows.append(
            {
                "regularizer": reg,
                "train_seconds": seconds,
                "steps": args.steps,
                "val_pred_loss": val[-1] if val else None,
                **result.to_dict(),
            }
        )

    threads = torch.get_num_threads()
    print(f"\n{name}: preset {args.preset}, {args.steps} steps, torch threads {threads}, "
          f"probe on {rows[0]['num_test']} held-out frames")
    header = f"{'regularizer':<12} {'train s':>8} {'R² (mean)':>10} {'R² per dim':<28} {'eff. rank':>9} {'dim std':>8} {'val pred':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        secs = "reused" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        per_dim = " ".join(f"{v:.3f}" for v in r["r2"])
        vp = "-" if r["val_pred_loss"] is None else f"{r['val_pred_loss']:.4f}"
        print(f"{r['regularizer']:<12} {secs:>8} {r['r2_mean']:>10.3f} {per_dim:<28} {r['effective_rank']:>9.1f} "
              f"{r['mean_dim_std']:>8.3f} {vp:>9}")

    RESULTS.mkdir(exist_ok=True)
    out = {"name": name, "data": str(args.data), "preset": args.preset, "torch_threads": threads,
           "command": " ".join([os.path.basename(sys.executable), *sys.argv]), "rows": rows}
    (RESULTS / f"collapse_{name}.json").write_text(json.dumps(out, indent=2))
    plot(args.runs, args.regularizers, RESULTS / f"collapse_{name}.png", name)
    print(f"wrote {RESULTS / f'collapse_{name}.json'} and .png")
    return 0


def plot(runs: Path, regularizers: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for reg in regularizers:
        for ax, key in zip(axes, ("diag/effective_rank", "diag/std_mean", "train/pred_loss")):
            steps, values = metric_curve(runs / reg, key)
            ax.plot(steps, values, label=reg)
    for ax, label in zip(axes, ("effective rank of embeddings", "mean per-dimension std", "prediction loss (train)")):
        ax.set_title(label)
        ax.set_xlabel("step")
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend()
    fig.suptitle(f"{title}: latent collapse with and without a regularizer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
