"""Training throughput and peak memory per preset, fp32 vs bf16 autocast, on this CPU.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train.py [--presets tiny small medium base] [--threads 1]

Each (preset, precision) runs `forethought.training.train` on a synthetic 64x64 pixel dataset (a
dot moved by 2-D actions) in a fresh subprocess, so the peak RSS is that configuration's alone.
samples/s is windows per second of optimizer steps (data loading included, evaluation and
checkpoint writing excluded), the median of the logged intervals after the first (warm-up).
"interleaved" times fp32 and bf16 optimizer steps alternating in one process on one batch (robust
to a busy neighbour on a shared CPU). Accuracy of bf16: the loss of one forward pass (same weights,
same batch) and the final training loss are compared with fp32. `base` runs only a few steps at
a reduced batch (see the table).
Prints a table and writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
# preset -> (steps, log_every, batch_size or None for the preset's)
PLAN = {"tiny": (40, 5, None), "small": (20, 2, None), "medium": (10, 2, None), "base": (4, 1, 16)}

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[4]))
from forethought.training.api import train
from forethought.training.logging import read_metrics
data, out, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t = time.perf_counter()
train(data, out, progress=False, tensorboard=False, **opts)
wall = time.perf_counter() - t
records = read_metrics(out)
print(json.dumps({"wall_s": wall, "records": records,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads()}))
"""


def make_dataset(path: Path, episodes: int = 24, steps: int = 60, size: int = 64) -> Path:
    import numpy as np

    from forethought.data.episode import Episode
    from forethought.data.store import EpisodeStore

    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path, meta={"env_id": "bench/Dot-v0"}, obs_shape=(size, size, 3),
                                obs_dtype=np.uint8, action_dim=2, state_dim=2)
    for ep in range(episodes):
        pos, actions = rng.uniform(4, size - 8, size=2), rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
        states = [pos.copy()]
        for a in actions:
            pos = np.clip(pos + 2.0 * a, 0, size - 4)
            states.append(pos.copy())
        states = np.asarray(states)
        obs = np.full((steps + 1, size, size, 3), 30, dtype=np.uint8)
        for t, (x, y) in enumerate(states.astype(int)):
            obs[t, y:y + 4, x:x + 4] = (255, 128, 0)
        store.append_episode(Episode.from_steps(obs, actions, np.zeros(steps), np.zeros(steps, bool),
                                                np.zeros(steps, bool), state=states, seed=ep))
    store.save_stats()
    store.close()
    return path


def run_one(data: Path, out: Path, preset: str, bf16: bool, threads: int) -> dict:
    steps, log_every, batch = PLAN[preset]
    opts = dict(preset=preset, steps=steps, log_every=log_every, warmup_steps=1, ckpt_every=0, eval_every=0,
                bf16=bf16, seed=0)
    if batch is not None:
        opts["batch_size"] = batch
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), str(out), json.dumps(opts), str(threads)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{preset} bf16={bf16} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    recs = res["records"]
    sps = [r["perf/samples_per_s"] for r in recs[1:]] or [recs[0]["perf/samples_per_s"]]
    from forethought.models import WorldModel

    params = WorldModel.from_pretrained(out / "model").num_parameters()
    batch_size = json.loads((out / "train_config.json").read_text())["batch_size"]
    return {"preset": preset, "precision": "bf16" if bf16 else "fp32", "steps": steps, "batch_size": batch_size,
            "params": params, "samples_per_s": statistics.median(sps),
            "step_ms": 1e3 * batch_size / statistics.median(sps),
            "peak_rss_mb": res["peak_rss_mb"], "threads": res["threads"], "wall_s": res["wall_s"],
            "first_loss": recs[0]["train/loss"], "final_loss": recs[-1]["train/loss"],
            "final_pred_loss": recs[-1]["train/pred_loss"]}


