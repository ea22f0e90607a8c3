"""The protocol judges success once, from the true state after the full budget, and seals the env."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import forethought
from forethought.envs import make
from forethought.evaluation.protocol import ProtocolViolation, RandomAgent, evaluate
from forethought.evaluation.tasks import Task, sample_tasks

from .conftest import ENV_ID, PixelGreedyAgent

# Start 8 units left of the goal, same room; success radius is 4 units, max step 4 units.
NEAR = Task(start_state=np.array([16.0, 16.0]), goal_state=np.array([24.0, 16.0]))


class Scripted:
    """Open-loop actions per step index; records every argument it is given."""

    def __init__(self, script):
        self.script, self.t, self.seen = script, 0, []

    def reset(self, *args, **kwargs):
        self.seen.append(("reset", args, kwargs))
        self.t = 0

    def act(self, *args, **kwargs):
        self.seen.append(("act", args, kwargs))
        (obs,) = args
        a = np.tile(np.asarray(self.script(self.t), np.float32), (len(obs), 1))
        self.t += 1
        return a


def right_then_back(t):  # reaches the goal after 2 steps, then walks away for the rest
    return [1.0, 0.0] if t < 2 else [-1.0, 0.0]


def test_reaching_the_goal_early_then_leaving_fails():
    agent = Scripted(right_then_back)
    res = evaluate(agent, ENV_ID, {}, [NEAR], budget=10)
    assert agent.t == 10  # ran the whole budget: no early stop although the env flagged success at step 2
    (ep,) = res.episodes
    assert not ep.success and ep.final_distance > 4
    # Sanity of the scenario: after two steps the agent sat on the goal.
    env = make(ENV_ID)
    env.reset(seed=0, options={"state": NEAR.start_state, "goal_state": NEAR.goal_state})
    for _ in range(2):
        _, reward, *_ = env.step(np.array([1.0, 0.0], np.float32))
    assert reward == 1.0


def test_arriving_exactly_at_the_end_succeeds():
    budget = 10
    agent = Scripted(lambda t: [1.0, 0.0] if t >= budget - 2 else [0.0, 0.0])
    res = evaluate(agent, ENV_ID, {}, [NEAR], budget=budget)
    assert agent.t == budget and res.episodes[0].success and res.episodes[0].final_distance < 1e-9
    assert res.env_steps == budget and res.success_rate == 1.0


def test_agent_sees_only_pixel_arrays_of_its_own():
    class Vandal(Scripted):  # scribbles over what it is given
        def reset(self, goal_obs):
            super().reset(goal_obs)
            goal_obs[...] = 0

        def act(self, obs):
            a = super().act(obs)
            obs[...] = 0
            return a

    agent = Vandal(lambda t: [0.0, 0.0])
    tasks = [NEAR, Task(start_state=[48.0, 48.0], goal_state=[40.0, 20.0])]
    res = evaluate(agent, ENV_ID, {"image_size": 32}, tasks, budget=3, record=1)
    assert res.frames[0].obs.max() > 0 and res.frames[0].goal.max() > 0  # the agent's copies, not ours
    assert [kind for kind, *_ in agent.seen] == ["reset", "act", "act", "act"]
    env = make(ENV_ID, image_size=32).unwrapped
    for kind, args, kwargs in agent.seen:
        assert kwargs == {} and len(args) == 1
        (arr,) = args
        assert type(arr) is np.ndarray and arr.dtype == np.uint8 and arr.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(res.frames[0].goal, env.render_state(NEAR.goal_state))  # the goal *image*


def test_success_and_state_are_sealed_while_the_agent_acts():
    made = []

    def make_env():
        made.append(make(ENV_ID, max_episode_steps=5))
        return made[-1]

    class Cheater(Scripted):
        def __init__(self, method):
            super().__init__(lambda t: [0.0, 0.0])
            self.method = method

        def act(self, obs):
            inner = made[0].unwrapped  # a reference smuggled in through the test's closure
            getattr(inner, self.method)(*([NEAR.start_state, NEAR.goal_state] if self.method == "success" else []))
            return super().act(obs)

    for method in ("success", "get_state"):
        made.clear()
        with pytest.raises(ProtocolViolation, match=method):
            evaluate(Cheater(method), ENV_ID, {}, [NEAR], budget=5, make_env=make_env)
        # The tripwires are gone once the agent returns.
        assert made[0].unwrapped.success(NEAR.goal_state, NEAR.goal_state)


def test_env_that_ends_early_keeps_its_last_state():
    res = evaluate(Scripted(lambda t: [1.0, 0.0]), ENV_ID, {"max_episode_steps": 1}, [NEAR], budget=6)
    (ep,) = res.episodes
    assert ep.ended_early and res.env_steps == 1
    assert ep.final_distance == pytest.approx(4.0)  # one step of 4 units, then frozen


def test_bad_actions_are_refused():
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        evaluate(Scripted(lambda t: [0.0, 0.0, 0.0]), ENV_ID, {}, [NEAR], budget=2)


def test_seeded_evaluation_is_reproducible_and_batching_does_not_change_it(tworoom_store):
    tasks = sample_tasks(tworoom_store, range(15, 20), 7, goal_offset=25, seed=1)
    space = make(ENV_ID).action_space

    def numbers(batch, seed=5):
        s = evaluate(RandomAgent.for_space(space, seed=seed), ENV_ID, {}, tasks, budget=20, batch=batch, seed=5).summary()
        return [(e["task"], e["success"], e["final_distance"]) for e in s["per_episode"]], s["env_steps"]

    assert numbers(7) == numbers(7)
    assert numbers(7) != numbers(7, seed=6)
    # Batching changes which random numbers each env gets, but not the judging of a closed-loop agent:
    greedy = [evaluate(PixelGreedyAgent(), ENV_ID, {}, tasks, budget=30, batch=b).summary()["per_episode"]
              for b in (7, 3)]
    assert greedy[0] == greedy[1]


def test_pixel_agent_beats_random_on_held_out_tasks(tworoom_store):
    tasks = sample_tasks(tworoom_store, range(10, 20), 20, goal_offset=25, seed=0)
    greedy = evaluate(PixelGreedyAgent(), ENV_ID, {}, tasks, budget=50, record=2)
    rand = evaluate(RandomAgent.for_space(make(ENV_ID).action_space, 0), ENV_ID, {}, tasks, budget=50)
    assert greedy.success_rate >= 0.9 > rand.success_rate + 0.3
    assert greedy.decision_times == [1e-3] * 50 and len(greedy.step_times) == 50
    assert len(greedy.frames) == 2 and greedy.frames[0].obs.shape == (51, 64, 64, 3)


# Attributes that reveal or change the simulator's true state or success (`.step` is not here:
# optimizers have one). Planners and agents get observations and an action space, nothing more.
_FORBIDDEN_ATTRS = {"success", "get_state", "set_state", "goal_state", "sample_goal_state", "set_goal_state",
                    "render_goal", "render_state", "unwrapped"}
_FORBIDDEN_MODULES = ("forethought.envs", "forethought.evaluation", "gymnasium")


@pytest.mark.parametrize("package", ["planning", "agent"])
def test_planners_and_agents_never_touch_the_simulator(package):
    """Structural: planning/ and agent/ neither import the envs nor use a simulator-state attribute."""
    root = Path(forethought.__file__).parent / package
    bad = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in _FORBIDDEN_ATTRS:
                bad.append(f"{path.name}:{node.lineno} .{node.attr}")
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name}:{node.lineno} import {n}" for n in names if n.startswith(_FORBIDDEN_MODULES)]
    assert not bad, f"forethought.{package} reaches for the simulator: {bad}"
