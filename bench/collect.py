"""Collection throughput: TwoRoom, smooth policy, 1 and 2 workers.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/collect.py [--episodes 200] [--steps 100]

The target workload is 200 episodes x 100 steps in about a minute on 2 cores. Wall time
includes worker start-up (spawn) and the final statistics pass. Also checks that both worker
counts produce the same dataset. Prints a table and writes bench/results/collect.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from forethought.data.collect import collect
from forethought.data.store import EpisodeStore

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="forethought/TwoRoom-v0")
    p.add_argument("--policy", default="smooth")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            t = time.perf_counter()
            s = collect(args.env, out, episodes=args.episodes, steps=args.steps, policy=args.policy,
                        workers=workers, progress=False)  # fmt: skip
            wall = time.perf_counter() - t
            rows.append({
                "workers": workers, "wall_s": wall, "episodes_per_s": args.episodes / wall,
                "env_steps_per_s": s["env_steps"] / wall, "env_steps": s["env_steps"],
                "disk_MB": s["bytes_on_disk"] / 1e6,
            })  # fmt: skip
        a, b = EpisodeStore.open(Path(tmp) / "w1"), EpisodeStore.open(Path(tmp) / "w2")
        identical = len(a) == len(b) and all(a.episode(i).equals(b.episode(i)) for i in range(len(a)))
    out = {
        "env": args.env, "policy": args.policy, "episodes": args.episodes, "steps": args.steps,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "platform": platform.platform(), "identical_across_workers": identical, "runs": rows,
    }  # fmt: skip
    print(f"{args.env}, policy {args.policy}, {args.episodes} episodes x {args.steps} steps; "
          f"torch threads {out['torch_threads']}, cpus {out['cpu_count']}")  # fmt: skip
    print(f"{'workers':>8}{'wall s':>9}{'episodes/s':>12}{'env steps/s':>13}{'disk MB':>9}")
    for r in rows:
        print(f"{r['workers']:>8}{r['wall_s']:>9.2f}{r['episodes_per_s']:>12.1f}"
              f"{r['env_steps_per_s']:>13.0f}{r['disk_MB']:>9.2f}")  # fmt: skip
    print(f"identical datasets for 1 and 2 workers: {identical}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collect.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'collect.json'}")


if __name__ == "__main__":
    main()
