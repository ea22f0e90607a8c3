"""Can training stream its windows from disk as fast as it consumes them? Loader throughput vs the trainer.

    OMP_NUM_THREADS=1 .venv/bin/python bench/loader.py --data data/pusht_expert [--batches 200]

Times the trainer's own loader (`WindowDataset` + `ResumableBatchSampler` + `DataLoader`, batch 32,
history 3, horizon 1, frameskip 5: the `small` preset's windows) for: the whole dataset loaded into
RAM first (`in_memory`, the default; its load time is reported apart), and streamed from the zarr
store by 0, 1 and 2 worker processes (`--no-in-memory --num-workers N`). Windows per second are
compared with what the `small` preset's training step consumes on this machine (`--consume`,
windows/s; default: the 1-thread figure from `forethought train`'s log). Prints a table and writes
bench/results/loader.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from forethought.data import EpisodeStore, WindowDataset  # noqa: E402
from forethought.training.sampler import ResumableBatchSampler  # noqa: E402


def windows_per_s(dataset: WindowDataset, batches: int, workers: int, batch: int = 32) -> float:
    sampler = ResumableBatchSampler(len(dataset), batch, seed=0, end_step=batches + 5)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, prefetch_factor=4 if workers else None)
    it = iter(loader)
    for _ in range(5):  # warm-up: worker start, first chunk reads
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--consume", type=float, default=175.0,
                        help="windows/s the small preset's training consumes (default: 175, 1 thread, PushT)")
    args = parser.parse_args()
    store = EpisodeStore.open(args.data)
    window = dict(history=3, horizon=1, frameskip=5, keys=("obs", "action"))
    rows = []
    t = time.perf_counter()
    ram = WindowDataset(store, in_memory=True, **window)
    load_s = time.perf_counter() - t
    rows.append({"mode": "in memory", "workers": 0, "load_s": load_s, "windows_per_s": windows_per_s(ram, args.batches, 0)})
    del ram
    for workers in (0, 1, 2):
        lazy = WindowDataset(store, in_memory=False, **window)
        rows.append({"mode": "streamed", "workers": workers, "load_s": 0.0,
                     "windows_per_s": windows_per_s(lazy, args.batches, workers)})
    print(f"{args.data}: {store.num_episodes} episodes; batch 32; "
          f"torch threads {torch.get_num_threads()}; the trainer consumes ~{args.consume:.0f} windows/s")
    print("| mode | workers | load (s) | windows/s | vs the trainer |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['workers']} | {r['load_s']:.1f} | {r['windows_per_s']:.0f} | "
              f"{r['windows_per_s'] / args.consume:.1f}x |")
    out = {"data": args.data, "rows": rows, "consume": args.consume, "cpu": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "command": "python bench/loader.py --data " + args.data}
    path = Path(__file__).parent / "results" / "loader.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
