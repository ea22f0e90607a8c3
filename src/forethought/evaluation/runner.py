"""`run_eval(EvalConfig)`: what `forethought eval` runs (options generated from `evaluation/config.py`).

Model folder in, report folder out: load the world model (with the normalization statistics
stored in it: nothing is refitted here), draw the tasks from the run's held-out episodes,
evaluate the MPC agent and a random policy on the same tasks, optionally sweep the planning
budget, and write report.json / report.md, then episodes.gif (or episodes.png for vector
observations) and sweep.png. Refused before any planning: a non-empty --out without --overwrite,
and a model that does not fit the env (`forethought.agent.compat.check_model_env`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

from forethought._hardware import warn_if_emulated_bf16
from forethought.agent.compat import check_model_env
from forethought.evaluation.config import EvalConfig
from forethought.evaluation.protocol import EvalResult, RandomAgent, evaluate
from forethought.evaluation.report import check_out_folder, markdown_table, write_report
from forethought.evaluation.sweep import DEFAULT_SWEEP, budget_sweep, parse_pairs
from forethought.evaluation.tasks import Task, sample_env_tasks, sample_tasks, unsolved_tasks
from forethought.training.run_folder import RunPaths, held_out_episodes, training_episodes

SKIP_SOLVED_POOL = 20  # --skip-solved draws up to this many candidate tasks per task kept


def _tasks(cfg: EvalConfig, paths: RunPaths, store: Any, env_id: str,
           env_kwargs: dict[str, Any]) -> tuple[list[Task], str, dict[str, int] | None]:
    """The tasks, a sentence on where they come from, and the --skip-solved counts (or None)."""
    if not cfg.skip_solved:
        return (*_draw_tasks(cfg, paths, store, env_id, env_kwargs, cfg.episodes), None)
    from forethought.envs import make

    pool, note = _draw_tasks(cfg, paths, store, env_id, env_kwargs, SKIP_SOLVED_POOL * cfg.episodes)
    env = make(env_id, **env_kwargs)
    try:
        tasks, counts = unsolved_tasks(pool, env.unwrapped.success, cfg.episodes)
    finally:
        env.close()
    if counts["kept"] < cfg.episodes:
        raise ValueError(f"--skip-solved: only {counts['kept']} of {counts['drawn']} drawn tasks are not already "
                         f"solved at the start; lower --episodes or raise --goal-offset")
    return tasks, f"{note}; tasks whose start already satisfies the success test dropped", counts


def _draw_tasks(cfg: EvalConfig, paths: RunPaths, store: Any, env_id: str,
                env_kwargs: dict[str, Any], n: int) -> tuple[list[Task], str]:
    if cfg.goal_source == "env":
        from forethought.envs import make

        env = make(env_id, **env_kwargs)
        try:
            return sample_env_tasks(env, n, seed=cfg.seed), "random start, goal from env.sample_goal_state"
        finally:
            env.close()
    if store is None:
        raise ValueError("no dataset to draw tasks from: pass --data, or --goal-source env")
    if cfg.goal_split == "all":
        ids, note = list(range(store.num_episodes)), (f"every episode of {paths.data} (--goal-split all: a dataset "
                                                      "the model must not have been trained on)")
    else:
        split = held_out_episodes if cfg.goal_split == "held-out" else training_episodes
        ids, note = split(paths.run, store.num_episodes)
    tasks = sample_tasks(store, ids, n, goal_offset=cfg.goal_offset, seed=cfg.seed)
    return tasks, f"{note}; goal {cfg.goal_offset} env steps ahead in the same episode"


def _surprise_monitor(mode: str, model: Any, model_dir: Path) -> Any:
    """``--surprise observe|replan``: a SurpriseMonitor for the evaluated agent (None when off)."""
    if mode == "off":
        return None
    from forethought.surprise import SurpriseCalibration, SurpriseMonitor

    calibration = SurpriseCalibration.load(model_dir)  # a clear error naming surprise-calibrate if missing
    return SurpriseMonitor(model, calibration, on_alarm=(lambda event: "replan") if mode == "replan" else None)


def _with_subgoals(cfg: EvalConfig, objective: Any, model: Any, paths: RunPaths, store: Any, action_space: Any,
                   device: str) -> Any:
    """``--subgoals graph``: the latent graph over the run's training episodes around ``objective``."""
    from forethought.agent.mpc import model_frameskip

    if store is None:
        raise ValueError("--subgoals graph: the graph is built from the model's training data, and there is no dataset: "
                         "pass --data (the dataset the model was trained on) or a run folder whose run.json names it")
    ids, _ = training_episodes(paths.run, store.num_episodes)
    frameskip = model_frameskip(model, int(action_space.shape[0]))
    return cfg.mpc.wrap_subgoals(objective, model, store, ids, frameskip, device)


