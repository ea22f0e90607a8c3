"""`forethought benchmark`: every built-in task, collect -> train -> eval, under ours and the anchors' protocols.

The recipes (collection policy and size, preset, training steps, planner budget, protocols) live
here, in one place, so the results table in docs/results.md is one command away. Every stage
resumes: `collect` and `train` continue a killed run, and an evaluation whose report exists is
read back instead of rerun (`--fresh-eval` reruns them). The output folder holds one run folder
per task and `results.md` / `results.json` with a row per (task, protocol) and the command of each
stage.

Protocols (docs/results.md explains each):

* `ours`: start and goal from held-out episodes, goal 25 env steps ahead, budget 50, success judged
  once after the last step.
* `lewm` (PushT): stable-worldmodel / LeWM's: goals from the training episodes, success latched
  (any step within the budget), tasks already solved at the start kept (ours drops them).
* `swm-joints` (Reacher): stable-worldmodel's criterion, every joint within 0.05 rad of the goal.
* `dino` (PointMaze): DINO-WM's independent start and goal over the maze (env-sampled), success
  within 0.45, at a fixed budget of 100 steps (DINO-WM replans without a budget).

The recipes train and plan in bf16. `--precision auto` (the default) keeps that where the
hardware computes bf16 natively and runs everything in float32 elsewhere (an AVX2-only CPU
emulates bf16 several times slower than float32; `forethought._hardware`).

`--quick` shrinks every recipe (tiny preset, a few episodes) so the whole loop runs in about a
minute per task: a smoke test, not a measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forethought._atomic import atomic_write_bytes, atomic_write_json
from forethought._files import read_json
from forethought._hardware import native_bf16
from forethought.evaluation.config import EvalConfig, MPCConfig

PLANNING = dict(planner="cem", samples=300, iterations=30, horizon=5, bf16=True)


@dataclass(frozen=True)
class Recipe:
    """How one task is collected, trained and evaluated; `protocols` maps a name to EvalConfig overrides."""

    task: str
    env_id: str
    policy: str
    episodes: int
    steps: int
    train_steps: int
    preset: str = "small"
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, as the train options of those names
    mpc: dict[str, Any] = field(default_factory=lambda: dict(PLANNING))
    eval: dict[str, Any] = field(default_factory=dict)  # EvalConfig fields shared by the protocols
    protocols: dict[str, dict[str, Any]] = field(default_factory=lambda: {"ours": {}})

    def quick(self) -> Recipe:
        """The same loop at smoke-test size."""
        return dataclasses.replace(
            self, episodes=24, steps=min(self.steps, 40), train_steps=20, preset="tiny",
            mpc={**self.mpc, "samples": 16, "iterations": 2, "horizon": 2},
            eval={**self.eval, "episodes": 4, "budget": 10, "batch": 4, "goal_offset": 5},
            protocols={name: {k: v for k, v in p.items() if k != "budget"} for name, p in self.protocols.items()},
        )

    def float32(self) -> Recipe:
        """The same recipe with training and planning in float32."""
        return dataclasses.replace(self, train={k: v for k, v in self.train.items() if k != "bf16"},
                                   mpc={**self.mpc, "bf16": False})


RECIPES: dict[str, Recipe] = {r.task: r for r in (
    # TwoRoom, PointMaze and Reacher: the `make demo` recipe (colored sampling noise, beta 3), as README's table.
    Recipe("tworoom", "forethought/TwoRoom-v0", "smooth", 1000, 100, 1500, mpc={**PLANNING, "noise_beta": 3.0}),
    Recipe("pointmaze", "forethought/PointMaze-v0", "smooth", 1000, 100, 1500, eval={"skip_solved": True},
           mpc={**PLANNING, "noise_beta": 3.0}, protocols={"ours": {}, "dino": {"goal_source": "env", "budget": 100}}),
    Recipe("reacher", "forethought/Reacher-v0", "smooth", 1000, 100, 1500, eval={"skip_solved": True},
           mpc={**PLANNING, "noise_beta": 3.0}, protocols={"ours": {}, "swm-joints": {"env_kwargs": {"success": "joints"}}}),
    # The scripted expert paced like replayed human demonstrations (docs/results.md, "The scripted PushT
    # expert"); LeWM's protocol keeps the tasks already solved at the start, as stable-worldmodel draws them.
    Recipe("pusht", "forethought/PushT-v0", "pusht-expert", 4000, 100, 6000,
           policy_kwargs={"noise": 0.1, "speed": 0.3}, train={"bf16": True}, eval={"skip_solved": True},
           protocols={"ours": {}, "lewm": {"goal_split": "train", "success": "any", "skip_solved": False}}),
)}


def _command(*argv: Any) -> str:
    return shlex.join(["forethought", *(str(a) for a in argv)])


def _flags(fields: dict[str, Any]) -> list[str]:
    """EvalConfig / MPCConfig fields as the CLI options that set them."""
    out: list[str] = []
    for key, value in fields.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, dict):
            out += [flag, json.dumps(value)]
        elif value is not False and value is not None:
            out += [flag, str(value)]
    return out


def stage_commands(recipe: Recipe, data: Path, run: Path, seed: int) -> list[str]:
    """The `forethought collect` and `forethought train` commands that `run_task` runs for `recipe`."""
    return [
        _command("collect", "--env", recipe.env_id, "--policy", recipe.policy, "--episodes", recipe.episodes,
                 "--steps", recipe.steps, "--seed", seed, "--out", data, "--resume",
                 *(["--policy-kwargs", json.dumps(recipe.policy_kwargs)] if recipe.policy_kwargs else []),
                 *(["--env-kwargs", json.dumps(recipe.env_kwargs)] if recipe.env_kwargs else [])),
        _command("train", "--data", data, "--preset", recipe.preset, "--steps", recipe.train_steps, "--seed", seed,
                 *_flags(recipe.train), "--out", run, "--resume"),
    ]


class _StageTimes:
    """Wall time of each stage the benchmark ran itself, kept in a JSON file across resumed invocations.

    A stage that was already complete (resumed, or produced by the same command run by hand) keeps
    the time recorded when the benchmark ran it, or None: the table then says "not timed here"
    rather than the seconds it took to find the stage done.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.times: dict[str, float] = read_json(
            path, what="benchmark stage times", fix=f"delete {path}; the table then says 'not timed here'"
        ) if path.is_file() else {}

    def record(self, name: str, since: float) -> None:
        """Store the wall time from `since` (a `time.perf_counter()` reading) to now as stage `name`'s."""
        self.times[name] = round(time.perf_counter() - since, 1)
        atomic_write_json(self.path, self.times)

    def get(self, name: str) -> float | None:
        return self.times.get(name)


