"""What surprise monitoring costs: per-frame monitor latency, offline scoring throughput.

    OMP_NUM_THREADS=1 .venv/bin/python bench/surprise.py [--model runs/tworoom] [--repeats 50]

The monitor runs once per model frame inside the agent loop (encode is the agent's own, so it is
not counted): one ``steps``-step rollout of the predictor for ``B`` episodes. Offline scoring
(``clip_scores``, what calibration and ``surprise-eval`` use) encodes and predicts whole clips.
Uses the ``small`` preset with random weights when ``--model`` is not given (latency does not
depend on the weights). Prints a table, writes bench/results/surprise.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from forethought.data.normalization import Normalizer, NormStats  # noqa: E402
from forethought.models import WorldModel, WorldModelConfig  # noqa: E402
from forethought.surprise.calibration import SurpriseCalibration, Threshold, clip_scores  # noqa: E402
from forethought.surprise.clips import Clip  # noqa: E402
from forethought.surprise.monitor import SurpriseMonitor  # noqa: E402


def _model(path: str | None) -> WorldModel:
    if path:
        return WorldModel.from_pretrained(Path(path) / "model" if (Path(path) / "model").is_dir() else path)
    cfg = WorldModelConfig.preset("small", obs_shape=(3, 64, 64), action_dim=10)
    stats = NormStats.fit(np.random.default_rng(0).uniform(-1, 1, (100, 2)))
    return WorldModel(cfg, Normalizer(stats).to_dict()).eval()


def monitor_latency(model: WorldModel, batch: int, steps: int, repeats: int) -> float:
    """Median seconds per ``observe`` call once the history is full."""
    D = model.latent_dim
    never = Threshold("whitened", steps, 1e9, 0.01, 0, 0.0, (0.0, 1.0), 0, 0.0)
    cal = SurpriseCalibration(torch.ones(D), {steps: torch.zeros(D)}, {steps: torch.eye(D)}, {("whitened", steps): never})
    mon = SurpriseMonitor(model, cal, steps=steps, on_alarm=None)
    z = torch.randn(batch, model.latent_dim)
    a = torch.randn(batch, model.action_dim)
    mon.observe(z, None)
    times = []
    for i in range(repeats + model.history + steps):
        t = time.perf_counter()
        mon.observe(z, a)
        if i >= model.history + steps:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def scoring_throughput(model: WorldModel, steps: int, clips: int = 32, frames: int = 20) -> float:
    """Frames per second of ``clip_scores`` on ``clips`` random pixel clips of ``frames`` frames."""
    rng = np.random.default_rng(0)
    data = [Clip(rng.integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8),
                 rng.uniform(-1, 1, (frames - 1, model.action_dim)).astype(np.float32)) for _ in range(clips)]
    norm = Normalizer.from_dict(model.normalization)
    clip_scores(model, data[:2], norm, None, steps)  # warm-up
    t = time.perf_counter()
    clip_scores(model, data, norm, None, steps)
    return clips * frames / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="run or model folder (default: small preset, random weights)")
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = _model(args.model)
    rows = []
    with torch.inference_mode():
        for steps in (1, 3):
            for batch in (1, 50):
                rows.append({"what": "monitor per frame", "steps": steps, "batch": batch,
                             "ms": 1e3 * monitor_latency(model, batch, steps, args.repeats)})
            rows.append({"what": "offline scoring", "steps": steps, "batch": 32,
                         "frames_per_s": scoring_throughput(model, steps)})
    print(f"surprise cost, {torch.get_num_threads()} torch thread(s), model {args.model or 'small (random weights)'}")
    print("| what | steps k | batch | result |\n|---|---|---|---|")
    for r in rows:
        res = f"{r['ms']:.2f} ms" if "ms" in r else f"{r['frames_per_s']:.0f} frames/s"
        print(f"| {r['what']} | {r['steps']} | {r['batch']} | {res} |")
    out = Path(__file__).resolve().parent / "results" / "surprise.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "threads": torch.get_num_threads(), "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(), "model": args.model}, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
