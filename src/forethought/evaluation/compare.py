"""`forethought compare`: model-free vs model-based on the same tasks, written up as the mission's table.

One world-model run (MPC, the tasks' source) and any number of policy runs (`forethought train-policy`)
are each evaluated by `forethought eval` (:func:`~forethought.evaluation.runner.run_eval`: held-out
tasks, fixed budget, success from the true state, 95% Wilson CIs), into ``OUT/<method>/``. Policies
trained with ``--model RUN`` hold out RUN's episodes, so every method meets the same tasks; the
comparison checks it and says so when they differ. Then the time per action is measured at batch 1
on a few tasks with 1 and 2 threads (``--timing-threads``), and ``OUT/compare.json`` and the markdown
table (``--doc``, default ``OUT/model-free-vs-model-based.md``) are written.

The markdown has one table per row of the mission's table (training simplicity, inference speed,
novel dynamics adaptation, novel reward adaptation, modeling-error quantification, data efficiency).
A cell this command cannot measure says why and names the command that would measure it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forethought._config_cli import add_config_arguments, config_from_args
from forethought._files import read_json
from forethought.evaluation.config import EvalConfig, MPCConfig

# What each method asks its user to set (training simplicity): loss terms and method hyperparameters,
# beyond the network, the optimizer and the data that every method shares.
RECIPES: dict[str, dict[str, Any]] = {
    "mpc": {"losses": ["latent prediction (MSE)", "SIGReg"], "hyperparameters": [
        "reg_weight", "history", "frameskip", "planner", "samples", "iterations", "horizon", "receding", "init_std",
        "noise_beta", "cost"], "needs": "a world model (forethought train) and a planner at every decision"},
    "gcbc": {"losses": ["action MSE on hindsight goals"], "hyperparameters": ["goal sampling"],
             "needs": "the dataset only"},
    "gciql": {"losses": ["value expectile", "Q regression", "AWR actor"], "hyperparameters": [
        "discount", "expectile", "temperature", "target_tau", "goal mix (3 probabilities)"], "needs": "the dataset only"},
    "gcivl": {"losses": ["value expectile", "AWR actor"], "hyperparameters": [
        "discount", "expectile", "temperature", "target_tau", "goal mix (3 probabilities)"], "needs": "the dataset only"},
    "imagination": {"losses": ["imagined latent goal cost", "action-range hinge", "BC pull"], "hyperparameters": [
        "horizon", "support_weight", "bc_weight", "p_random"], "needs": "a trained world model (frozen) and the dataset"},
}
DOC_NAME = "model-free-vs-model-based.md"


@dataclass(frozen=True)
class CompareConfig:
    """One `forethought compare` run."""

    model: str = field(metadata={"help": "the world-model run (MPC; its held-out episodes give the tasks)"})
    out: str = field(metadata={"help": "folder for the per-method reports and compare.json"})
    policies: str | None = field(default=None, metadata={
        "help": "comma-separated policy run folders (forethought train-policy), e.g. runs/gcbc,runs/gcivl,runs/dyna"})
    doc: str | None = field(default=None, metadata={
        "help": f"where to write the markdown table (default OUT/{DOC_NAME}; e.g. docs/{DOC_NAME})"})
    episodes: int = field(default=50, metadata={"help": "evaluation episodes per method"})
    budget: int = field(default=50, metadata={"help": "env steps per episode"})
    batch: int = field(default=50, metadata={"help": "episodes run together"})
    goal_offset: int = field(default=25, metadata={"help": "env steps from start to goal"})
    seed: int = field(default=0, metadata={"help": "seed of tasks, envs and planners"})
    timing_episodes: int = field(default=2, metadata={
        "help": "tasks for the time-per-action measurement at batch 1 (0: skip it)"})
    timing_steps: int = field(default=10, metadata={"help": "env steps per timing task"})
    timing_threads: str = field(default="1,2", metadata={"help": "torch thread counts to time, comma-separated"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})
    gif_episodes: int = field(default=4, metadata={"help": "episodes in each method's GIF (0: none)"})
    progress: bool = field(default=True, metadata={"help": "no progress bars", "flag": "--no-progress"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty --out folder"})
    mpc: MPCConfig = field(default_factory=MPCConfig, metadata={"cli": False})

    def __post_init__(self) -> None:
        for name in ("episodes", "budget", "batch", "goal_offset", "timing_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.timing_episodes < 0:
            raise ValueError(f"--timing-episodes must be >= 0, got {self.timing_episodes}")
        threads = self.thread_counts
        if not threads or min(threads) < 1:
            raise ValueError(f"--timing-threads: expected positive integers like '1,2', got {self.timing_threads!r}")

    @property
    def policy_runs(self) -> list[str]:
        return [p.strip() for p in (self.policies or "").split(",") if p.strip()]

    @property
    def thread_counts(self) -> list[int]:
        try:
            return [int(t) for t in self.timing_threads.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--timing-threads: expected integers like '1,2', got {self.timing_threads!r}") from None


@dataclass
class Method:
    """One compared method: its name, how `eval` runs it, and what it measured."""

    name: str
    kind: str  # "mpc" or a policy method
    eval_config: EvalConfig
    report: dict[str, Any] = field(default_factory=dict)
    ms_per_action: dict[str, float | None] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


def _methods(cfg: CompareConfig, out: Path) -> list[Method]:
    from forethought.policies.goal_policy import GoalPolicy
    from forethought.training.run_folder import RunPaths

    common = dict(episodes=cfg.episodes, budget=cfg.budget, batch=cfg.batch, goal_offset=cfg.goal_offset,
                  seed=cfg.seed, device=cfg.device, gif_episodes=cfg.gif_episodes, progress=cfg.progress,
                  overwrite=cfg.overwrite)
    plain = replace(cfg.mpc, warm_start=None)
    methods = [Method(f"mpc-{plain.planner}", "mpc", EvalConfig(model=cfg.model, out=str(out / "mpc"), mpc=plain,
                                                                **common))]
    if cfg.mpc.warm_start is not None:
        methods.append(Method(f"mpc-{plain.planner}-warm", "mpc", EvalConfig(
            model=cfg.model, out=str(out / "mpc-warm"), mpc=cfg.mpc, baseline=False, **common)))
    for run in cfg.policy_runs:
        paths = RunPaths.resolve(run)
        method = GoalPolicy.from_pretrained(paths.model).config.method
        name = f"policy-{method}"
        if any(m.name == name for m in methods):
            name = f"{name}-{Path(run).name}"
        methods.append(Method(name, method, EvalConfig(model=run, out=str(out / name), baseline=False, **common)))
    return methods


def _training(method: Method) -> dict[str, Any]:
    from forethought.training.run_folder import RunPaths, read_run_info

    paths = RunPaths.resolve(method.eval_config.model)
    info = (read_run_info(paths.run) if paths.run is not None else None) or {}
    recipe = RECIPES.get(method.kind, {})
    return {"losses": recipe.get("losses"), "hyperparameters": recipe.get("hyperparameters"),
            "needs": recipe.get("needs"), "train_wall_s": info.get("train_wall_s"),
            "torch_threads": info.get("torch_threads"), "device": info.get("device"),
            "parameters": info.get("num_parameters"), "trained_parameters": info.get("trained_parameters"),
            "train_episodes": len(info.get("train_episodes") or [])}


def _time_per_action(method: Method, cfg: CompareConfig, threads: int) -> float | None:
    """Mean wall time of one `agent.act` at batch 1 (seconds), on the first tasks of the method's report."""
    import torch

    from forethought.agent.policy_agent import PolicyAgent
    from forethought.envs import make
    from forethought.evaluation.protocol import evaluate
    from forethought.evaluation.tasks import Task
    from forethought.models import WorldModel
    from forethought.policies.goal_policy import GoalPolicy, is_policy_folder
    from forethought.training.run_folder import RunPaths

    meta = method.report["meta"]
    tasks = [Task.from_dict(t) for t in meta["tasks"][: cfg.timing_episodes]]
    if not tasks:
        return None
    device = meta["device"]
    model_dir = RunPaths.resolve(method.eval_config.model).model
    env = make(meta["env_id"], **meta["env_kwargs"])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if is_policy_folder(model_dir):
            agent: Any = PolicyAgent(GoalPolicy.from_pretrained(model_dir, device=device), action_space=env.action_space)
        else:
            model = WorldModel.from_pretrained(model_dir, device=device)
            agent = method.eval_config.mpc.build_agent(model, env.action_space, device)
        result = evaluate(agent, meta["env_id"], meta["env_kwargs"], tasks, budget=cfg.timing_steps, batch=1,
                          seed=cfg.seed, name=method.name)
    finally:
        torch.set_num_threads(before)
        env.close()
    return float(sum(result.step_times) / len(result.step_times))