def _doors_per_task(env_id: str, env_kwargs: dict[str, Any], tasks: list[Task]) -> list[int] | None:
    """Doors crossed by each task's shortest path, for envs that can say (``doors_crossed``); else None."""
    from forethought.envs import make

    env = make(env_id, **env_kwargs)
    try:
        count = getattr(env.unwrapped, "doors_crossed", None)
        return None if count is None else [int(count(t.start_state, t.goal_state)) for t in tasks]
    finally:
        env.close()


def _by_doors(result: EvalResult, doors: list[int]) -> dict[str, dict[str, Any]]:
    """Successes of ``result`` grouped by the doors each task crosses, with Wilson 95% intervals."""
    from forethought.evaluation.stats import wilson_interval

    out: dict[str, dict[str, Any]] = {}
    for n in sorted(set(doors)):
        wins = [e.success for e in result.episodes if doors[e.task] == n]
        out[str(n)] = {"episodes": len(wins), "successes": int(sum(wins)), "success_rate": sum(wins) / len(wins),
                       "ci95": list(wilson_interval(int(sum(wins)), len(wins)))}
    return out


def _load_policy(cfg: EvalConfig, model_dir: Path, device: str) -> Any:
    """The GoalPolicy in ``model_dir`` (a `forethought train-policy` run), or None for a world model.

    A policy acts alone: options that need a world model (--sweep, --surprise, --warm-start, --draft) are refused."""
    from forethought.policies.goal_policy import GoalPolicy, is_policy_folder

    if not is_policy_folder(model_dir):
        return None
    needs_model = [flag for flag, on in (("--sweep", cfg.sweep), ("--surprise", cfg.surprise != "off"),
                                         ("--warm-start", cfg.mpc.warm_start is not None),
                                         ("--draft", cfg.mpc.draft is not None)) if on]
    if needs_model:
        raise ValueError(f"{', '.join(needs_model)}: {model_dir} holds a policy, which acts without a world model or "
                         "planner; drop the option, or pass a world model's run as --model")
    return GoalPolicy.from_pretrained(model_dir, device=device)


def _describe_mpc(mpc: Any, agent: Any, objective: Any, notes: list[str]) -> tuple[dict[str, Any], str, Any]:
    """The planner's report entry, the result's name, and the success judge of an ``--objective`` (or None)."""
    info = {"name": mpc.planner, **dataclasses.asdict(agent.planner.config), "horizon": mpc.horizon,
            "receding": mpc.receding, "cost": mpc.cost, "reduce": mpc.reduce,
            "terminal_weight": mpc.terminal_weight, "bf16": mpc.bf16, "compile": mpc.compile}
    if mpc.coast:
        info["coast"] = mpc.coast
    if mpc.proposal is not None:
        info["proposal"] = {"path": mpc.proposal, "steps": mpc.proposal_steps}
    if mpc.draft is not None:
        info["speculative"] = {"draft": mpc.draft, "epsilon": mpc.epsilon, "gamma": mpc.gamma}
    if mpc.dynamics is not None:
        info["dynamics"] = {"path": mpc.dynamics, "steps": mpc.dynamics_steps}
        notes.append(f"candidates rolled out by the diffusion dynamics {mpc.dynamics}, not the model's predictor")
    if mpc.warm_start is not None:
        info["warm_start"] = mpc.warm_start
    if mpc.subgoals != "off":
        info["subgoals"] = objective.describe()
    name = (f"mpc-{mpc.planner}" + ("-warm" if mpc.warm_start is not None else "")
            + ("+diffusion" if mpc.dynamics is not None else "")
            + ("+subgoals" if mpc.subgoals != "off" else ""))
    planned = objective.inner if mpc.subgoals != "off" else objective  # what the planner scores
    judge = getattr(planned.cost_fn, "success", None) if mpc.objective is not None else None  # the objective's test
    if mpc.objective is not None:
        info["objective"] = planned.describe()
        notes.append(f"planned for --objective {mpc.objective} on the model's state readout (trained with privileged "
                     "state supervision); success is " + (f"judged by its success function ({judge.__qualname__}) "
                     "from the true states and the executed actions" if judge else "the env's own goal test"))
    return info, name, judge


