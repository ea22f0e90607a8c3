"""Planning latency per MPC decision, FLOPs and the fraction of the machine's matmul peak.

    .venv/bin/python bench/plan.py [--repeats 3] [--quick] [--threads 1]
        [--predictor-width 128 --predictor-depth 2 --history 1]   # a lighter predictor, same budget
        [--compile [--compile-mode max-autotune]]                  # + torch.compile'd CEM rows
        [--samples 300 --iterations 10]                            # another budget: plan_s300_i10.json

Setting (issue 4): the ``small`` preset (64x64 pixels, D=128, predictor width 128 x 2 blocks,
history 3, local attention), frameskip 5 on a 2-D env action (model action dim 10), horizon 5, one episode (B=1),
one torch thread (``--threads``), random weights (latency does not depend on them). CEM 300 samples x 30
iterations; MPPI and the gradient planner at the same budget (9,000 sequence evaluations per
decision; a gradient step also pays a backward pass). Each row is the median of ``--repeats``
decisions of a real :class:`MPCAgent` (encode the new frame + plan + queue), measured after the
history is full. "fast" is the shared-history candidate rollout, "ref" the reference rollout that
repeats the history per candidate, "compiled" the fast one through ``torch.compile``
(``--compile``; "first_decision_s" in the JSON is the first full-history decision, compilation
included). FLOPs are counted with ``torch.utils.flop_counter`` on one
objective call (matmuls and attention) times the iterations. Peak: one 2048^3 matmul, 1 thread.
The predictor flags override the preset's predictor width/depth and history (the preset itself is
not changed) to see what a lighter predictor would cost; such runs write
bench/results/plan_w<width>_d<depth>_h<history>.json, the preset run bench/results/plan.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from forethought.agent import MPCAgent  # noqa: E402
from forethought.data.normalization import Normalizer, NormStats  # noqa: E402
from forethought.models import WorldModel, WorldModelConfig  # noqa: E402
from forethought.planning import LatentGoalObjective, make_planner  # noqa: E402

FRAMESKIP, ENV_A, HORIZON, SAMPLES, ITERS = 5, 2, 5, 300, 30


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matmul (best of ``repeats``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def decision_flops(model: WorldModel, planner_name: str, bf16: bool, fast: bool) -> float:
    """FLOPs of one decision with a full history: one objective call (and backward) x iterations."""
    h, A = model.history, model.action_dim
    z, past, goal = torch.randn(1, h, model.latent_dim), torch.randn(1, h - 1, A), torch.randn(1, model.latent_dim)
    objective = LatentGoalObjective(model, "l2", bf16=bf16, fast=fast)(z, past, goal)
    acts = torch.randn(1, SAMPLES, HORIZON, A, requires_grad=planner_name == "gradient")
    counter = FlopCounterMode(display=False)
    with counter:
        if planner_name == "gradient":
            torch.autograd.grad(objective(acts).sum(), acts)
        else:
            with torch.inference_mode():
                objective(acts)
    return counter.get_total_flops() * ITERS


def time_decisions(model: WorldModel, planner_name: str, bf16: bool, fast: bool, repeats: int,
                   compile: bool = False, compile_mode: str | None = None) -> tuple[list[float], float]:
    """Decision times with a full history, and the first full-history decision's time (with
    ``compile`` it includes compiling that shape)."""
    space = spaces.Box(-1.0, 1.0, (ENV_A,), np.float32)
    planner = make_planner(planner_name, samples=SAMPLES, iterations=ITERS, seed=0)
    objective = LatentGoalObjective(model, "l2", bf16=bf16, fast=fast, compile=compile, compile_mode=compile_mode)
    agent = MPCAgent(model, planner, action_space=space, horizon=HORIZON, receding=1, objective=objective)
    rng = np.random.default_rng(0)
    agent.reset(rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8))
    warm = model.history  # decisions before the history is full, then one-off allocations / compilation
    for _ in range((warm + repeats) * FRAMESKIP):
        agent.act(rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8))
    return agent.decision_times[warm:], agent.decision_times[warm - 1]


def main() -> None:
    global SAMPLES, ITERS  # the budget unless overridden (e.g. a cheaper budget at equal success)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the one process (default 1)")
    parser.add_argument("--quick", action="store_true", help="CEM rows only")
    parser.add_argument("--fast-only", action="store_true", help="skip the reference-rollout rows")
    parser.add_argument("--predictor-width", type=int, help="override the preset's predictor width")
    parser.add_argument("--predictor-depth", type=int, help="override the preset's predictor depth")
    parser.add_argument("--history", type=int, help="override the preset's history h")
    parser.add_argument("--samples", type=int, default=SAMPLES, help=f"candidates per iteration (default {SAMPLES})")
    parser.add_argument("--iterations", type=int, default=ITERS, help=f"planner iterations (default {ITERS})")
    parser.add_argument("--compile", action="store_true",
                        help="also time the torch.compile'd fast rollout (LatentGoalObjective(compile=True)) for CEM")
    parser.add_argument("--compile-mode", choices=("default", "max-autotune"), default="default",
                        help="torch.compile mode of --compile (max-autotune: minutes to compile, ~10%% faster)")
    args = parser.parse_args()
    SAMPLES, ITERS = args.samples, args.iterations
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("small", obs_shape=(3, 64, 64), action_dim=FRAMESKIP * ENV_A, frameskip=FRAMESKIP)
    overrides = {k: v for k, v in (("width", args.predictor_width), ("depth", args.predictor_depth)) if v is not None}
    cfg = dataclasses.replace(cfg, predictor=dataclasses.replace(cfg.predictor, **overrides),
                              history=args.history or cfg.history)
    pcfg = cfg.predictor
    custom = bool(overrides) or args.history is not None
    norm = Normalizer(NormStats.fit(np.random.default_rng(0).uniform(-1, 1, (1000, ENV_A))))
    model = WorldModel(cfg, norm.to_dict()).eval()
    with torch.no_grad():  # non-zero AdaLN gates and head, so no shortcut is taken by accident
        for p in model.predictor.parameters():
            p.normal_(0, 0.02)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = []
    cases = [("cem", dt, fast, False) for dt in ("fp32", "bf16") for fast in ((True,) if args.fast_only else (False, True))]
    if args.compile:
        cases += [("cem", dt, True, True) for dt in ("fp32", "bf16")]
    if not args.quick:
        cases += [(p, dt, True, False) for p in ("mppi", "gradient") for dt in ("fp32", "bf16")]
    for name, dt, fast, comp in cases:
        bf16 = dt == "bf16"
        times, first = time_decisions(model, name, bf16, fast, args.repeats, comp,
                                      None if args.compile_mode == "default" else args.compile_mode)
        # FLOPs are counted on the eager graph (the compiled one does the same matmuls).
        # FLOPs do not depend on the dtype; counting in fp32 also sees every matmul (the bf16 path
        # calls oneDNN's linear, which FlopCounterMode does not know).
        flops = decision_flops(model, name, False, fast)
        sec = statistics.median(times)
        rows.append({"planner": name, "dtype": dt, "rollout": ("compiled" if comp else "fast") if fast else "ref",
                     "samples": SAMPLES, "iterations": ITERS, "horizon": HORIZON,
                     "decision_s": sec, "decision_s_all": times, "first_decision_s": first, "gflop": flops / 1e9,
                     "gflops": flops / 1e9 / sec, "peak_fraction": flops / 1e9 / sec / peaks[dt]})
        r = rows[-1]
        print(f"{name:9s} {dt:5s} {r['rollout']:8s} {sec:8.3f} s/decision  {r['gflop']:7.1f} GFLOP  "
              f"{r['gflops']:7.1f} GFLOP/s  {100 * r['peak_fraction']:5.1f}% of {dt} peak", flush=True)
    print(f"\nmatmul peak, {args.threads} thread(s): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; "
          f"torch threads = {torch.get_num_threads()}; target <= 0.2 s/decision")
    print(f"predictor width {pcfg.width}, depth {pcfg.depth}, heads {pcfg.heads}, history {cfg.history}, "
          f"local attention, "
          f"{model.num_parameters('predictor') / 1e6:.2f} M parameters")
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "model": "small preset, obs (3,64,64), frameskip 5, env action dim 2, random weights"
           + (" (predictor overridden)" if custom else ""),
           "predictor": {"width": pcfg.width, "depth": pcfg.depth, "heads": pcfg.heads, "history": cfg.history,
                         "compile_mode": args.compile_mode if args.compile else None,
                         "parameters": model.num_parameters("predictor")},
           "batch_episodes": 1, "matmul_peak_gflops": peaks, "rows": rows,
           "command": ".venv/bin/python " + " ".join(["bench/plan.py", *sys.argv[1:]])}
    name = f"plan_w{pcfg.width}_d{pcfg.depth}_h{cfg.history}" if custom else "plan"
    name += "" if (SAMPLES, ITERS) == (300, 30) else f"_s{SAMPLES}_i{ITERS}"
    name += "" if args.threads == 1 else f"_t{args.threads}"
    name += ".json"
    path = Path(__file__).parent / "results" / name
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
