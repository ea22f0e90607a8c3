"""`forethought scale`: success against planning compute and against wall-clock per decision.

The inference-time scaling question of the online agent: a planner that runs twice as fast can
search twice as much in the same time. For each planner configuration (eager reference rollout,
KV-cached fp32, bf16, compiled, speculative) and on the same tasks:

* **compute axis**: CEM/MPPI at fixed ``samples x iterations`` (run in full). Success against
  predictor steps per decision (``samples x iterations x horizon``): the configurations should
  overlap here (the same search), except where bf16 or speculation changes the rollouts.
* **time axis**: the same planner with a real-time budget per decision (anytime: as many
  iterations as fit, ``MPCAgent.decision_ms``). Success against milliseconds per decision: here
  the faster configuration searches more in the same time and should dominate.

Every point is a full evaluation under the protocol of ``eval`` (tasks, seeds, judging), and
records the iterations the planner really ran and the decisions that overran.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from forethought._atomic import atomic_write_json
from forethought.evaluation.config import EvalConfig, MPCConfig
from forethought.evaluation.protocol import evaluate
from forethought.evaluation.report import check_out_folder
from forethought.evaluation.scale_arguments import ScaleConfig
from forethought.evaluation.sweep import parse_pairs


class CountingPlanner:
    """A planner that forwards to another and records how many iterations each plan ran."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.iterations = inner, []

    @property
    def config(self) -> Any:
        return self.inner.config

    def reseed(self, seed: int | None = None) -> None:
        self.inner.reseed(seed)

    def plan(self, objective: Any, init: Any, low: Any, high: Any, *, deadline: float | None = None) -> Any:
        result = self.inner.plan(objective, init, low, high, **({} if deadline is None else {"deadline": deadline}))
        self.iterations.append(int(result.trace.shape[0]))
        return result


def build_objective(name: str, model: Any, cfg: ScaleConfig) -> Any:
    """The objective factory of one configuration (built once per configuration: compiled stays compiled)."""
    from forethought.planning import LatentGoalObjective

    if name == "eager":
        return LatentGoalObjective(model, fast=False)
    mpc = MPCConfig(planner=cfg.planner, horizon=cfg.horizon, bf16=name in ("bf16", "compiled-bf16"),
                    compile=name.startswith("compiled"), draft=cfg.draft if name == "speculative" else None)
    return mpc.build_objective(model)


def _point(model: Any, objective: Any, action_space: Any, device: str, cfg: ScaleConfig, env_id: str,
           env_kwargs: dict[str, Any], tasks: list, samples: int, iterations: int,
           decision_ms: float | None) -> dict[str, Any]:
    from forethought.agent.mpc import MPCAgent
    from forethought.planning import make_planner

    planner = CountingPlanner(make_planner(cfg.planner, samples=samples, iterations=iterations, seed=cfg.seed))
    agent = MPCAgent(model, planner, action_space=action_space, device=device, horizon=cfg.horizon, objective=objective)
    agent.decision_ms = decision_ms
    result = evaluate(agent, env_id, env_kwargs, tasks, budget=cfg.budget, batch=cfg.batch, seed=cfg.seed,
                      name=f"{samples}x{iterations}")
    s = result.summary()
    ran = sum(planner.iterations) / max(1, len(planner.iterations))
    return {"samples": samples, "iterations": iterations, "iterations_run_mean": ran,
            "predictor_steps": samples * ran * cfg.horizon, "decision_ms": decision_ms,
            "decisions": agent.decisions, "overruns": agent.overruns,
            **{k: s[k] for k in ("success_rate", "ci95", "successes", "episodes", "decision_time_s", "wall_time_s")}}


def _warm_up(model: Any, objective: Any, action_space: Any, device: str, cfg: ScaleConfig, env_id: str,
             env_kwargs: dict[str, Any], tasks: list, samples: int) -> None:
    """One short episode per new candidate shape, so a compiled rollout is compiled before it is timed."""
    from forethought.agent.mpc import MPCAgent
    from forethought.planning import make_planner

    agent = MPCAgent(model, make_planner(cfg.planner, samples=samples, iterations=1, seed=cfg.seed),
                     action_space=action_space, device=device, horizon=cfg.horizon, objective=objective)
    evaluate(agent, env_id, env_kwargs, tasks[: cfg.batch], budget=1, batch=cfg.batch, seed=cfg.seed, name="warm-up")