def _seconds(value: float | None) -> str:
    return "not timed here" if value is None else f"{value:.0f} s"


def run_task(recipe: Recipe, out: Path, *, seed: int = 0, workers: int = 1, fresh_eval: bool = False,
             progress: bool = True) -> list[dict[str, Any]]:
    """Collect, train and evaluate one recipe under each of its protocols; one row per protocol."""
    from forethought.data.collect import collect
    from forethought.evaluation.runner import run_eval
    from forethought.training.api import train

    data, run = out / recipe.task / "data", out / recipe.task / "run"
    commands = stage_commands(recipe, data, run, seed)
    times = _StageTimes(out / recipe.task / "stage_times.json")
    t0 = time.perf_counter()
    summary = collect(recipe.env_id, data, episodes=recipe.episodes, steps=recipe.steps, policy=recipe.policy,
                      policy_kwargs=recipe.policy_kwargs, env_kwargs=recipe.env_kwargs, workers=workers, seed=seed,
                      resume=True, progress=progress)
    if summary["collected_this_run"]:
        times.record("collect", t0)
    trained = (run / "model" / "config.json").is_file()
    t0 = time.perf_counter()
    train(data, run, preset=recipe.preset, steps=recipe.train_steps, resume=True, progress=progress, seed=seed,
          **recipe.train)
    if not trained:
        times.record("train", t0)
    rows = []
    for name, overrides in recipe.protocols.items():
        fields = {**recipe.eval, **overrides}
        if "env_kwargs" in fields:  # a protocol's env setting on top of the recipe's (e.g. Reacher's criterion)
            fields["env_kwargs"] = {**recipe.env_kwargs, **fields["env_kwargs"]}
        report_dir = out / recipe.task / f"eval-{name}"
        cmd = _command("eval", "--model", run, "--out", report_dir, "--seed", seed,
                       *_flags(fields), *_flags(recipe.mpc), "--overwrite")
        t3 = time.perf_counter()
        report = report_dir / "report.json"
        if fresh_eval or not report.is_file():
            cfg = EvalConfig(model=str(run), out=str(report_dir), seed=seed, overwrite=True, progress=progress,
                             gif_episodes=0, mpc=MPCConfig(**recipe.mpc, seed=seed), **fields)
            run_eval(cfg)
        results = read_json(report, what="an evaluation report", fix=f"Rerun with --fresh-eval, or delete {report_dir}")
        mpc, rand = (results["results"][k] for k in (f"mpc-{recipe.mpc['planner']}", "random"))
        rows.append({
            "task": recipe.task, "protocol": name, "protocol_line": results["meta"]["protocol"],
            "success_rate": mpc["success_rate"], "ci95": mpc["ci95"], "episodes": mpc["episodes"],
            "random_success_rate": rand["success_rate"], "decision_time_s": mpc["decision_time_s"]["mean"],
            "collect_s": times.get("collect"), "train_s": times.get("train"), "eval_s": round(time.perf_counter() - t3, 1),
            "commands": [*commands, cmd], "recipe": dataclasses.asdict(recipe), "seed": seed,
        })
    return rows


