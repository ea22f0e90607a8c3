"""World-model sizes and speed: parameters per preset, train-step time, SIGReg reference values.

    OMP_NUM_THREADS=1 .venv/bin/python bench/models.py [--batch 64] [--frames 4] [--repeats 5]

Train step = encode (B, T, 3, 64, 64) uint8 + teacher-forced prediction + SIGReg (1024
directions, LeWM) + backward, for the ``small`` preset (the CPU default), in fp32 and under
bf16 autocast. Times are medians over ``--repeats`` after one warm-up. SIGReg reference values:
D=64, N=512, M=256 directions, mean over 5 draws. Prints tables, writes bench/results/models.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from forethought.models import PRESETS, WorldModel, WorldModelConfig  # noqa: E402
from forethought.objectives import JEPALoss, SIGReg, make_regularizer  # noqa: E402


def param_table(action_dim: int) -> list[dict]:
    rows = []
    for name in PRESETS:
        for obs in ((3, 64, 64), (3, 224, 224), (8,)):
            m = WorldModel(WorldModelConfig.preset(name, obs_shape=obs, action_dim=action_dim))
            rows.append({
                "preset": name, "obs_shape": list(obs), "encoder": m.config.encoder.kind,
                "total": m.num_parameters(), "encoder_params": m.num_parameters("encoder"),
                "predictor_params": m.num_parameters("predictor"),
            })
    return rows


def time_step(model: WorldModel, loss_fn: JEPALoss, obs: torch.Tensor, acts: torch.Tensor,
              bf16: bool, backward: bool, repeats: int) -> float:
    times = []
    for i in range(repeats + 1):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        t = time.perf_counter()
        with ctx, (contextlib.nullcontext() if backward else torch.no_grad()):
            loss, _ = loss_fn(model, obs, acts)
        if backward:
            model.zero_grad(set_to_none=True)
            loss.backward()
        if i:  # first one is warm-up
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def sigreg_reference() -> dict[str, float]:
    D, N = 64, 512
    reg = SIGReg(num_projections=256, seed=0)
    g = torch.Generator().manual_seed(0)
    def mean(make) -> float:
        return statistics.mean(float(reg(make())) for _ in range(5))
    u = torch.randn(D, generator=g)
    return {
        "gaussian": mean(lambda: torch.randn(N, D, generator=g)),
        "rank1": mean(lambda: torch.randn(N, 1, generator=g) * (u / u.norm())),
        "zeros": mean(lambda: torch.zeros(N, D)),
        "shift+1": mean(lambda: torch.randn(N, D, generator=g) + 1.0),
        "scale x2": mean(lambda: 2.0 * torch.randn(N, D, generator=g)),
        "scale x0.5": mean(lambda: 0.5 * torch.randn(N, D, generator=g)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--action-dim", type=int, default=10, help="model action dim (frameskip 5 x 2)")
    args = ap.parse_args()
    torch.manual_seed(0)

    params = param_table(args.action_dim)
    print(f"{'preset':<7}{'obs':>14}{'encoder':>9}{'total':>12}{'encoder':>12}{'predictor':>12}")
    for r in params:
        print(f"{r['preset']:<7}{str(tuple(r['obs_shape'])):>14}{r['encoder']:>9}{r['total']:>12,}"
              f"{r['encoder_params']:>12,}{r['predictor_params']:>12,}")

    model = WorldModel(WorldModelConfig.preset("small", obs_shape=(3, 64, 64), action_dim=args.action_dim))
    model.train()
    obs = torch.randint(0, 256, (args.batch, args.frames, 3, 64, 64), dtype=torch.uint8)
    acts = torch.randn(args.batch, args.frames - 1, args.action_dim)
    loss_fn = JEPALoss(make_regularizer("sigreg"))
    timing = []
    for bf16 in (False, True):
        for backward in (False, True):
            s = time_step(model, loss_fn, obs, acts, bf16, backward, args.repeats)
            timing.append({"dtype": "bf16 autocast" if bf16 else "fp32",
                           "pass": "forward+backward" if backward else "forward", "seconds": s})
    print(f"\nsmall preset, B={args.batch}, T={args.frames}, 64x64, torch threads={torch.get_num_threads()}")
    for r in timing:
        print(f"  {r['dtype']:<14}{r['pass']:<18}{r['seconds'] * 1000:>9.1f} ms")

    ref = sigreg_reference()
    print("\nSIGReg (D=64, N=512, M=256, mean of 5): " + ", ".join(f"{k} {v:.2f}" for k, v in ref.items()))

    out = Path(__file__).parent / "results" / "models.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "params": params, "train_step": timing, "sigreg_reference": ref,
        "batch": args.batch, "frames": args.frames, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
