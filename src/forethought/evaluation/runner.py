"""`run_eval(args)`: what `forethought eval` runs (options in `evaluation/arguments.py`).

Model folder in, report folder out: load the world model (with the normalization statistics
stored in it: nothing is refitted here), draw the tasks from the run's held-out episodes,
evaluate the MPC agent and a random policy on the same tasks, optionally sweep the planning
budget, and write report.json / report.md / episodes.gif / sweep.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from forethought.evaluation.protocol import EvalResult, RandomAgent, evaluate
from forethought.evaluation.report import markdown_table, write_report
from forethought.evaluation.sweep import DEFAULT_SWEEP, budget_sweep, parse_pairs
from forethought.evaluation.tasks import Task, held_out_episodes, sample_env_tasks, sample_tasks, unsolved_tasks

SKIP_SOLVED_POOL = 20  # --skip-solved draws up to this many candidate tasks per task kept


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where the model, its training run and its dataset are."""

    model: Path
    run: Path | None  # the training run folder (run.json, train_config.json), if known
    data: Path | None

    @classmethod
    def resolve(cls, model: str | Path, data: str | Path | None = None) -> RunPaths:
        p = Path(model)
        if (p / "model" / "config.json").is_file():
            model_dir, run_dir = p / "model", p
        elif (p / "config.json").is_file():
            model_dir, run_dir = p, (p.parent if (p.parent / "run.json").is_file() else None)
        else:
            raise FileNotFoundError(f"{p} is neither a run folder (with model/config.json) nor a model folder "
                                    "(with config.json); pass the --out folder of `forethought train`")
        if data is None and run_dir is not None and (run_dir / "run.json").is_file():
            data = json.loads((run_dir / "run.json").read_text()).get("data")
        return cls(model_dir, run_dir, Path(data) if data is not None else None)


def _json_arg(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"--env-kwargs must be a JSON object like '{{\"image_size\": 64}}', got {text!r}")
    return value


def _planner_settings(name: str, samples: int | None, iterations: int | None, seed: int,
                      noise_beta: float = 0.0, frameskip: int = 1) -> dict[str, Any]:
    settings: dict[str, Any] = {"seed": seed}
    if noise_beta:
        if name not in ("cem", "mppi"):
            raise ValueError(f"--noise-beta applies to the sampling planners (cem, mppi), not {name!r}")
        settings.update(noise_beta=noise_beta, frameskip=frameskip)
    if samples is not None:
        settings["samples"] = samples
    if iterations is not None:
        settings["iterations"] = iterations
    if name == "cem" and samples is not None:
        settings["elites"] = max(1, min(samples, round(samples / 10)))  # CEMConfig's default ratio, 30 of 300
    return settings