def results_markdown(rows: list[dict[str, Any]]) -> str:
    """The results table, then each task's commands."""
    lines = ["| task | protocol | success [95% CI] | random | episodes | time per decision (episodes batched) | train |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(f"| {r['task']} | {r['protocol']} | **{100 * r['success_rate']:.0f}%** [{100 * lo:.1f}, "
                     f"{100 * hi:.1f}] | {100 * r['random_success_rate']:.0f}% | {r['episodes']} | "
                     f"{r['decision_time_s']:.2f} s | {_seconds(r['train_s'])} |")
    lines += ["", "Protocols:"] + sorted({f"- {r['task']} / {r['protocol']}: {r['protocol_line']}" for r in rows})
    lines += ["", "Commands (each stage resumes):", "", "```bash"]
    seen: set[str] = set()
    for r in rows:
        for c in r["commands"]:
            if c not in seen:
                seen.add(c)
                lines.append(c)
    return "\n".join(lines + ["```", ""])


def use_bf16(precision: str, device: str | None = None) -> bool:
    """`--precision` -> whether the recipes keep bf16: `auto` keeps it unless `device` is known to emulate it."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"--precision must be auto, bf16 or fp32, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return native_bf16(device) is not False


def run_benchmark(tasks: list[str], out: str | Path, *, quick: bool = False, seed: int = 0, workers: int = 1,
                  fresh_eval: bool = False, progress: bool = True, precision: str = "auto") -> list[dict[str, Any]]:
    """Run the recipes of `tasks` into `out`; writes `out/results.md` and `out/results.json`."""
    unknown = [t for t in tasks if t not in RECIPES]
    if unknown:
        raise ValueError(f"--tasks: unknown task(s) {', '.join(unknown)}. Available: {', '.join(RECIPES)}")
    bf16 = use_bf16(precision)
    if precision == "auto" and not bf16 and progress:
        print("benchmark: this machine has no bf16 instructions; training and planning run in float32 "
              "(--precision fp32)")
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for task in tasks:
        recipe = RECIPES[task].quick() if quick else RECIPES[task]
        recipe = recipe if bf16 else recipe.float32()
        rows += run_task(recipe, out, seed=seed, workers=workers, fresh_eval=fresh_eval, progress=progress)
        atomic_write_json(out / "results.json", {"quick": quick, "seed": seed, "bf16": bf16, "rows": rows})
        atomic_write_bytes(out / "results.md", results_markdown(rows).encode())
    return rows


BENCHMARK_EPILOG = """examples:
  forethought benchmark --tasks tworoom --out benchmarks/main      # one task, full size (~7 min on 2 cores)
  forethought benchmark --out benchmarks/main                      # every task (hours on 2 cores)
  forethought benchmark --quick --tasks tworoom pusht --out /tmp/b  # smoke test: tiny models, a minute per task
  forethought benchmark --out benchmarks/main --fresh-eval          # rerun the evaluations of trained models

Every stage resumes: rerun the same command after an interruption. The recipes are
forethought.evaluation.benchmark.RECIPES.

writes: OUT/<task>/{data,run,eval-<protocol>}/, OUT/results.md, OUT/results.json"""


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `forethought benchmark` options to `parser`."""
    parser.epilog = BENCHMARK_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--tasks", nargs="+", default=list(RECIPES), choices=list(RECIPES),
                        help=f"tasks to run (default: all: {' '.join(RECIPES)})")
    parser.add_argument("--out", required=True, help="benchmark folder (one run folder per task, results.md/json)")
    parser.add_argument("--quick", action="store_true", help="tiny recipes: a smoke test of the loop, not a measurement")
    parser.add_argument("--seed", type=int, default=0, help="seed of collection, training, tasks and planner")
    parser.add_argument("--workers", type=int, default=1, help="collection processes")
    parser.add_argument("--fresh-eval", action="store_true", help="rerun evaluations whose report already exists")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="bf16 as the recipes set it, or float32 throughout; auto (default): bf16 only where "
                             "the hardware has bf16 instructions (elsewhere it is emulated, several times slower)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
    return parser


def run_benchmark_from_args(args: argparse.Namespace) -> int:
    rows = run_benchmark(args.tasks, args.out, quick=args.quick, seed=args.seed, workers=args.workers,
                         fresh_eval=args.fresh_eval, progress=args.progress, precision=args.precision)
    print(results_markdown(rows))
    print(f"results written to {args.out}/results.md")
    return 0