def protocol_name(cfg: EvalConfig, env_kwargs: dict[str, Any], proprio_dims: Any = None) -> str:
    """One line naming the protocol, for the report: whose it is and each choice that defines it."""
    ours = cfg.goal_source == "dataset" and cfg.goal_split in ("held-out", "all") and cfg.success == "final"
    split = "every episode of an evaluation dataset" if cfg.goal_split == "all" else f"{cfg.goal_split} episodes"
    goals = (f"goals {cfg.goal_offset} steps ahead in {split}" if cfg.goal_source == "dataset"
             else "start and goal sampled by the env")
    judged = "success at the end" if cfg.success == "final" else "success at any step (latched)"
    extra = "".join(f", {k}={v}" for k, v in sorted(env_kwargs.items()) if k in ("success", "success_pos"))
    sensed = f", proprio: the agent senses state dims {list(proprio_dims)}, the goal's too" if proprio_dims else ""
    return (f"{'ours' if ours else 'anchor-style'}: {goals}, budget {cfg.budget}, {judged}"
            f"{', tasks solved at the start dropped' if cfg.skip_solved else ''}{extra}{sensed}")


def run_eval_from_args(args: argparse.Namespace) -> int:
    """`forethought eval`: the parsed `add_eval_arguments` options -> :func:`run_eval`."""
    from forethought.evaluation.arguments import eval_config_from_args

    run_eval(eval_config_from_args(args))
    return 0