def make_mpc_factory(model: Any, planner_name: str, action_space: Any, *, horizon: int | None, receding: int | None,
                     device: str, seed: int, cost: str = "l2", reduce: str = "sum", bf16: bool = False,
                     terminal_weight: float = 0.0, noise_beta: float = 0.0, draft: Any = None,
                     epsilon: float = 0.0, gamma: int = 4) -> Any:
    """`factory(samples, iterations) -> MPCAgent` for one world model (the planner changes per call)."""
    from forethought.agent.mpc import MPCAgent
    from forethought.planning import make_planner

    mpc_kwargs = {k: v for k, v in {"horizon": horizon, "receding": receding}.items() if v is not None}
    mpc_kwargs.update(cost=cost, reduce=reduce, bf16=bf16, terminal_weight=terminal_weight, draft=draft,
                      epsilon=epsilon, gamma=gamma)

    frameskip = max(1, model.action_dim // int(action_space.shape[0]))  # env steps per model action

    def factory(samples: int | None, iterations: int | None) -> Any:
        settings = _planner_settings(planner_name, samples, iterations, seed, noise_beta, frameskip)
        planner = make_planner(planner_name, **settings)
        return MPCAgent(model, planner, action_space=action_space, device=device, **mpc_kwargs)

    return factory


def _tasks(args: argparse.Namespace, paths: RunPaths, store: Any, env_id: str,
           env_kwargs: dict[str, Any]) -> tuple[list[Task], str, dict[str, int] | None]:
    """The tasks, a sentence on where they come from, and the --skip-solved counts (or None)."""
    if not getattr(args, "skip_solved", False):
        return (*_draw_tasks(args, paths, store, env_id, env_kwargs, args.episodes), None)
    from forethought.envs import make

    pool, note = _draw_tasks(args, paths, store, env_id, env_kwargs, SKIP_SOLVED_POOL * args.episodes)
    env = make(env_id, **env_kwargs)
    try:
        tasks, counts = unsolved_tasks(pool, env.unwrapped.success, args.episodes)
    finally:
        env.close()
    if counts["kept"] < args.episodes:
        raise ValueError(f"--skip-solved: only {counts['kept']} of {counts['drawn']} drawn tasks are not already "
                         f"solved at the start; lower --episodes or raise --goal-offset")
    return tasks, f"{note}; tasks whose start already satisfies the success test dropped", counts


def _draw_tasks(args: argparse.Namespace, paths: RunPaths, store: Any, env_id: str,
                env_kwargs: dict[str, Any], n: int) -> tuple[list[Task], str]:
    if args.goal_source == "env":
        from forethought.envs import make

        env = make(env_id, **env_kwargs)
        try:
            return sample_env_tasks(env, n, seed=args.seed), "random start, goal from env.sample_goal_state"
        finally:
            env.close()
    if store is None:
        raise ValueError("no dataset to draw tasks from: pass --data, or --goal-source env")
    ids, note = held_out_episodes(paths.run, store.num_episodes)
    tasks = sample_tasks(store, ids, n, goal_offset=args.goal_offset, seed=args.seed)
    return tasks, f"{note}; goal {args.goal_offset} env steps ahead in the same episode"


def _surprise_monitor(mode: str, model: Any, model_dir: Path) -> Any:
    """``--surprise observe|replan``: a SurpriseMonitor for the evaluated agent (None when off)."""
    if mode == "off":
        return None
    from forethought.surprise import SurpriseCalibration, SurpriseMonitor

    calibration = SurpriseCalibration.load(model_dir)  # a clear error naming surprise-calibrate if missing
    return SurpriseMonitor(model, calibration, on_alarm=(lambda event: "replan") if mode == "replan" else None)


def run_eval(args: argparse.Namespace) -> int:
    """Run `forethought eval` from parsed `add_eval_arguments` options; returns the exit status."""
    import torch

    from forethought.data.store import EpisodeStore
    from forethought.envs import make
    from forethought.models import WorldModel

    for name in ("episodes", "budget", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    paths = RunPaths.resolve(args.model, args.data)
    store = EpisodeStore.open(paths.data) if paths.data is not None else None
    env_id = args.env or (store.meta.get("env_id") if store is not None else None)
    if not env_id:
        raise ValueError("no dataset and no environment: pass --data (the dataset the model was trained on), "
                         "or --env with --goal-source env (the model folder has no run.json naming its dataset)")
    env_kwargs = _json_arg(args.env_kwargs)
    if env_kwargs is None:
        env_kwargs = dict(store.meta.get("env_kwargs") or {}) if store is not None else {}
    notes = []
    if args.data is not None and paths.run is not None:
        notes.append("--data overrides the run's dataset: the held-out split of run.json refers to the run's own "
                     "dataset, so these tasks may not be held out")
    tasks, tasks_note, task_filter = _tasks(args, paths, store, env_id, env_kwargs)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    model = WorldModel.from_pretrained(paths.model, device=device)
    probe_env = make(env_id, **env_kwargs)
    action_space = probe_env.action_space
    probe_env.close()
    draft = None
    if getattr(args, "draft", None):
        if args.planner == "gradient":
            raise ValueError("--draft: speculative rollouts are forward-only; use --planner cem, mppi or random")
        from forethought.speculative import load_draft

        draft = load_draft(args.draft, target=model)  # refuses a draft distilled from another model
    factory = make_mpc_factory(model, args.planner, action_space, horizon=args.horizon, receding=args.receding,
                               device=device, seed=args.seed, cost=args.cost, reduce=args.reduce, bf16=args.bf16,
                               terminal_weight=getattr(args, "terminal_weight", 0.0),
                               noise_beta=getattr(args, "noise_beta", 0.0), draft=draft,
                               epsilon=getattr(args, "epsilon", 0.0), gamma=getattr(args, "gamma", 4))
    agent = factory(args.samples, args.iterations)
    monitor = _surprise_monitor(getattr(args, "surprise", "off"), model, paths.model)
    agent.monitor = monitor
    planner_cfg = getattr(getattr(agent, "planner", None), "config", None)
    planner_info = {"name": args.planner,
                    **(dataclasses.asdict(planner_cfg) if dataclasses.is_dataclass(planner_cfg) else {}),
                    "horizon": getattr(agent, "horizon", args.horizon), "receding": getattr(agent, "receding", args.receding),
                    "cost": args.cost, "reduce": args.reduce, "terminal_weight": getattr(args, "terminal_weight", 0.0),
                    "bf16": args.bf16 and draft is None}
    if draft is not None:
        planner_info["speculative"] = {"draft": str(args.draft), "epsilon": args.epsilon, "gamma": args.gamma}
    common = dict(budget=args.budget, batch=args.batch, seed=args.seed, progress=args.progress)
    results: list[EvalResult] = [evaluate(agent, env_id, env_kwargs, tasks, record=args.gif_episodes,
                                          name=f"mpc-{args.planner}", config=planner_info, **common)]
    if args.baseline:
        results.append(evaluate(RandomAgent.for_space(action_space, seed=args.seed), env_id, env_kwargs, tasks,
                                name="random", **common))
    sweep = None
    if args.sweep:
        pairs = parse_pairs(args.sweep_pairs) if args.sweep_pairs else list(DEFAULT_SWEEP)
        sweep = budget_sweep(factory, pairs, env_id, env_kwargs, tasks, **common)
    meta = {
        "command": shlex.join(["forethought", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "forethought eval",
        "seed": args.seed, "model": str(paths.model.resolve()), "run": str(paths.run) if paths.run else None,
        "data": str(paths.data) if paths.data else None, "env_id": env_id, "env_kwargs": env_kwargs,
        "planner": planner_info, "budget": args.budget, "goal_source": args.goal_source,
        "goal_offset": args.goal_offset if args.goal_source == "dataset" else None, "episodes": len(tasks),
        "tasks_note": tasks_note, "task_filter": task_filter, "tasks": [t.to_dict() for t in tasks], "device": device,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    if monitor is not None:
        meta["surprise"] = {"mode": args.surprise, **monitor.summary()}
        sm = meta["surprise"]
        notes.append(f"surprise monitor ({args.surprise}): {sm['alarm_rate']:.1%} of {sm['frames']} model frames above the "
                     f"calibrated threshold {sm['threshold']:.3g} ({sm['alarm_rate_first_frame']:.1%} of first frames)")
    out = Path(args.out)
    write_report(out, results, meta, sweep=sweep, gif_episodes=args.gif_episodes, notes=notes)
    print(markdown_table(results))
    for note in notes:
        print(note)
    print(f"report written to {out}/report.md")
    return 0
