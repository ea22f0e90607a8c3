"""The planning-success protocol: run an agent for a fixed budget, then judge success once.

What makes it honest (docs/design.md, "Planning and evaluation" and the pitfalls list):

* The agent gets numpy observations only: a fresh uint8 copy of the goal image at `reset`
  and of the current images at each `act`. It never gets an env, a state, a reward or a flag;
  an agent whose model senses proprioception (`agent.proprio_dims`) also gets those state dims
  only, with each image and for the goal (DINO-WM's protocol; reports say so).
* While the agent's code runs, the simulator's state and success methods are replaced by a
  tripwire that raises `ProtocolViolation`, so an agent that smuggled a reference to our envs
  still cannot read the true state or ask for success.
* Each task reaches the env through the reset contract (`forethought.envs.protocols`), and
  `verify_reset` checks that the env really starts it: an env that ignores the options is refused
  rather than evaluated on its own random tasks.
* Every episode runs the full `budget` env steps. Nothing stops on success (the env's reward,
  which is its success flag, is dropped unread); success is judged after the episode, from the
  true states. `success="final"` (ours): the state after the last step; reaching the goal at
  step 10 and leaving it by step 50 is a failure. `success="any"` (stable-worldmodel / LeWM's
  latched success): any state after a step within the budget. Both are recorded per episode.
* An env that ends early (terminated/truncated) keeps its last observation and is not stepped
  again; the count is reported.

The same loop runs the random-policy baseline (`RandomAgent`), so both numbers share tasks,
seeds and judging.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from forethought.evaluation.stats import time_summary, wilson_interval
from forethought.evaluation.tasks import Task, verify_reset

DEFAULT_BUDGET = 50
DEFAULT_BATCH = 50
SUCCESS_MODES = ("final", "any")  # judged on the last state, or latched over the episode
# What evaluation calls on env.unwrapped (the GoalEnv protocol, forethought/envs/protocols.py).
_REQUIRED = ("get_state", "set_state", "set_goal_state", "goal_state", "render_goal", "success")
# Methods of the GoalEnv protocol that reveal or change the true state: off limits to agents.
_SEALED = ("success", "get_state", "set_state", "sample_goal_state", "set_goal_state", "render_goal", "render_state")


class ProtocolViolation(RuntimeError):
    """Something reached for the simulator's state or success while the agent was acting."""


