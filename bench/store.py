"""Episode-store throughput: writes, reads, window sampling and DataLoader batches.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/store.py [--episodes 200] [--steps 100]

Data: a TwoRoom dataset collected with the smooth policy (realistic, highly compressible
frames) and the same episodes with uniform-noise frames (incompressible: the worst case).
MB are raw (uncompressed) bytes of all per-row arrays. Prints a table and writes
bench/results/store.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from forethought.data.collect import collect
from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore
from forethought.data.windows import WindowDataset

RESULTS = Path(__file__).resolve().parent / "results"


def raw_bytes(eps: list[Episode]) -> int:
    keys = ("obs", "action", "reward", "terminated", "truncated", "state")
    return sum(getattr(e, k).nbytes for e in eps for k in keys if getattr(e, k) is not None)


def bench_write_read(eps: list[Episode], meta: dict, path: Path, group: int) -> dict:
    first = eps[0]
    store = EpisodeStore.create(
        path, meta=meta, obs_shape=first.obs.shape[1:], obs_dtype=first.obs.dtype,
        action_dim=first.action.shape[1], state_dim=first.state.shape[1],
    )  # fmt: skip
    mb, rows = raw_bytes(eps) / 1e6, sum(e.obs.shape[0] for e in eps)
    t = time.perf_counter()
    for j in range(0, len(eps), group):
        store.append_episodes(eps[j : j + group])
    store.truncate_to_committed()
    w = time.perf_counter() - t
    store.close()
    r = EpisodeStore.open(path)
    t = time.perf_counter()
    for i in range(len(r)):
        r.episode(i)
    seq = time.perf_counter() - t
    order = np.random.default_rng(0).permutation(len(r))[:50]
    t = time.perf_counter()
    for i in order:
        r.episode(int(i))
    rnd = (time.perf_counter() - t) / len(order)
    return {
        "episodes_per_commit": group,
        "write_MB_per_s": mb / w, "write_rows_per_s": rows / w,
        "read_seq_MB_per_s": mb / seq, "read_seq_rows_per_s": rows / seq,
        "random_episode_ms": rnd * 1e3,
        "raw_MB": mb, "disk_MB": r.bytes_on_disk() / 1e6,
    }  # fmt: skip


def bench_windows(path: Path, in_memory: bool, n: int = 2000) -> dict:
    t = time.perf_counter()
    ds = WindowDataset(path, history=3, horizon=1, frameskip=5, in_memory=in_memory)
    setup = time.perf_counter() - t
    idx = np.random.default_rng(0).integers(0, len(ds), n)
    t = time.perf_counter()
    for i in idx:
        ds[int(i)]
    return {"in_memory": in_memory, "setup_s": setup, "windows_per_s": n / (time.perf_counter() - t)}


def bench_loader(path: Path, workers: int, in_memory: bool, batches: int = 40, batch_size: int = 64) -> dict:
    ds = WindowDataset(path, history=3, horizon=1, frameskip=5, in_memory=in_memory)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers,
        generator=torch.Generator().manual_seed(0), persistent_workers=False,
    )  # fmt: skip
    t = time.perf_counter()
    it = iter(loader)
    next(it)  # worker startup and the first batch
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    return {
        "workers": workers, "in_memory": in_memory, "batch_size": batch_size,
        "first_batch_s": first, "batches_per_s": batches / dt, "windows_per_s": batches * batch_size / dt,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()
    out: dict = {
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "cpu_count": __import__("os").cpu_count(), "episodes": args.episodes, "steps": args.steps,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        collect("forethought/TwoRoom-v0", tmp / "tworoom", episodes=args.episodes, steps=args.steps,
                policy="smooth", progress=False)  # fmt: skip
        src = EpisodeStore.open(tmp / "tworoom")
        eps = [src.episode(i) for i in range(len(src))]
        rng = np.random.default_rng(0)
        noise = [
            Episode(rng.integers(0, 256, e.obs.shape, dtype=np.uint8), e.action, e.reward,
                    e.terminated, e.truncated, e.state, e.seed)  # fmt: skip
            for e in eps
        ]
        out["write_read"] = {}
        for name, data in (("tworoom", eps), ("noise", noise)):
            for group in (1, 8):
                key = f"{name}/commit{group}"
                out["write_read"][key] = bench_write_read(data, src.meta, tmp / key.replace("/", "_"), group)
        out["windows"] = [bench_windows(tmp / "tworoom", m) for m in (False, True)]
        out["windows_noise"] = [bench_windows(tmp / "noise_commit8", False)]
        out["loader"] = [bench_loader(tmp / "tworoom", w, m) for m in (False, True) for w in (0, 2)]

    print(f"torch threads: {out['torch_threads']}, cpus: {out['cpu_count']}, "
          f"{args.episodes} episodes x {args.steps} steps (64x64x3 uint8 + 2-d action + 2-d state)")  # fmt: skip
    print(f"\n{'data/commit':<18}{'write MB/s':>11}{'write rows/s':>13}{'read MB/s':>11}"
          f"{'read rows/s':>12}{'rand ep ms':>11}{'raw MB':>8}{'disk MB':>9}")  # fmt: skip
    for key, r in out["write_read"].items():
        print(f"{key:<18}{r['write_MB_per_s']:>11.1f}{r['write_rows_per_s']:>13.0f}{r['read_seq_MB_per_s']:>11.1f}"
              f"{r['read_seq_rows_per_s']:>12.0f}{r['random_episode_ms']:>11.2f}{r['raw_MB']:>8.1f}{r['disk_MB']:>9.2f}")  # fmt: skip
    print(f"\n{'windows (h=3,H=1,k=5)':<28}{'setup s':>9}{'windows/s':>11}")
    for tag, rows in (("tworoom", out["windows"]), ("noise", out["windows_noise"])):
        for r in rows:
            print(f"{tag + (' in_memory' if r['in_memory'] else ' lazy zarr'):<28}{r['setup_s']:>9.2f}{r['windows_per_s']:>11.0f}")
    print(f"\n{'DataLoader (batch 64)':<28}{'1st batch s':>12}{'batches/s':>11}{'windows/s':>11}")
    for r in out["loader"]:
        tag = f"workers={r['workers']} {'in_memory' if r['in_memory'] else 'lazy'}"
        print(f"{tag:<28}{r['first_batch_s']:>12.2f}{r['batches_per_s']:>11.1f}{r['windows_per_s']:>11.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store.json").write_text(json.dumps(out, indent=1))
    print(f"\nwrote {RESULTS / 'store.json'}")


if __name__ == "__main__":
    main()