def run_eval(cfg: EvalConfig) -> list[EvalResult]:
    """Evaluate the agent ``cfg.mpc`` describes (and the random baseline) and write the report folder."""
    import torch

    from forethought.data.store import EpisodeStore
    from forethought.envs import make
    from forethought.models import WorldModel

    out = check_out_folder(cfg.out, cfg.overwrite)  # before any planning: a refused --out costs nothing
    paths = RunPaths.resolve(cfg.model, cfg.data)
    store = EpisodeStore.open(paths.data) if paths.data is not None else None
    env_id = cfg.env or (store.meta.get("env_id") if store is not None else None)
    if not env_id:
        raise ValueError("no dataset and no environment: pass --data (the dataset the model was trained on), "
                         "or --env with --goal-source env (the model folder has no run.json naming its dataset)")
    env_kwargs = cfg.env_kwargs
    if env_kwargs is None:
        env_kwargs = dict(store.meta.get("env_kwargs") or {}) if store is not None else {}
    notes = []
    if cfg.data is not None and paths.run is not None and cfg.goal_split != "all":
        notes.append("--data overrides the run's dataset: the held-out split of run.json refers to the run's own "
                     "dataset, so these tasks may not be held out")
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.mpc.bf16:
        warn_if_emulated_bf16(device)
    torch.manual_seed(cfg.seed)
    policy = _load_policy(cfg, paths.model, device)  # a policy run (forethought train-policy) acts alone
    model = policy if policy is not None else WorldModel.from_pretrained(paths.model, device=device)
    probe_env = make(env_id, **env_kwargs)
    try:  # the model must fit the env before any task is drawn from it
        warnings = check_model_env(model, env_id, probe_env, model_dir=paths.model, force=cfg.force)
        action_space = probe_env.action_space
    finally:
        probe_env.close()
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    tasks, tasks_note, task_filter = _tasks(cfg, paths, store, env_id, env_kwargs)

    mpc = cfg.mpc
    monitor, objective, judge = None, None, None
    if policy is not None:  # a policy acts alone: one forward pass per action, no planner
        from forethought.agent.policy_agent import PolicyAgent

        agent: Any = PolicyAgent(policy, action_space=action_space, device=device)
        planner_info = {"name": "policy", "method": policy.config.method, "latent_space": policy.config.latent_space,
                        "world_model": policy.config.world_model, "frameskip": policy.config.frameskip,
                        "parameters": policy.num_parameters()}
        name = f"policy-{policy.config.method}"
    else:
        objective = mpc.build_objective(model)  # shared by the agent and every sweep agent
        if mpc.subgoals != "off":  # hierarchical: the graph over the model's training data steers the planner
            objective = _with_subgoals(cfg, objective, model, paths, store, action_space, device)
        agent = mpc.build_agent(model, action_space, device, objective=objective)
        monitor = _surprise_monitor(cfg.surprise, model, paths.model)
        agent.monitor = monitor
        planner_info, name, judge = _describe_mpc(mpc, agent, objective, notes)
    common = dict(budget=cfg.budget, batch=cfg.batch, seed=cfg.seed, progress=cfg.progress, success=cfg.success,
                  judge=judge)
    results: list[EvalResult] = [evaluate(agent, env_id, env_kwargs, tasks, record=cfg.gif_episodes,
                                          name=name, config=planner_info, **common)]
    subgoal_summary = objective.summary() if mpc.subgoals != "off" and objective is not None else None
    if mpc.decision_ms is not None and policy is None:  # real-time budget: how often the env did not wait for a plan
        results[0].config.update(decision_ms=mpc.decision_ms, decisions=agent.decisions, overruns=agent.overruns)
        notes.append(f"real-time budget {mpc.decision_ms:g} ms per decision: {agent.overruns} of {agent.decisions} "
                     "decisions overran (the previous plan's next action was taken)")
    if cfg.baseline:
        results.append(evaluate(RandomAgent.for_space(action_space, seed=cfg.seed), env_id, env_kwargs, tasks,
                                name="random", **common))
    sweep = None
    if cfg.sweep:
        pairs = parse_pairs(cfg.sweep_pairs) if cfg.sweep_pairs else list(DEFAULT_SWEEP)
        sweep = budget_sweep(lambda n, i: mpc.build_agent(model, action_space, device, objective=objective, samples=n,
                                                          iterations=i),
                             pairs, env_id, env_kwargs, tasks, **common)
    meta = {
        "command": shlex.join(["forethought", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "forethought eval",
        "config": dataclasses.asdict(cfg),
        "seed": cfg.seed, "model": str(paths.model.resolve()), "run": str(paths.run) if paths.run else None,
        "data": str(paths.data) if paths.data else None, "env_id": env_id, "env_kwargs": env_kwargs,
        "planner": planner_info, "budget": cfg.budget, "goal_source": cfg.goal_source,
        "protocol": protocol_name(cfg, env_kwargs, getattr(model.config, "proprio_dims", None)),
        "goal_offset": cfg.goal_offset if cfg.goal_source == "dataset" else None, "episodes": len(tasks),
        "tasks_note": tasks_note, "task_filter": task_filter, "tasks": [t.to_dict() for t in tasks], "device": device,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    doors = _doors_per_task(env_id, env_kwargs, tasks)
    if doors is not None:  # MultiRoom / TwoRoom: how many doors each task's shortest path crosses
        for task, n in zip(meta["tasks"], doors):
            task["doors"] = n
        meta["success_by_doors"] = {r.name: _by_doors(r, doors) for r in results}
        notes.append(f"{results[0].name} by doors crossed: " + ", ".join(
            f"{d}: {v['successes']}/{v['episodes']}" for d, v in meta["success_by_doors"][results[0].name].items()))
    if subgoal_summary is not None:
        meta["subgoals"] = subgoal_summary
        g = subgoal_summary["graph"]
        notes.append(f"subgoals: a graph of {g['nodes']} training frames ({g['edges']['total']} edges, "
                     f"{g['strong_components']} strongly connected component(s), built in {g['build_time_s']:.1f} s); "
                     f"{subgoal_summary['subgoal_fraction']:.0%} of decisions steered by a subgoal, "
                     f"{subgoal_summary['switches_per_episode']:.1f} subgoals chosen per episode")
    if monitor is not None:
        meta["surprise"] = {"mode": cfg.surprise, **monitor.summary()}
        sm = meta["surprise"]
        notes.append(f"surprise monitor ({cfg.surprise}): {sm['alarm_rate']:.1%} of {sm['frames']} model frames above "
                     f"the calibrated threshold {sm['threshold']:.3g} ({sm['alarm_rate_first_frame']:.1%} of first frames)")
    write_report(out, results, meta, sweep=sweep, gif_episodes=cfg.gif_episodes, notes=notes, warnings=warnings,
                 overwrite=cfg.overwrite)
    print(markdown_table(results))
    for note in notes:
        print(note)
    print(f"report written to {out}/report.md")
    return results