@runtime_checkable
class Agent(Protocol):
    """What the protocol drives. Optionally exposes `decision_times: list[float]` (s per plan call)."""

    def reset(self, goal_obs: np.ndarray) -> None:
        """Start `B` episodes towards the goal images `goal_obs`, uint8 `(B, H, W, C)`."""
        ...

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One env action per episode for the current images `obs` uint8 `(B, H, W, C)`: `(B, A)`."""
        ...


class RandomAgent:
    """Uniform random env actions in the Box `[low, high]`, from a seeded generator (the baseline)."""

    def __init__(self, low: Any, high: Any, seed: int = 0) -> None:
        self.low = np.asarray(low, dtype=np.float32).reshape(-1)
        self.high = np.asarray(high, dtype=np.float32).reshape(-1)
        if self.low.shape != self.high.shape or not np.all(np.isfinite(self.low)) or not np.all(self.high > self.low):
            raise ValueError(f"RandomAgent needs finite bounds with low < high, got {low} and {high}")
        self.rng = np.random.default_rng(seed)
        self.decision_times: list[float] = []  # it never plans

    @classmethod
    def for_space(cls, action_space: Any, seed: int = 0) -> RandomAgent:
        return cls(action_space.low, action_space.high, seed=seed)

    def reset(self, goal_obs: np.ndarray) -> None:
        pass  # the goal is ignored: that is the point of the baseline

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, size=(len(obs), self.low.size)).astype(np.float32)


@dataclass(frozen=True)
class EpisodeResult:
    """The outcome of one task. `success` follows the evaluation's mode; `success_final` and
    `success_any` are both recorded, with the first step after which the success test held.
    Distances are in the space the env's success test uses (its `goal_distance`, e.g. the
    block position for PushT), else Euclidean over the whole true state."""

    task: int
    episode: int
    start_row: int
    success: bool
    success_final: bool
    success_any: bool
    first_success_step: int | None
    initial_distance: float
    final_distance: float
    ended_early: bool
    objective_success: bool | None = None  # the test-time objective's own judgement (judge=), if any

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class EpisodeFrames:
    """What the GIF shows of one episode: `obs` uint8 `(budget+1, H, W, C)`, `goal` `(H, W, C)`, and
    for an agent that plans through subgoals (`agent.subgoal_images()`) the subgoal it steered toward
    at each observation, `subgoals` `(budget+1, H, W, C)` (the last one repeated for the final frame)."""

    task: int
    obs: np.ndarray
    goal: np.ndarray
    success: bool
    subgoals: np.ndarray | None = None


@dataclass
class EvalResult:
    """All episodes of one method, with timings. `summary()` is what goes into report.json."""

    name: str
    episodes: list[EpisodeResult]
    budget: int
    batch: int
    seed: int
    decision_times: list[float] = field(default_factory=list)  # s per planning call (all B episodes)
    step_times: list[float] = field(default_factory=list)  # s per agent.act call (all B episodes)
    env_steps: int = 0
    wall_time: float = 0.0
    frames: list[EpisodeFrames] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    success_mode: str = "final"
    judge: str | None = None  # the name of the test-time objective's success function, when it judges

    @property
    def num_success(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.num_success / len(self.episodes) if self.episodes else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.num_success, len(self.episodes))

    def summary(self) -> dict[str, Any]:
        final = np.array([e.final_distance for e in self.episodes])
        n = len(self.episodes)
        rates = {mode: sum(getattr(e, f"success_{mode}") for e in self.episodes) for mode in SUCCESS_MODES}
        return {
            "name": self.name,
            "episodes": n,
            "success_mode": self.success_mode,
            "judge": self.judge,
            "successes": self.num_success,
            "success_rate": self.success_rate,
            "ci95": list(self.ci95),
            **{f"success_rate_{m}": (k / n if n else 0.0) for m, k in rates.items()},
            **{f"ci95_{m}": list(wilson_interval(k, n)) for m, k in rates.items()},
            "mean_final_distance": float(final.mean()) if final.size else None,
            "ended_early": sum(e.ended_early for e in self.episodes),
            "budget": self.budget,
            "batch": self.batch,
            "seed": self.seed,
            "env_steps": self.env_steps,
            "wall_time_s": self.wall_time,
            "decision_time_s": time_summary(self.decision_times),
            "step_time_s": time_summary(self.step_times),
            "config": self.config,
            "per_episode": [e.to_dict() for e in self.episodes],
        }


_MISSING = object()


def _tripwire(name: str) -> Callable[..., Any]:
    def tripped(*args: Any, **kwargs: Any) -> Any:
        raise ProtocolViolation(f"env.{name}() was called while the agent was acting. Agents and planners see "
                                "observations only; success is judged by the evaluation after the budget.")
    return tripped


@contextlib.contextmanager
def sealed(envs: Sequence[Any]) -> Iterator[None]:
    """Replace the true-state and success methods of `envs` by tripwires for the duration."""
    saved = []
    for env in envs:
        inner = env.unwrapped
        for name in _SEALED:
            if hasattr(inner, name):
                saved.append((inner, name, inner.__dict__.get(name, _MISSING)))
                setattr(inner, name, _tripwire(name))  # an instance attribute shadows the method
    try:
        yield
    finally:
        for inner, name, old in reversed(saved):
            if old is _MISSING:
                del inner.__dict__[name]
            else:
                setattr(inner, name, old)


def _fresh(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A fresh `(B, ...)` copy per call: the agent cannot alias env buffers or alter what is recorded.

    (Not marked read-only: `torch.as_tensor` warns on read-only arrays, and the copy is the agent's.)
    """
    return np.stack([np.asarray(a) for a in arrays])


def _as_agent(agent: Agent | Callable[[], Agent]) -> Agent:
    if hasattr(agent, "act") and hasattr(agent, "reset"):
        return agent  # type: ignore[return-value]
    if callable(agent):
        made = agent()
        if hasattr(made, "act") and hasattr(made, "reset"):
            return made
    raise TypeError(f"evaluate needs an agent with reset(goal_obs) and act(obs), or a factory returning one; "
                    f"got {type(agent).__name__}")


