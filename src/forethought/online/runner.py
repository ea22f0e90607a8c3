"""`forethought run`: the online agent in an env, episode after episode, with an optional change of the world.

Each episode ``i`` puts the env in a task (a held-out start and the state ``goal_offset`` steps
later, or an env-sampled start and goal; seeded by ``(seed, i)``), shows the agent the goal image,
and runs ``budget`` env steps. The agent sees observations only: while it acts, the env's state and
success methods are sealed (:func:`forethought.evaluation.protocol.sealed`). Success is judged
afterwards from the true state, as in ``eval``, and goes into the episode's record. Between
episodes the agent may update its model (:meth:`OnlineAgent.maybe_update`).

Kill-safe: ``--resume`` reopens the folder and continues after the last finished episode, with the
committed model version. A block line is printed every ``block`` episodes and ``summary.json``
(the JSON log: blocks, updates, every episode) is rewritten atomically after each block.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from forethought.evaluation.config import MPCConfig
from forethought.evaluation.protocol import sealed
from forethought.evaluation.tasks import Task, sample_env_tasks, sample_tasks, verify_reset
from forethought.online.agent import OnlineAgent
from forethought.online.change import WorldChange, parse_action_scale
from forethought.online.config import RunConfig, UpdateConfig
from forethought.online.report import print_block, print_update, summarize, write_summary

# What must match to continue a run (--resume): everything that shapes its episodes.
RESUME_KEYS = ("env_id", "env_kwargs", "change", "budget", "goal_source", "goal_offset", "seed", "data")


def _seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def _task(cfg: RunConfig, i: int, env: Any, store: Any, held_out: list[int] | None) -> tuple[Task, str]:
    if cfg.goal_source == "dataset":
        return sample_tasks(store, held_out, 1, goal_offset=cfg.goal_offset, seed=_seed(cfg.seed, i))[0], "dataset"
    return sample_env_tasks(env, 1, seed=_seed(cfg.seed, i))[0], "env"


def reset_to(env: Any, env_id: str, task: Task, seed: int) -> np.ndarray:
    """Start ``task`` through the reset contract (checked); the first observation."""
    obs, _ = env.reset(seed=seed, options={"state": task.start_state, "goal_state": task.goal_state})
    verify_reset(env, task, env_id)
    return obs


def run_episode(agent: OnlineAgent, env: Any, obs: np.ndarray, task: Task, budget: int) -> dict[str, Any]:
    """One episode of ``budget`` steps from ``obs`` (the env just reset to ``task``); the judged outcome."""
    judge = env.unwrapped
    goal = judge.render_goal()
    states = []
    for _ in range(budget):
        with sealed([env]):  # the agent sees observations only
            action = agent.act(np.array(obs), goal.copy())
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(obs, reward, terminated, truncated)
        states.append(np.asarray(info["state"] if "state" in info else judge.get_state(), np.float64))
        if terminated:
            break
    reached = [t + 1 for t, s in enumerate(states) if judge.success(s, task.goal_state)]
    distance = getattr(judge, "goal_distance", None) or (lambda a, b: float(np.linalg.norm(a - b)))
    return {"success": bool(judge.success(states[-1], task.goal_state)), "success_any": bool(reached),
            "first_success_step": reached[0] if reached else None,
            "initial_distance": float(distance(task.start_state, task.goal_state)),
            "final_distance": float(distance(states[-1], task.goal_state)), "task": task.to_dict()}


def run_online(cfg: RunConfig, mpc: MPCConfig, update: UpdateConfig) -> dict[str, Any]:
    """Run (or continue) the online agent for ``cfg.episodes`` episodes; returns the summary."""
    import torch

    from forethought.agent.compat import check_model_env
    from forethought.agent.mpc import model_frameskip
    from forethought.data.store import EpisodeStore
    from forethought.envs import make
    from forethought.models import WorldModel
    from forethought.training.run_folder import RunPaths, held_out_episodes

    paths = RunPaths.resolve(cfg.model, cfg.data)
    store = EpisodeStore.open(paths.data) if paths.data is not None else None
    env_id = cfg.env or (store.meta.get("env_id") if store is not None else None)
    if not env_id:
        raise ValueError("no dataset and no environment: pass --data (the model's dataset) or --env")
    env_kwargs = cfg.env_kwargs if cfg.env_kwargs is not None else dict((store.meta.get("env_kwargs") or {})
                                                                        if store is not None else {})
    if cfg.goal_source == "dataset" and store is None:
        raise ValueError("--goal-source dataset needs the model's dataset: pass --data, or --goal-source env")
    probe = make(env_id, **env_kwargs)
    action_space = probe.action_space
    change = WorldChange(cfg.change_at, cfg.change_kwargs,
                         parse_action_scale(cfg.change_action_scale, int(action_space.shape[0])))
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = WorldModel.from_pretrained(paths.model, device="cpu")
        for warning in check_model_env(model, env_id, probe, model_dir=paths.model, force=cfg.force):
            print(f"warning: {warning}", file=sys.stderr)
    finally:
        probe.close()
    frameskip = model_frameskip(model, int(action_space.shape[0]))
    meta = {"env_id": env_id, "env_kwargs": env_kwargs, "change": change.describe(), "budget": cfg.budget,
            "goal_source": cfg.goal_source, "goal_offset": cfg.goal_offset, "seed": cfg.seed,
            "data": str(paths.data) if paths.data else None}
    update = UpdateConfig(**{**update.to_dict(), "trigger": cfg.update, "seed": cfg.seed})
    mpc = MPCConfig(**{**asdict(mpc), "seed": cfg.seed})
    if cfg.resume:
        agent = OnlineAgent.open(cfg.memory, action_space=action_space, device=device)
        _check_resume(agent, meta, mpc, update)
    else:
        agent = OnlineAgent.create(cfg.memory, cfg.model, data=cfg.data, action_space=action_space, mpc=mpc,
                                   update=update, episode_frames=-(-cfg.budget // frameskip), device=device, meta=meta)
        for note in agent.settings["calibration_notes"]:
            print(note)
    held = held_out_episodes(paths.run, store.num_episodes)[0] if store is not None else None
    envs: dict[bool, Any] = {}
    command = shlex.join(["forethought", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "forethought run"
    try:
        if cfg.progress and agent.episodes:
            print(f"resuming {cfg.memory} after episode {agent.episodes - 1} with model version {agent.version}")
        for i in range(agent.episodes, cfg.episodes):
            changed = change.active(i)
            if changed not in envs:
                envs[changed] = change.make_env(env_id, env_kwargs, cfg.budget, changed)
            env = envs[changed]
            task, source = _task(cfg, i, env, store, held)
            try:
                obs = reset_to(env, env_id, task, cfg.seed + i)
            except ValueError as e:  # a dataset task the changed world cannot start (inside a moved wall)
                if source != "dataset" or not changed:
                    raise
                task, source = sample_env_tasks(env, 1, seed=_seed(cfg.seed, i))[0], f"env ({e})"
                obs = reset_to(env, env_id, task, cfg.seed + i)
            outcome = run_episode(agent, env, obs, task, cfg.budget)
            agent.end_episode({**outcome, "changed": changed, "task_source": source})
            record = agent.maybe_update()
            if record is not None and cfg.progress:
                print_update(record)
            if (i + 1) % cfg.block == 0 or i + 1 == cfg.episodes:
                summary = summarize(agent, cfg.block, meta, command)
                write_summary(agent.folder, summary)
                if cfg.progress:
                    print_block(summary["blocks"][-1])
    finally:
        for env in envs.values():
            env.close()
        agent.close()
    summary = summarize(agent, cfg.block, meta, command)
    write_summary(agent.folder, summary)
    _plot(summary, Path(agent.folder) / "success.png", cfg.progress)
    return summary


def _plot(summary: dict[str, Any], path: Path, progress: bool) -> None:
    """``success.png`` of this run (success per block, alarms, kept updates); skipped without matplotlib."""
    try:
        from forethought.online.plot import label_of, plot_runs

        plot_runs({label_of(summary): summary}, path, f"{summary['meta']['env_id']}: {summary['episodes']} episodes")
    except ImportError as e:
        if progress:
            print(f"success.png skipped: {e} (pip install 'forethought[viz]')")


def _check_resume(agent: OnlineAgent, meta: dict[str, Any], mpc: MPCConfig, update: UpdateConfig) -> None:
    stored = agent.settings
    want = {"meta": meta, "mpc": asdict(mpc), "update": update.to_dict()}
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # noqa: E731 (tuples = lists)
    for part in ("meta", "mpc", "update"):
        for key, value in want[part].items():
            if part == "meta" and key not in RESUME_KEYS:
                continue
            if not same(stored[part].get(key), value):
                raise ValueError(f"--resume: {agent.folder} was run with {key}={stored[part].get(key)!r}, this run asks "
                                 f"for {value!r}; use the original settings or a new --memory folder")


def run_from_args(args: Any) -> int:
    """`forethought run`: the parsed options (:mod:`forethought.online.arguments`) -> :func:`run_online`."""
    from forethought.online.arguments import configs_from_args

    summary = run_online(*configs_from_args(args))
    print(f"summary written to {Path(summary['folder']) / 'summary.json'}")
    return 0