def run_compare(cfg: CompareConfig) -> dict[str, Any]:
    """Evaluate every method on the same tasks, time them, write compare.json and the markdown table."""
    from forethought.evaluation.report import check_out_folder
    from forethought.evaluation.runner import run_eval

    out = check_out_folder(cfg.out, cfg.overwrite)  # before any evaluation: a refused --out costs nothing
    out.mkdir(parents=True, exist_ok=True)
    methods = _methods(cfg, out)
    for method in methods:
        print(f"== {method.name}", file=sys.stderr)
        run_eval(method.eval_config)
        method.report = read_json(Path(method.eval_config.out) / "report.json", what="an eval report",
                                  fix="Run the comparison again")
        method.training = _training(method)
        if cfg.timing_episodes:
            for threads in cfg.thread_counts:
                seconds = _time_per_action(method, cfg, threads)
                method.ms_per_action[str(threads)] = None if seconds is None else 1000 * seconds
    reference = methods[0].report["meta"]["tasks"]
    summary = {
        "command": shlex.join(["forethought", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "forethought compare",
        "config": dataclasses.asdict(cfg), "env_id": methods[0].report["meta"]["env_id"],
        "protocol": methods[0].report["meta"]["protocol"], "tasks_note": methods[0].report["meta"]["tasks_note"],
        "methods": {m.name: _method_summary(m, reference) for m in methods},
    }
    random = methods[0].report["results"].get("random")
    if random is not None:
        summary["random"] = {k: random[k] for k in ("success_rate", "ci95", "episodes")}
    summary["rows"] = table_rows(summary)
    (out / "compare.json").write_text(json.dumps(summary, indent=1))
    doc = Path(cfg.doc) if cfg.doc else out / DOC_NAME
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_compare(summary, report_root=out, doc=doc))
    print(f"comparison written to {out / 'compare.json'} and {doc}")
    return summary


def _method_summary(method: Method, reference: list[dict[str, Any]]) -> dict[str, Any]:
    result = method.report["results"][method.name]
    return {"kind": method.kind, "report": method.eval_config.out, "success_rate": result["success_rate"],
            "ci95": result["ci95"], "episodes": result["episodes"], "decision_time_s": result["decision_time_s"],
            "step_time_s": result["step_time_s"], "ms_per_action": method.ms_per_action,
            "same_tasks": method.report["meta"]["tasks"] == reference, "training": method.training,
            "config": method.report["meta"]["planner"]}


def table_rows(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The mission's six rows, each ``{"measured": bool, "why": str | None, ...}``."""
    methods = summary["methods"]
    timed = {name: m["ms_per_action"] for name, m in methods.items() if m["ms_per_action"]}
    return {
        "training simplicity": {"measured": True, "why": None, "note": (
            "loss terms and hyperparameters per method, and training wall time where the run recorded it; CPU-minutes "
            "to reach 90% of final success is not measured: it needs `forethought eval` on each checkpoint (ckpt/)")},
        "inference speed": {"measured": bool(timed), "why": None if timed else "timing skipped (--timing-episodes 0)",
                            "note": "ms per env action at batch 1; success at an equal time budget per action is not "
                                    "measured: it needs an MPC budget sweep (forethought eval --sweep)"},
        "novel dynamics adaptation": {"measured": False, "why": (
            "not run by this command. Model-based: `forethought adapt --only dynamics` on play episodes of the "
            "changed env, then `forethought eval` on its tasks (docs/results.md, Reacher with the wrist wired in "
            "reverse); model-free: `forethought train-policy --init POLICY --data PLAY` on the same episodes")},
        "novel reward adaptation": {"measured": False, "why": (
            "not run by this command. MPC plans for an objective given at test time with `forethought eval "
            "--objective` (docs/results.md, three TwoRoom objectives); a goal-conditioned policy has no input for it "
            "and would be retrained per objective with a relabeled reward, which `train-policy` does not do yet")},
        "modeling-error quantification": {"measured": False, "why": (
            "the model's signal is surprise (`forethought surprise-eval`; its AUROCs are in docs/results.md, "
            "Surprise); GCBC and the imagination policy have no value or ensemble to score with, and the value of "
            "GCIQL / GCIVL is not scored as a detector yet")},
        "data efficiency": {"measured": False, "why": (
            "needs every method trained on 100 / 300 / 1,000 / 3,000 episodes (a run per size; `forethought "
            "collect --episodes N`), then this command per size")},
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.1f} ms" if x >= 1 else f"{x:.2f} ms")


def render_compare(summary: dict[str, Any], *, report_root: Path, doc: Path) -> str:
    """The markdown: the success table, then one table per row of the mission's table, then the closing note."""
    methods, rows = summary["methods"], summary["rows"]
    threads = sorted({t for m in methods.values() for t in m["ms_per_action"]}, key=int)
    lines = [f"# Model-free vs model-based: {summary['env_id']}", "",
             f"Command: `{summary['command']}`", "", f"Protocol: {summary['protocol']}; tasks: {summary['tasks_note']}.",
             "", "## Success on the same tasks", "",
             "| method | success | 95% CI | episodes | same tasks as MPC | time/decision (batch) | "
             + " | ".join(f"ms/action ({t} thr)" for t in threads) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(threads)]
    for name, m in methods.items():
        lo, hi = m["ci95"]
        lines.append(f"| {name} | {_pct(m['success_rate'])} | [{_pct(lo)}, {_pct(hi)}] | {m['episodes']} | "
                     f"{'yes' if m['same_tasks'] else 'NO'} | {_ms(1000 * (m['decision_time_s']['mean'] or 0))} | "
                     + " | ".join(_ms(m["ms_per_action"].get(t)) for t in threads) + " |")
    if "random" in summary:
        lines.append(f"| random | {_pct(summary['random']['success_rate'])} | "
                     f"[{_pct(summary['random']['ci95'][0])}, {_pct(summary['random']['ci95'][1])}] | "
                     f"{summary['random']['episodes']} | yes | n/a |" + " n/a |" * len(threads))
    if not all(m["same_tasks"] for m in methods.values()):
        lines += ["", "> Some methods met other tasks than MPC: train their policies with `--model RUN` (the same "
                  "held-out episodes)."]
    lines += ["", "Per-method reports (GIFs, per-episode results): "
              + ", ".join(f"[{n}]({_rel(Path(m['report']) / 'report.md', doc)})" for n, m in methods.items()), ""]
    lines += ["## The mission's table, row by row", ""]
    lines += ["### Training simplicity", "", "| method | loss terms | method hyperparameters | needs | training wall time |",
              "|---|---|---|---|---|"]
    for name, m in methods.items():
        t = m["training"]
        wall = "not recorded" if t["train_wall_s"] is None else f"{t['train_wall_s'] / 60:.1f} min ({t['device']}, " \
                                                                 f"{t['torch_threads']} threads)"
        lines.append(f"| {name} | {len(t['losses'] or [])}: {', '.join(t['losses'] or [])} | "
                     f"{len(t['hyperparameters'] or [])}: {', '.join(t['hyperparameters'] or [])} | {t['needs']} | {wall} |")
    lines += ["", f"> {rows['training simplicity']['note']}.", ""]
    lines += ["### Inference speed", "", "See the ms/action columns above (batch 1, mean over the timed steps; a "
              "policy decides once per model step, MPC plans once per model step).", ""]
    lines += [f"> {rows['inference speed']['note']}.", ""]
    for row in ("novel dynamics adaptation", "novel reward adaptation", "modeling-error quantification", "data efficiency"):
        lines += [f"### {row[0].upper() + row[1:]}", "", f"Not measured: {rows[row]['why']}.", ""]
    lines += ["## Closing note", "", closing_note(summary), ""]
    return "\n".join(lines)


def closing_note(summary: dict[str, Any]) -> str:
    """Which rows of the mission's table the measurements confirm or contradict (only measured rows)."""
    methods = summary["methods"]
    mpc = [m for name, m in methods.items() if m["kind"] == "mpc" and not name.endswith("-warm")]
    free = {name: m for name, m in methods.items() if m["kind"] in ("gcbc", "gciql", "gcivl")}
    sentences = []
    if mpc and free:
        best = max(free, key=lambda n: free[n]["success_rate"])
        sentences.append(f"Success: the best model-free policy ({best}, {_pct(free[best]['success_rate'])}) against MPC "
                         f"({_pct(mpc[0]['success_rate'])}) on the same tasks.")
        t_mpc = [v for v in mpc[0]["ms_per_action"].values() if v]
        t_free = [v for v in free[best]["ms_per_action"].values() if v]
        if t_mpc and t_free:
            ratio = min(t_mpc) / max(min(t_free), 1e-9)
            sentences.append(f"Inference speed: {best} acts {ratio:.0f}x faster than MPC per action, "
                             + ("confirming" if ratio > 1 else "contradicting") + " the table's 'model-free: fast'.")
    dyna = [m for m in methods.values() if m["kind"] == "imagination"]
    if mpc and dyna:
        gap = 100 * (mpc[0]["success_rate"] - dyna[0]["success_rate"])
        t_mpc = min([v for v in mpc[0]["ms_per_action"].values() if v] or [float("nan")])
        t_dyna = min([v for v in dyna[0]["ms_per_action"].values() if v] or [float("nan")])
        sentences.append(f"The imagination policy (trained only through the world model) is {gap:+.0f} points from MPC's "
                         f"success at {t_mpc / t_dyna:.0f}x less time per action (target: within 5 points at >= 20x).")
    sentences.append("Training simplicity is reported as counts of loss terms and hyperparameters (the table's claim "
                     "concerns training cost, which needs CPU-minutes to 90% of final success: not measured here).")
    sentences.append("The adaptation, modeling-error and data-efficiency rows are not measured by this command "
                     "(see each row): they neither confirm nor contradict the table yet.")
    return " ".join(sentences)


def _rel(path: Path, doc: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), doc.resolve().parent)


COMPARE_EPILOG = """examples:
  forethought compare --model runs/tworoom --policies runs/tworoom-gcbc,runs/tworoom-gcivl,runs/tworoom-dyna \\
      --warm-start runs/tworoom-dyna --samples 300 --iterations 30 --bf16 --noise-beta 3 \\
      --out reports/compare-tworoom --doc docs/model-free-vs-model-based.md

Every method runs through `forethought eval` on the world-model run's held-out tasks (policies trained
with --model RUN hold out the same episodes). writes: OUT/<method>/report.{json,md} (+ GIFs),
OUT/compare.json, and the markdown table (--doc)."""


def add_compare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `forethought compare` options: one per field of `CompareConfig`, and MPCConfig's for the MPC rows."""
    parser.epilog = COMPARE_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, CompareConfig)
    add_config_arguments(parser.add_argument_group("planning (MPCConfig)"), MPCConfig)
    return parser


def run_compare_from_args(args: argparse.Namespace) -> int:
    run_compare(config_from_args(CompareConfig, args, mpc=config_from_args(MPCConfig, args, seed=args.seed)))
    return 0