def evaluate(agent: Agent | Callable[[], Agent], env_id: str, env_kwargs: dict[str, Any] | None,
             tasks: Sequence[Task], *, budget: int = DEFAULT_BUDGET, batch: int = DEFAULT_BATCH, seed: int = 0,
             record: int = 0, name: str = "agent", config: dict[str, Any] | None = None,
             make_env: Callable[[], Any] | None = None, progress: bool = False, success: str = "final",
             judge: Callable[[np.ndarray, np.ndarray, np.ndarray, Any], bool] | None = None) -> EvalResult:
    """Run `agent` on every task for exactly `budget` env steps; judge success after the episode.

    Tasks run in chunks of `B = min(len(tasks), batch)` parallel envs, each chunk one `agent.reset`.
    Env `k` (task index) is reset with `seed + k`. The first `record` tasks keep their frames for
    the GIF. `make_env` overrides env creation (`forethought.envs.make(env_id, **env_kwargs)` with
    a time limit of `budget` steps); it exists for tests. `success`: `"final"` judges the state
    after the last step (ours), `"any"` any state after a step (latched, as stable-worldmodel).
    `judge(states (T+1, S), actions (T, A), goal_state (S,), env.unwrapped) -> bool`, when given,
    decides success instead (a test-time objective's own test: the true states from the start and
    the env actions executed); the final and latched goal tests are still recorded.
    Returns an `EvalResult`.
    """
    if success not in SUCCESS_MODES:
        raise ValueError(f"evaluate: success must be one of {', '.join(SUCCESS_MODES)}, got {success!r}")
    if budget < 1:
        raise ValueError(f"evaluate: budget must be >= 1 env step, got {budget}")
    if batch < 1:
        raise ValueError(f"evaluate: batch must be >= 1, got {batch}")
    if not tasks:
        raise ValueError("evaluate: no tasks given")
    agent = _as_agent(agent)
    if make_env is None:
        from forethought.envs import make

        kwargs = dict(env_kwargs or {})
        kwargs.setdefault("max_episode_steps", budget)  # the built-in limit must not cut the budget short
        make_env = lambda: make(env_id, **kwargs)  # noqa: E731
    b = min(len(tasks), batch)
    envs = [make_env() for _ in range(b)]
    for env in envs:
        missing = [m for m in _REQUIRED if not hasattr(env.unwrapped, m)]
        if missing:
            for made in envs:
                made.close()
            raise ValueError(f"{env_id}: {type(env.unwrapped).__name__} does not implement the GoalEnv protocol "
                             f"(missing {missing}); evaluation needs settable states, a goal and a success check. "
                             "Add them (forethought/envs/protocols.py, docs/custom-envs.md)")
    result = EvalResult(name=name, episodes=[], budget=budget, batch=b, seed=seed, config=dict(config or {}),
                        success_mode=success, judge=getattr(judge, "__qualname__", "judge") if judge else None)
    bar = None
    if progress:
        from forethought._progress import progress as progress_bar

        bar = progress_bar(total=len(tasks) * budget, unit="step", desc=name)
    t_start = time.perf_counter()
    try:
        for lo in range(0, len(tasks), b):
            chunk = list(range(lo, min(lo + b, len(tasks))))
            _run_chunk(agent, envs[: len(chunk)], env_id, tasks, chunk, budget, seed, record, result, bar, judge)
    finally:
        for env in envs:
            env.close()
        if bar is not None:
            bar.close()
    result.wall_time = time.perf_counter() - t_start
    return result


