"""Speculative rollouts on the TwoRoom `small` model: calls, acceptance, speedup, final error.

For each horizon H and batch size B: the plain step-by-step target rollout
(``autoregressive_rollout``), the fast candidate rollout (``rollout_candidates`` with N=1, the
planner's optimised path and what ``WorldModel.rollout`` runs in eval mode) and the
speculative rollout at each (epsilon, gamma). Starts are real dataset frames encoded by the
target (held-out seed), actions uniform in the env box (normalized), histories of h = 3 frames
with their real past actions. Errors are ``||spec_H - plain_H|| / latent_scale`` (the draft's
recorded scale, ``sqrt(E||z - E z||^2)`` over dataset latents). Times are medians of repeats that
interleave the methods (fair under a fluctuating shared load), summed over ``max(1, 8 // B)``
independent start groups so B = 1 is not one lucky trajectory.

    OMP_NUM_THREADS=1 .venv/bin/python bench/speculative.py --draft runs/tworoom/draft
    OMP_NUM_THREADS=1 .venv/bin/python bench/speculative.py --draft ... --quick   # seconds, smoke

Writes ``bench/results/speculative.json``. One torch thread unless ``--threads``; the SSD
section uses a second thread for the pre-drafter (2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from forethought.models import WorldModel, autoregressive_rollout
from forethought.planning.costs import goal_cost
from forethought.speculative.distill import encode_dataset, random_model_actions
from forethought.speculative.draft import DraftPredictor, load_draft
from forethought.speculative.planning import SpeculativeObjective
from forethought.speculative.rollout import speculative_rollout
from forethought.speculative.rounds import SpeculativeStats
from forethought.speculative.ssd import SSDStats, ssd_rollout


def interleaved(fns: dict, repeats: int) -> tuple[dict[str, float], dict]:
    """Median seconds per function and their results; the functions run in turn inside each
    repeat (after one warm-up round), so load changes on a shared machine hit them alike."""
    outs = {k: f() for k, f in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def bench_case(model, draft, zz, aa, H: int, B: int, settings, repeats: int, seed: int) -> list[dict]:
    h = model.history
    scale = draft.config.latent_scale
    groups = max(1, 8 // B)
    gen = torch.Generator().manual_seed(seed)
    acts = random_model_actions(model, (groups * B, H, model.action_dim), gen)
    total: dict[str, float] = {}
    stats = {s: SpeculativeStats() for s in settings}
    errs: dict = {s: [] for s in settings}
    for g in range(groups):
        z, pa, a = zz[g * B : (g + 1) * B, :h], aa[g * B : (g + 1) * B, : h - 1], acts[g * B : (g + 1) * B]
        fns = {"plain": lambda: autoregressive_rollout(model.predictor, z, a, pa),
               "fast": lambda: model.rollout_candidates(z, a[:, None], pa)[:, 0]}
        for eps, gamma in settings:
            fns[(eps, gamma)] = (lambda e=eps, gm=gamma: speculative_rollout(
                model.predictor, draft, z, a, pa, gamma=gm, epsilon=e))
        times, outs = interleaved(fns, repeats)
        for k, t in times.items():
            total[k] = total.get(k, 0.0) + t
        for eps, gamma in settings:
            speculative_rollout(model.predictor, draft, z, a, pa, gamma=gamma, epsilon=eps, stats=stats[(eps, gamma)])
            errs[(eps, gamma)].append((outs[(eps, gamma)][:, -1] - outs["plain"][:, -1]).norm(dim=-1) / scale)
    rows = []
    for eps, gamma in settings:
        st, err, spec_t = stats[(eps, gamma)], torch.cat(errs[(eps, gamma)]), total[(eps, gamma)]
        rows.append({
            "H": H, "B": B, "epsilon": eps, "gamma": gamma,
            "target_calls_per_rollout": st.target_calls / st.rollouts, "plain_calls": H,
            "acceptance_rate": round(st.acceptance_rate, 4),
            "plain_ms": 1e3 * total["plain"] / groups, "fast_ms": 1e3 * total["fast"] / groups,
            "spec_ms": 1e3 * spec_t / groups,
            "speedup_vs_plain": total["plain"] / spec_t, "speedup_vs_fast": total["fast"] / spec_t,
            "final_err_mean": float(err.mean()), "final_err_max": float(err.max()),
        })
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'H':>4} {'B':>3} {'eps':>6} {'gam':>3} {'calls':>6} {'accept':>6} {'plain ms':>9} {'fast ms':>8} "
          f"{'spec ms':>8} {'x plain':>7} {'x fast':>6} {'err mean':>8} {'err max':>8}")
    for r in rows:
        print(f"{r['H']:>4} {r['B']:>3} {r['epsilon']:>6.3f} {r['gamma']:>3} {r['target_calls_per_rollout']:>6.1f} "
              f"{r['acceptance_rate']:>6.3f} {r['plain_ms']:>9.2f} {r['fast_ms']:>8.2f} {r['spec_ms']:>8.2f} "
              f"{r['speedup_vs_plain']:>7.2f} {r['speedup_vs_fast']:>6.2f} "
              f"{r['final_err_mean']:>8.4f} {r['final_err_max']:>8.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/tworoom/model")
    p.add_argument("--data", default="data/tworoom")
    p.add_argument("--draft", default="runs/tworoom/draft")
    p.add_argument("--horizons", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--epsilons", type=float, nargs="+", default=[0.01, 0.03])
    p.add_argument("--gamma", type=int, default=4)
    p.add_argument("--sweep-epsilons", type=float, nargs="+", default=[0.0, 0.005, 0.01, 0.02, 0.03, 0.05])
    p.add_argument("--sweep-gammas", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sections", nargs="+", default=["table", "sweep", "ssd", "planner", "truth"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    p.add_argument("--out", default="bench/results/speculative.json")
    args = p.parse_args()
    if args.quick:
        args.horizons, args.batches, args.repeats = [10, 50], [1, 8], 1
        args.sweep_epsilons, args.sweep_gammas = [0.0, 0.03], [4]
    torch.set_num_threads(args.threads)
    model = WorldModel.from_pretrained(args.model)
    model.validate_inputs = False
    draft = load_draft(args.draft, target=model)
    zz, aa = encode_dataset(model, args.data, 64, seed=12345)
    result = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "draft": draft.config.stats,
              "latent_scale": draft.config.latent_scale, "command": "bench/speculative.py " + " ".join(
                  f"--{k} {v}" for k, v in vars(args).items() if k in ("draft", "gamma", "repeats", "threads")),
              "note": "timings on a shared 2-core CPU machine"}
    print(f"torch threads: {torch.get_num_threads()}; latent scale {draft.config.latent_scale:.3f}; "
          f"draft held-out one-step error {draft.config.stats.get('val_rel_error_mean', float('nan')):.4f}")
    with torch.inference_mode():
        if "table" in args.sections:
            rows = []
            for H in args.horizons:
                for B in args.batches:
                    rows += bench_case(model, draft, zz, aa, H, B, [(e, args.gamma) for e in args.epsilons],
                                       args.repeats, seed=H * 1000 + B)
            print("\n## horizons x batch sizes")
            print_rows(rows)
            result["table"] = rows
        if "sweep" in args.sections:
            settings = [(e, g) for g in args.sweep_gammas for e in args.sweep_epsilons]
            rows = bench_case(model, draft, zz, aa, 50, 1, settings, args.repeats, seed=7)
            print("\n## H = 50, B = 1: epsilon x gamma")
            print_rows(rows)
            result["sweep"] = rows
    if "ssd" in args.sections:
        result["ssd"] = run_ssd_section(model, draft, zz, aa, args)
    if "planner" in args.sections:
        result["planner"] = run_planner_section(model, draft, zz, aa, args)
    if "truth" in args.sections:
        result["truth"] = run_truth_section(model, draft, zz, aa, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}")


def benchmark_ssd(model: WorldModel, draft: DraftPredictor, zz: torch.Tensor, aa: torch.Tensor, *,
                  horizon: int = 50, epsilons: Sequence[float] = (0.03,), gamma: int = 4, repeats: int = 5,
                  groups: int = 8, seed: int = 7) -> dict:
    """SSD vs the same algorithm without pre-drafting vs plain speculative, ``B = 1``, ``groups`` starts.

    ``zz (E, T, D)`` encoded windows and ``aa (E, T-1, A)`` their actions (``E >= groups``). Uses
    two torch threads' worth of cores (the caller's thread plus the pre-drafter, each running
    single-threaded ops). Returns ``{"rows": [...]}`` with times in ms per rollout.
    """
    h = model.history
    gen = torch.Generator().manual_seed(seed)
    acts = random_model_actions(model, (groups, horizon, model.action_dim), gen)

    def run(fn: Callable[..., torch.Tensor]) -> float:
        total = 0.0
        for g in range(groups):
            args = (model.predictor, draft, zz[g : g + 1, :h], acts[g : g + 1], aa[g : g + 1, : h - 1])
            fn(*args)
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn(*args)
                ts.append(time.perf_counter() - t)
            total += sorted(ts)[len(ts) // 2]
        return 1e3 * total / groups

    rows = []
    with torch.inference_mode():
        plain_ms = run(lambda t, d, z, a, pa: autoregressive_rollout(t, z, a, pa))
        for eps in epsilons:
            st, st0 = SSDStats(), SSDStats()
            for g in range(groups):
                args = (model.predictor, draft, zz[g : g + 1, :h], acts[g : g + 1], aa[g : g + 1, : h - 1])
                ssd_rollout(*args, gamma=gamma, epsilon=eps, stats=st)
                ssd_rollout(*args, gamma=gamma, epsilon=eps, stats=st0, pre_draft=False)
            spec_ms = run(lambda *a: speculative_rollout(*a, gamma=gamma, epsilon=eps))
            ssd_ms = run(lambda *a: ssd_rollout(*a, gamma=gamma, epsilon=eps))
            nopre_ms = run(lambda *a: ssd_rollout(*a, gamma=gamma, epsilon=eps, pre_draft=False))
            rows.append({"H": horizon, "B": 1, "epsilon": eps, "gamma": gamma, "hit_rate": st.hit_rate,
                         "acceptance_rate": st.acceptance_rate, "rounds_per_rollout": st.rounds / st.rollouts,
                         "plain_ms": plain_ms, "speculative_ms": spec_ms, "ssd_ms": ssd_ms,
                         "ssd_no_predraft_ms": nopre_ms, "ssd_over_speculative": spec_ms / ssd_ms,
                         "ssd_over_no_predraft": nopre_ms / ssd_ms, "ssd_over_plain": plain_ms / ssd_ms})
    return {"rows": rows, "torch_threads": torch.get_num_threads(), "threads_used": 2}


def benchmark_planner(model: WorldModel, draft: DraftPredictor, zz: torch.Tensor, aa: torch.Tensor, *,
                      repeats: int = 3, epsilon: float = 0.03, gamma: int = 4,
                      shapes: Sequence[tuple[int, int]] = ((1, 5), (16, 5), (300, 5), (16, 50), (1, 50))) -> dict:
    """Objective evaluations at planner shapes ``(N candidates, H)`` for one episode: the planners'
    latent rollout objective (``rollout_candidates`` + goal cost) vs :class:`SpeculativeObjective`.
    Times in ms (medians)."""
    h = model.history
    z_hist, a_hist, goal = zz[:1, :h], aa[:1, : h - 1], zz[:1, -1]
    cost = goal_cost(goal, "l2", "last")
    factory = SpeculativeObjective(model, draft, epsilon=epsilon, gamma=gamma, cost="l2", reduce="last")
    rows = []
    with torch.inference_mode():
        for N, H in shapes:
            acts = random_model_actions(model, (1, N, H, model.action_dim), torch.Generator().manual_seed(N + H))
            fast = lambda a: cost(model.rollout_candidates(z_hist, a, a_hist), a)  # noqa: E731
            spec = factory(z_hist, a_hist, goal)
            t: dict[str, list[float]] = {"fast": [], "spec": []}
            c_fast, c_spec = fast(acts), spec(acts)
            for _ in range(repeats):
                for k, f in (("fast", fast), ("spec", spec)):
                    t0 = time.perf_counter()
                    f(acts)
                    t[k].append(time.perf_counter() - t0)
            med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in t.items()}
            rows.append({"N": N, "H": H, "fast_ms": med["fast"], "spec_ms": med["spec"],
                         "speedup": med["fast"] / med["spec"],
                         "cost_rel_diff": float(((c_spec - c_fast).abs() / c_fast.abs().clamp_min(1e-8)).mean())})
    return {"rows": rows, "epsilon": epsilon, "gamma": gamma}


def print_section(title: str, res: dict) -> None:
    print(f"\n## {title}")
    for r in res["rows"]:
        print("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))


def run_ssd_section(model: WorldModel, draft: DraftPredictor, zz: torch.Tensor, aa: torch.Tensor,
                    args: argparse.Namespace) -> dict:
    """SSD vs plain speculative on H = 50, B = 1 (2 threads)."""
    res = benchmark_ssd(model, draft, zz, aa, horizon=50, epsilons=args.epsilons, gamma=args.gamma,
                        repeats=args.repeats, groups=8)
    print_section("SSD (pre-drafting thread) vs speculative, H = 50, B = 1", res)
    return res


def run_planner_section(model: WorldModel, draft: DraftPredictor, zz: torch.Tensor, aa: torch.Tensor,
                        args: argparse.Namespace) -> dict:
    """The speculative objective at planner shapes."""
    res = benchmark_planner(model, draft, zz, aa, repeats=args.repeats)
    print_section("planner objective", res)
    return res


def run_truth_section(model, draft, zz, aa, args) -> dict:
    """Context for the errors: the target's own open-loop error against the encoded real frames
    (dataset actions, the longest window every episode has) next to the speculative deviation."""
    h = model.history
    scale = draft.config.latent_scale
    truth = zz[:, h:]
    res = {"H": int(truth.shape[1]), "rows": []}
    with torch.inference_mode():
        plain = model.rollout(zz[:, :h], aa[:, h - 1 :], aa[:, : h - 1])
        res["target_vs_truth_final"] = float(((plain - truth)[:, -1].norm(dim=-1) / scale).mean())
        for eps in args.epsilons:
            spec = speculative_rollout(model.predictor, draft, zz[:, :h], aa[:, h - 1 :], aa[:, : h - 1],
                                       gamma=args.gamma, epsilon=eps)
            res["rows"].append({"epsilon": eps,
                                "spec_vs_plain_final": float(((spec - plain)[:, -1].norm(dim=-1) / scale).mean()),
                                "spec_vs_truth_final": float(((spec - truth)[:, -1].norm(dim=-1) / scale).mean())})
    print(f"\n## errors in context (H = {res['H']}, dataset actions, 64 held-out starts)")
    print(f"  target vs encoded real frames: final {res['target_vs_truth_final']:.3f} of latent scale")
    for r in res["rows"]:
        print(f"  eps {r['epsilon']}: speculative vs target {r['spec_vs_plain_final']:.3f}, "
              f"speculative vs real frames {r['spec_vs_truth_final']:.3f}")
    return res


if __name__ == "__main__":
    main()
