"""Evaluation tasks: a start state and a goal state, from held-out data or from the env.

The protocol of stable-worldmodel (not DINO-WM's): the start is a state of a *held-out* episode
and the goal is the state `goal_offset` env steps later in the *same* episode, so the goal is
known to be reachable in that many steps and was never seen in training. The planner later gets
only the goal *observation* (rendered from the goal state by the env), never the goal state.

The alternative, `sample_env_tasks`, draws a random start (`reset`) and an env-sampled goal
(`sample_goal_state`): harder (the goal may be far), and independent of any dataset.

Either way a task reaches the env through the reset contract of `forethought.envs.protocols`,
`env.reset(seed=..., options={"state": start, "goal_state": goal})`; `verify_reset` checks after
each reset that the env honoured it.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_GOAL_OFFSET = 25
RESET_CONTRACT = 'env.reset(seed=..., options={"state": start, "goal_state": goal})'
STATE_TOLERANCE = 1e-6  # rtol and atol of the start/goal check after reset (states are float64)


class EnvContractError(ValueError):
    """An env that does not start the task it is given through reset (the reset contract)."""


@dataclass(frozen=True)
class Task:
    """One evaluation episode: put the env in `start_state`, show it `goal_state`'s image.

    `episode` / `start_row` say where the task comes from in the dataset (`-1` for env-sampled
    tasks); the goal is row `start_row + goal_offset` of the same episode.
    """

    start_state: np.ndarray  # float64 (S,)
    goal_state: np.ndarray  # float64 (S,)
    episode: int = -1
    start_row: int = -1
    goal_offset: int = -1

    def __post_init__(self) -> None:
        start = np.asarray(self.start_state, dtype=np.float64).reshape(-1)
        goal = np.asarray(self.goal_state, dtype=np.float64).reshape(-1)
        if start.shape != goal.shape:
            raise ValueError(f"Task: start_state {start.shape} and goal_state {goal.shape} must have the same shape")
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(goal))):
            raise ValueError("Task: start_state and goal_state must be finite")
        object.__setattr__(self, "start_state", start)
        object.__setattr__(self, "goal_state", goal)

    def to_dict(self) -> dict[str, Any]:
        return {"episode": self.episode, "start_row": self.start_row, "goal_offset": self.goal_offset,
                "start_state": self.start_state.tolist(), "goal_state": self.goal_state.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        """A task from a report's ``meta["tasks"]`` entry (annotations such as ``doors`` are ignored)."""
        return cls(**{k: d[k] for k in ("episode", "start_row", "goal_offset", "start_state", "goal_state")})