def _run_chunk(agent: Agent, envs: list[Any], env_id: str, tasks: Sequence[Task], chunk: list[int], budget: int,
               seed: int, record: int, result: EvalResult, bar: Any, objective_test: Callable[..., bool] | None = None) -> None:
    obs, goals, states = [], [], []
    for env, k in zip(envs, chunk):
        task = tasks[k]
        # The reset contract (forethought/envs/protocols.py): the env starts the task it is given, or is refused.
        o, info = env.reset(seed=seed + k, options={"state": task.start_state, "goal_state": task.goal_state})
        verify_reset(env, task, env_id)
        obs.append(o)
        goals.append(env.unwrapped.render_goal())
        states.append(np.asarray(info["state"] if "state" in info else env.unwrapped.get_state(), np.float64))
    start_states = [s.copy() for s in states]
    trajectories: list[list[np.ndarray]] = [[] for _ in envs]  # true states after each step (judged afterwards)
    executed: list[list[np.ndarray]] = [[] for _ in envs]  # env actions applied (for a judge)
    action_dim = int(np.prod(envs[0].action_space.shape))
    done = [False] * len(envs)
    steps = [0] * len(envs)
    recorded = {k: [o] for k, o in zip(chunk, obs) if k < record}
    # Proprioception: an agent that declares `proprio_dims` senses those state dims (only those) with
    # each observation, and gets the goal's (DINO-WM's goal is an image and its proprio).
    dims = getattr(agent, "proprio_dims", None)
    sense = (lambda rows: np.stack([np.asarray(r, np.float32)[list(dims)] for r in rows])) if dims else None
    subgoals: dict[int, list[np.ndarray]] = {k: [] for k in recorded}
    subgoal_view = getattr(agent, "subgoal_images", None) if recorded else None
    with sealed(envs):
        if sense is None:
            agent.reset(_fresh(goals))
        else:
            agent.reset(_fresh(goals), goal_proprio=sense([tasks[k].goal_state for k in chunk]))
    times = getattr(agent, "decision_times", None)
    n0 = len(times) if times is not None else 0  # reset may have cleared it: count from here
    for _ in range(budget):
        agent_obs = _fresh(obs)
        t0 = time.perf_counter()
        with sealed(envs):
            actions = agent.act(agent_obs) if sense is None else agent.act(agent_obs, proprio=sense(states))
        result.step_times.append(time.perf_counter() - t0)
        images = subgoal_view() if callable(subgoal_view) else None  # (B, H, W, C) dataset frames, or None
        if images is not None:
            for j, k in enumerate(chunk):
                if k in subgoals:
                    subgoals[k].append(np.array(images[j]))
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (len(envs), action_dim) or not np.all(np.isfinite(actions)):
            raise ValueError(f"agent.act must return finite env actions of shape ({len(envs)}, {action_dim}), "
                             f"got shape {actions.shape}")
        for j, env in enumerate(envs):
            if done[j]:
                continue  # ended early: keep its last observation and state
            # The reward (the env's own success flag) is dropped unread: never stop on success.
            o, _, terminated, truncated, info = env.step(actions[j])
            obs[j] = o
            states[j] = np.asarray(info["state"] if "state" in info else env.unwrapped.get_state(), np.float64)
            trajectories[j].append(states[j])
            executed[j].append(actions[j].copy())
            done[j] = bool(terminated or truncated)
            steps[j] += 1
            result.env_steps += 1
        for k, o in zip(chunk, obs):
            if k in recorded:
                recorded[k].append(o)
        if bar is not None:
            bar.update(len(envs))
    times = getattr(agent, "decision_times", None)
    if times is not None:
        result.decision_times.extend(float(t) for t in list(times)[n0:])
    # Judged here, after the episode, from the true states: the only calls to success() in the protocol.
    for j, (env, k) in enumerate(zip(envs, chunk)):
        task, judge = tasks[k], env.unwrapped
        reached = [t + 1 for t, state in enumerate(trajectories[j]) if judge.success(state, task.goal_state)]
        final = bool(judge.success(states[j], task.goal_state))
        any_ = bool(reached) or final  # an env that ended early keeps its last state
        distance = getattr(judge, "goal_distance", None) or (lambda a, b: float(np.linalg.norm(a - b)))
        success_ = final if result.success_mode == "final" else any_
        objective = None
        if objective_test is not None:
            acts = np.stack(executed[j]) if executed[j] else np.zeros((0, action_dim), np.float32)
            path = np.stack([start_states[j], *trajectories[j]])  # (T+1, S) true states from the start
            objective = success_ = bool(objective_test(path, acts, task.goal_state, env.unwrapped))
        result.episodes.append(EpisodeResult(
            task=k, episode=task.episode, start_row=task.start_row, success=success_, success_final=final,
            success_any=any_, first_success_step=reached[0] if reached else None,
            initial_distance=float(distance(start_states[j], task.goal_state)),
            final_distance=float(distance(states[j], task.goal_state)),
            ended_early=steps[j] < budget, objective_success=objective,
        ))
        if k in recorded:
            shown = subgoals[k] + subgoals[k][-1:] if len(subgoals[k]) == budget else None  # one per observation
            result.frames.append(EpisodeFrames(task=k, obs=np.stack(recorded[k]), goal=goals[j], success=success_,
                                               subgoals=np.stack(shown) if shown else None))