def interleaved_step_ms(data: Path, preset: str, reps: int) -> dict:
    """Median ms of one optimizer step, fp32 and bf16 steps alternating on the same batch.

    Alternating makes the comparison robust to other processes sharing the CPU (the end-to-end
    runs above are sequential, so a busy neighbour can skew one precision).
    """
    import time

    import torch

    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset
    from forethought.models import WorldModel, WorldModelConfig
    from forethought.training.config import TrainConfig
    from forethought.training.jepa_objective import JEPATrainingObjective

    cfg = TrainConfig.preset(preset)
    batch_size = PLAN[preset][2] or cfg.batch_size
    store = EpisodeStore.open(data)
    ds = WindowDataset(store, cfg.history, cfg.horizon, cfg.frameskip, keys=("obs", "action"), in_memory=True)
    batch = torch.utils.data.default_collate([ds[i] for i in range(batch_size)])
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.preset(preset, obs_shape=tuple(batch["obs"].shape[2:]),
                                               action_dim=cfg.frameskip * ds.action_dim, history=cfg.history))
    obj = JEPATrainingObjective(model, store.stats, regularizer="sigreg", seed=0)
    opt = torch.optim.AdamW(obj.parameters(), lr=1e-4)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for rep in range(reps + 1):
        for name in ("fp32", "bf16"):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                loss = obj(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if rep > 0:  # the first round warms up (allocations, oneDNN kernel selection)
                times[name].append(1e3 * (time.perf_counter() - t))
    return {"batch_size": batch_size, **{k: statistics.median(v) for k, v in times.items()}}


def first_step_loss(data: Path, preset: str) -> dict:
    """Loss of one forward pass on the same batch, fp32 vs bf16 autocast (same weights)."""
    import torch

    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset
    from forethought.models import WorldModel, WorldModelConfig
    from forethought.training.config import TrainConfig
    from forethought.training.jepa_objective import JEPATrainingObjective

    cfg = TrainConfig.preset(preset)
    store = EpisodeStore.open(data)
    ds = WindowDataset(store, cfg.history, cfg.horizon, cfg.frameskip, keys=("obs", "action"), in_memory=True)
    batch = torch.utils.data.default_collate([ds[i] for i in range(min(cfg.batch_size, 32))])
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.preset(preset, obs_shape=tuple(batch["obs"].shape[2:]),
                                               action_dim=cfg.frameskip * ds.action_dim, history=cfg.history))
    losses = {}
    for bf16 in (False, True):
        obj = JEPATrainingObjective(model, store.stats, regularizer="sigreg", seed=0)  # same SIGReg directions
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = obj(batch)
        losses["bf16" if bf16 else "fp32"] = {k: float(v) for k, v in out.items() if not k.startswith("_")}
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base"], choices=list(PLAN))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows, accuracy, interleaved = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "dots")
        for preset in args.presets:
            accuracy[preset] = first_step_loss(data, preset)
            interleaved[preset] = interleaved_step_ms(data, preset, reps=2 if preset == "base" else 6)
            for bf16 in (False, True):
                row = run_one(data, Path(tmp) / f"{preset}-{bf16}", preset, bf16, args.threads)
                rows.append(row)
                print(f"done {preset} {row['precision']}: {row['samples_per_s']:.1f} samples/s", flush=True)
    header = f"{'preset':7} {'prec':5} {'params':>9} {'batch':>5} {'steps':>5} {'samples/s':>10} {'ms/step':>9} " \
             f"{'peak RSS MB':>11} {'loss 1st':>9} {'loss last':>9}"
    print(f"\ntorch threads: {rows[0]['threads']}  ({platform.processor() or platform.machine()})")
    print(header)
    for r in rows:
        print(f"{r['preset']:7} {r['precision']:5} {r['params']:>9,} {r['batch_size']:>5} {r['steps']:>5} "
              f"{r['samples_per_s']:>10.1f} {r['step_ms']:>9.0f} {r['peak_rss_mb']:>11.0f} {r['first_loss']:>9.4f} "
              f"{r['final_loss']:>9.4f}")
    speedups = {}
    for preset in args.presets:
        fp32, bf16 = (next(r for r in rows if r["preset"] == preset and r["precision"] == p)
                      for p in ("fp32", "bf16"))
        speedups[preset] = bf16["samples_per_s"] / fp32["samples_per_s"]
        a, il = accuracy[preset], interleaved[preset]
        rel = abs(a["bf16"]["loss"] - a["fp32"]["loss"]) / abs(a["fp32"]["loss"])
        print(f"{preset}: interleaved step (batch {il['batch_size']}) fp32 {il['fp32']:.0f} ms, "
              f"bf16 {il['bf16']:.0f} ms (x{il['fp32'] / il['bf16']:.2f}); end-to-end bf16 speedup "
              f"x{speedups[preset]:.2f}; same-batch loss fp32 {a['fp32']['loss']:.5f} bf16 "
              f"{a['bf16']['loss']:.5f} (rel diff {rel:.2e}); pred_loss {a['fp32']['pred_loss']:.5f} vs "
              f"{a['bf16']['pred_loss']:.5f}")
    result = {"torch_threads": rows[0]["threads"], "machine": platform.machine(), "cpu": _cpu_name(),
              "rows": rows, "bf16_speedup_end_to_end": speedups, "interleaved_step_ms": interleaved,
              "load_average_at_end": os.getloadavg(), "same_batch_loss": accuracy,
              "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/train.py " + " ".join(sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