def run_scale(cfg: ScaleConfig) -> dict[str, Any]:
    """Evaluate every configuration on both axes; write ``scale.json`` and ``scale.png``; return the report."""
    import torch

    from forethought.agent.compat import check_model_env
    from forethought.data.store import EpisodeStore
    from forethought.envs import make
    from forethought.evaluation.runner import _tasks
    from forethought.models import WorldModel
    from forethought.training.run_folder import RunPaths

    out = check_out_folder(cfg.out, cfg.overwrite)
    pairs = parse_pairs(cfg.pairs)
    paths = RunPaths.resolve(cfg.model, cfg.data)
    store = EpisodeStore.open(paths.data) if paths.data is not None else None
    env_id = cfg.env or (store.meta.get("env_id") if store is not None else None)
    if not env_id:
        raise ValueError("no dataset and no environment: pass --data (the model's dataset) or --env")
    env_kwargs = cfg.env_kwargs if cfg.env_kwargs is not None else dict(
        (store.meta.get("env_kwargs") or {}) if store is not None else {})
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = WorldModel.from_pretrained(paths.model, device=device)
    probe = make(env_id, **env_kwargs)
    try:
        warnings = check_model_env(model, env_id, probe, model_dir=paths.model)
        action_space = probe.action_space
    finally:
        probe.close()
    eval_cfg = EvalConfig(model=cfg.model, out=cfg.out, env=env_id, env_kwargs=env_kwargs, data=cfg.data,
                          episodes=cfg.episodes, goal_source=cfg.goal_source, goal_offset=cfg.goal_offset,
                          budget=cfg.budget, seed=cfg.seed)
    tasks, tasks_note, _ = _tasks(eval_cfg, paths, store, env_id, env_kwargs)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for name in cfg.config_list:
        objective = build_objective(name, model, cfg)
        for samples in sorted({s for s, _ in pairs} | {cfg.samples}):
            _warm_up(model, objective, action_space, device, cfg, env_id, env_kwargs, tasks, samples)
        for samples, iterations in pairs:
            rows.append({"config": name, "axis": "compute", **_point(model, objective, action_space, device, cfg, env_id,
                                                                     env_kwargs, tasks, samples, iterations, None)})
            _say(cfg, rows[-1], t0)
        for ms in cfg.budgets_ms:
            rows.append({"config": name, "axis": "time", **_point(model, objective, action_space, device, cfg, env_id,
                                                                  env_kwargs, tasks, cfg.samples, cfg.max_iterations,
                                                                  ms)})
            _say(cfg, rows[-1], t0)
    report = {"meta": {"command": shlex.join(["forethought", *sys.argv[1:]]) if sys.argv and sys.argv[0]
                       else "forethought scale", "config": dataclasses.asdict(cfg), "model": str(paths.model),
                       "env_id": env_id, "env_kwargs": env_kwargs, "tasks_note": tasks_note, "episodes": len(tasks),
                       "device": device, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                       "warnings": warnings},
              "points": rows, "files": {"json": "scale.json"}, "notes": []}
    out.mkdir(parents=True, exist_ok=True)
    try:
        plot_scale(rows, out / "scale.png", title=f"{env_id}: {cfg.planner.upper()}, {len(tasks)} tasks")
        report["files"]["plot"] = "scale.png"
    except ImportError as e:
        report["notes"].append(f"scale.png skipped: {e} (pip install 'forethought[viz]')")
    atomic_write_json(out / "scale.json", report)
    print(markdown_table(rows))
    for note in report["notes"]:
        print(note)
    print(f"written to {out}/scale.json")
    return report


def _say(cfg: ScaleConfig, row: dict[str, Any], t0: float) -> None:
    if cfg.progress:
        where = f"{row['decision_ms']:g} ms" if row["axis"] == "time" else f"{row['samples']}x{row['iterations']}"
        print(f"[{time.perf_counter() - t0:7.1f} s] {row['config']:14s} {where:>10s}: success {row['success_rate']:.0%}, "
              f"{row['iterations_run_mean']:.1f} iterations, {row['overruns']} overruns", flush=True)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| config | axis | samples x iterations (run) | budget | success | 95% CI | ms/decision (mean) | overruns |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        budget = f"{r['decision_ms']:g} ms" if r["decision_ms"] is not None else "-"
        mean = r["decision_time_s"]["mean"]
        lines.append(f"| {r['config']} | {r['axis']} | {r['samples']} x {r['iterations_run_mean']:.1f} | {budget} | "
                     f"{r['success_rate']:.0%} | [{r['ci95'][0]:.0%}, {r['ci95'][1]:.0%}] | "
                     f"{'-' if mean is None else f'{1e3 * mean:.1f}'} | {r['overruns']}/{r['decisions']} |")
    return "\n".join(lines)


def plot_scale(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Two panels: success against predictor steps per decision, and against ms per decision."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120, sharey=True)
    ticks: dict[Any, set[float]] = {left: set(), right: set()}
    for name in dict.fromkeys(r["config"] for r in rows):
        for ax, axis, key in ((left, "compute", "predictor_steps"), (right, "time", "decision_ms")):
            pts = sorted((r for r in rows if r["config"] == name and r["axis"] == axis), key=lambda r: r[key])
            if pts:
                y = [100 * r["success_rate"] for r in pts]
                err = [[yi - 100 * r["ci95"][0] for yi, r in zip(y, pts)], [100 * r["ci95"][1] - yi for yi, r in zip(y, pts)]]
                ax.errorbar([r[key] for r in pts], y, yerr=err, marker="o", capsize=3, label=name, alpha=0.85)
                ticks[ax] |= {r[key] for r in pts}
    left.set_xlabel("predictor steps per decision (samples × iterations × horizon)")
    right.set_xlabel("wall-clock budget per decision (ms; anytime planning)")
    left.set_ylabel("success (%, 95% CI)")
    for ax in (left, right):
        ax.set_xscale("log")
        if ticks[ax]:
            ax.set_xticks(sorted(ticks[ax]), [f"{v:g}" for v in sorted(ticks[ax])], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Inference-time scaling")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path)
