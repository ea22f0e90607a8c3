"""Where a CEM decision's time goes: torch.profiler over the candidate rollout, eager or compiled.

    .venv/bin/python bench/profile_rollout.py [--model runs/tworoom] [--compile] [--samples 300] [--repeats 10]

One CEM iteration of the demo's planner is one rollout of ``--samples`` candidates over horizon 5
(bf16, the KV-cached path of :class:`~forethought.models.fast_rollout.CandidateRollout`), from a full
history. Prints the mean rollout time and the operators that take it (self CPU time), and writes
bench/results/profile_rollout[_compiled].json. Without ``--model`` the `small` preset with random
weights is profiled (latency does not depend on the weights). One torch thread unless OMP_NUM_THREADS says.
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
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from forethought.models import WorldModel, WorldModelConfig  # noqa: E402
from forethought.models.fast_rollout import CandidateRollout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a model or run folder (default: the small preset, random weights)")
    parser.add_argument("--compile", action="store_true", help="profile the torch.compile'd rollout")
    parser.add_argument("--samples", type=int, default=300, help="candidates per rollout (default 300)")
    parser.add_argument("--horizon", type=int, default=5, help="model steps per candidate (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="profiled rollouts (default 10)")
    parser.add_argument("--rows", type=int, default=12, help="operators printed (default 12)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.model:
        path = Path(args.model)
        model = WorldModel.from_pretrained(path / "model" if (path / "model").is_dir() else path)
    else:
        model = WorldModel(WorldModelConfig.preset("small", obs_shape=(3, 64, 64), action_dim=10)).eval()
    rollout = CandidateRollout(model.predictor, torch.bfloat16, compile=args.compile)
    h, D, A = model.history, model.config.latent_dim, model.action_dim
    z, actions, past = torch.randn(1, h, D), torch.randn(1, args.samples, args.horizon, A), torch.randn(1, h - 1, A)
    with torch.inference_mode():
        for _ in range(3):  # warm-up (and compilation)
            rollout(z, actions, past)
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            rollout(z, actions, past)
        per_rollout = (time.perf_counter() - t0) / args.repeats
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                rollout(z, actions, past)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = [{"op": e.key, "self_ms_per_rollout": e.self_cpu_time_total / 1e3 / args.repeats,
             "share": e.self_cpu_time_total / total, "calls_per_rollout": e.count / args.repeats} for e in events]
    mode = "compiled" if args.compile else "eager"
    print(f"bf16 {mode} rollout of {args.samples} candidates x horizon {args.horizon}: {1e3 * per_rollout:.1f} ms "
          f"(x30 iterations = {30 * per_rollout:.3f} s per CEM decision); {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}")
    print(f"{'operator':45s} {'ms/rollout':>10s} {'share':>6s} {'calls':>6s}")
    for r in rows[: args.rows]:
        print(f"{r['op'][:45]:45s} {r['self_ms_per_rollout']:10.2f} {r['share']:6.1%} {r['calls_per_rollout']:6.0f}")
    out = Path(__file__).parent / "results" / f"profile_rollout{'_compiled' if args.compile else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"mode": mode, "samples": args.samples, "horizon": args.horizon,
                               "threads": torch.get_num_threads(), "rollout_s": per_rollout,
                               "model": args.model or "small preset, random weights", "ops": rows[:40]}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
