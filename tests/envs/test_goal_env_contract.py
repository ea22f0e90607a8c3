"""The GoalEnv protocol and the reset contract, checked the same way for every numpy-only built-in env."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from forethought.envs import GoalEnv, make
from forethought.evaluation.tasks import Task, verify_reset

IDS = ["forethought/TwoRoom-v0", "forethought/MultiRoom-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    check_env(make(env_id, render_mode="rgb_array").unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", IDS)
def test_reset_contract_starts_the_given_task(env_id):
    env = make(env_id)
    u = env.unwrapped
    assert isinstance(u, GoalEnv)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start, goal = u.sample_goal_state(rng), u.sample_goal_state(rng)
    obs, info = env.reset(seed=5, options={"state": start, "goal_state": goal})
    verify_reset(env, Task(start_state=start, goal_state=goal), env_id)  # raises EnvContractError if ignored
    np.testing.assert_array_equal(info["state"], start)
    assert info["state"].dtype == np.float64 and info["state"].shape == (u.state_dim,)
    np.testing.assert_array_equal(obs, u.render_state(start))
    np.testing.assert_array_equal(u.render_goal(), u.render_state(goal))
    assert u.success(goal, goal) and u.goal_distance(start, goal) == pytest.approx(np.hypot(*(start - goal)))


@pytest.mark.parametrize("env_id", IDS)
def test_reset_options_may_give_either_part(env_id):
    env = make(env_id)
    u = env.unwrapped
    _, info = env.reset(seed=3)
    drawn_start, drawn_goal = info["state"], u.goal_state
    other = u.sample_goal_state(np.random.default_rng(9))
    _, info = env.reset(seed=3, options={"goal_state": other})  # the start is drawn as without options
    np.testing.assert_array_equal(info["state"], drawn_start)
    np.testing.assert_array_equal(u.goal_state, other)
    _, info = env.reset(seed=3, options={"state": other, "goal_state": None})
    np.testing.assert_array_equal(info["state"], other)
    np.testing.assert_array_equal(u.goal_state, drawn_goal)


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_reset_and_steps_are_deterministic(env_id, rollout):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 2)).astype(np.float32)
    o1, s1 = rollout(env_id, 2, actions)
    o2, s2 = rollout(env_id, 2, actions)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(s1, s2)
    assert np.abs(np.diff(s1, axis=0)).sum() > 1.0  # actions move the agent