def sample_tasks(store: Any, episodes: list[int] | np.ndarray, n: int, goal_offset: int = DEFAULT_GOAL_OFFSET,
                 seed: int = 0) -> list[Task]:
    """`n` tasks from the dataset episodes `episodes` (the held-out ones), deterministic in `seed`.

    Episodes are visited in a seeded random order, each once before any repeats (so 50 tasks
    from 50 held-out episodes use every episode once); the start row is uniform over the rows
    `r` with `r + goal_offset <= T` (T = the episode's env steps), so the goal row exists.
    Episodes shorter than `goal_offset` steps are skipped.
    """
    if n < 1:
        raise ValueError(f"sample_tasks: n must be >= 1, got {n}")
    if goal_offset < 1:
        raise ValueError(f"sample_tasks: goal_offset must be >= 1 env step, got {goal_offset}")
    if not getattr(store, "has_state", False):
        raise ValueError(f"{getattr(store, 'path', 'the dataset')} stores no true state; evaluation needs it to "
                         "put the env in the start state. Re-collect with an env that puts info['state'], "
                         "or use env-sampled goals (--goal-source env).")
    ids = np.asarray(sorted({int(i) for i in episodes}), dtype=np.int64)
    if ids.size == 0:
        raise ValueError("sample_tasks: no held-out episodes given")
    if ids.min() < 0 or ids.max() >= store.num_episodes:
        raise ValueError(f"sample_tasks: episode ids must be in [0, {store.num_episodes}), got {ids.min()}..{ids.max()}")
    lengths = store.episode_lengths[ids]
    eligible = ids[lengths >= goal_offset]
    if eligible.size == 0:
        raise ValueError(f"sample_tasks: no held-out episode has >= goal_offset={goal_offset} steps "
                         f"(longest: {int(lengths.max())}); lower --goal-offset or collect longer episodes")
    rng = np.random.default_rng(seed)
    repeats = -(-n // eligible.size)  # ceil
    order = np.concatenate([rng.permutation(eligible) for _ in range(repeats)])[:n]
    starts, steps = store.episode_starts, store.episode_lengths
    rows = np.array([rng.integers(0, steps[e] - goal_offset + 1) for e in order], dtype=np.int64)
    state = store.array("state")
    # Read only the 2n state rows needed, not whole episodes (obs are never loaded here).
    first = starts[order] + rows
    index = np.concatenate([first, first + goal_offset])
    uniq, inverse = np.unique(index, return_inverse=True)
    values = np.asarray(state.get_orthogonal_selection((uniq,)), dtype=np.float64)[inverse]
    return [Task(start_state=values[k], goal_state=values[n + k], episode=int(order[k]), start_row=int(rows[k]),
                 goal_offset=int(goal_offset)) for k in range(n)]


def unsolved_tasks(tasks: Sequence[Task], success: Callable[[np.ndarray, np.ndarray], bool],
                   n: int) -> tuple[list[Task], dict[str, int]]:
    """The first `n` tasks whose start does not already satisfy `success(start, goal)`, and counts.

    Data-derived tasks can be trivial: in PushT the scripted pusher often leaves the block where it
    was for 25 steps, so the start already counts as a success and any policy that does not knock
    the block away "succeeds". `success` is the env's own test (`env.unwrapped.success`), so the
    rule is the one success is judged by. Returns `(kept, {"drawn", "dropped", "kept"})`; `drawn`
    counts the tasks looked at until `n` were kept (all of them when fewer than `n` qualify).
    """
    if n < 1:
        raise ValueError(f"unsolved_tasks: n must be >= 1, got {n}")
    kept: list[Task] = []
    drawn = 0
    for task in tasks:
        if len(kept) == n:
            break
        drawn += 1
        if not success(task.start_state, task.goal_state):
            kept.append(task)
    return kept, {"drawn": drawn, "dropped": drawn - len(kept), "kept": len(kept)}


def sample_env_tasks(env: Any, n: int, seed: int = 0) -> list[Task]:
    """`n` tasks with a random start (`env.reset`) and a goal from `env.unwrapped.sample_goal_state`."""
    if n < 1:
        raise ValueError(f"sample_env_tasks: n must be >= 1, got {n}")
    goal_env = env.unwrapped
    if not hasattr(goal_env, "sample_goal_state"):
        raise ValueError(f"{type(goal_env).__name__} has no sample_goal_state(); env-sampled goals need a "
                         "GoalEnv (see forethought.envs.protocols)")
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(n):
        _, info = env.reset(seed=int(rng.integers(2**31)))
        start = info["state"] if "state" in info else goal_env.get_state()
        tasks.append(Task(start_state=start, goal_state=goal_env.sample_goal_state(rng)))
    return tasks


def _short(x: np.ndarray) -> str:
    return np.array2string(np.asarray(x, dtype=np.float64), precision=4, threshold=8, separator=", ")


def verify_reset(env: Any, task: Task, env_id: str) -> None:
    """Raise :class:`EnvContractError` unless the env, just reset with the task's options, is in the task.

    Checks that ``env.unwrapped.get_state()`` equals ``task.start_state`` and ``env.unwrapped.goal_state``
    equals ``task.goal_state`` (within ``STATE_TOLERANCE``). An env that ignores the reset options
    would otherwise start every task from a random state toward its own random goal, while success is
    judged against the task's goal: a wrong success rate and no error.
    """
    inner = env.unwrapped
    wrong = []
    state = np.asarray(inner.get_state(), dtype=np.float64).reshape(-1)
    if state.shape != task.start_state.shape or not np.allclose(state, task.start_state, rtol=STATE_TOLERANCE,
                                                                 atol=STATE_TOLERANCE):
        wrong.append(f"after reset get_state() is {_short(state)}, not the task's start {_short(task.start_state)}")
    goal = np.asarray(inner.goal_state, dtype=np.float64).reshape(-1)
    if goal.shape != task.goal_state.shape or not np.allclose(goal, task.goal_state, rtol=STATE_TOLERANCE,
                                                               atol=STATE_TOLERANCE):
        wrong.append(f"goal_state is {_short(goal)}, not the task's goal {_short(task.goal_state)}")
    if wrong:
        raise EnvContractError(
            f"{env_id}: {type(inner).__name__} ignores the reset contract: {'; '.join(wrong)}. Evaluation puts every "
            f"task in the env with {RESET_CONTRACT} (forethought/envs/protocols.py, docs/custom-envs.md), so its "
            "success rate would be about other tasks. Make reset start in options['state'] and set "
            "options['goal_state'] as the goal: call forethought.envs.base.apply_reset_options(self, options) at the "
            "end of reset, or subclass forethought.envs.base.PixelGoalEnv, which implements the contract.")
