"""Real-time budget of the MPC agent: the budget reaches the planner as a deadline, and a decision
that overruns does not make the env wait: the previous plan's next action is taken."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from forethought.agent import MPCAgent
from forethought.envs import make
from forethought.evaluation.config import MPCConfig
from forethought.planning import LatentGoalObjective, make_planner

from .test_mpc import ENV_A, K, _frames, _model


class SlowObjective:
    """The default objective factory, slowed down by ``delays[d]`` seconds per call in decision ``d``."""

    def __init__(self, model, delays: list[float]) -> None:
        self.inner, self.delays, self.decision = LatentGoalObjective(model), delays, -1

    def __call__(self, z_hist, a_hist, goal_z):
        self.decision += 1
        objective, delay = self.inner(z_hist, a_hist, goal_z), self.delays[self.decision]

        def slow(actions):
            time.sleep(delay)
            return objective(actions)

        return slow


def _agent(delays: list[float], decision_ms: float, iterations: int = 3) -> MPCAgent:
    env = make("forethought/TwoRoom-v0")
    model = _model()
    agent = MPCAgent(model, make_planner("cem", samples=16, iterations=iterations, seed=0),
                     action_space=env.action_space, horizon=3, objective=SlowObjective(model, delays))
    agent.decision_ms = decision_ms
    return agent


def _env_actions(agent: MPCAgent, model_actions: torch.Tensor) -> np.ndarray:
    """Normalized model actions ``(B, A)`` -> the ``k`` env actions ``(B, k, env_dim)`` they become."""
    return agent.normalizer.denormalize_action(model_actions.numpy()).reshape(-1, K, ENV_A).clip(-1, 1)


def test_an_overrun_executes_the_previous_plans_next_action() -> None:
    # A generous 1 s budget, so that decisions 0 and 2 are in time even on a loaded CI machine.
    agent = _agent(delays=[0.0, 1.2, 0.0], decision_ms=1000)
    frames = _frames(3 * K)
    agent.reset(frames[0])
    first = [agent.act(f) for f in frames[:K]]  # decision 0, in time
    plan0 = agent._plan.clone()
    np.testing.assert_allclose(np.stack(first, 1), _env_actions(agent, plan0[:, 0]), rtol=1e-5, atol=1e-6)
    second = [agent.act(f) for f in frames[K : 2 * K]]  # decision 1: one iteration takes 1.2 s > 1 s
    assert agent.decisions == 2 and agent.overruns == 1
    assert agent.last_result.trace.shape[0] == 1  # anytime: no second iteration was started
    # The env got the previous plan's next model action (plan0 shifted by the executed step) ...
    np.testing.assert_allclose(np.stack(second, 1), _env_actions(agent, plan0[:, 1]), rtol=1e-5, atol=1e-6)
    # ... and the late plan is the next warm start.
    torch.testing.assert_close(agent._plan, agent.last_result.actions)
    late_plan = agent._plan.clone()
    third = [agent.act(f) for f in frames[2 * K :]]  # decision 2, in time again
    assert agent.decisions == 3 and agent.overruns == 1
    assert not np.allclose(np.stack(third, 1), _env_actions(agent, late_plan[:, 1]))  # the new plan is used
    assert len(agent.decision_times) == 3 and agent.decision_times[1] > 1.0


def test_an_overrun_before_any_plan_takes_the_mean_action() -> None:
    agent = _agent(delays=[0.08], decision_ms=20, iterations=1)
    frames = _frames(1)
    agent.reset(frames[0])
    a = agent.act(frames[0])
    assert agent.overruns == 1
    mean = agent.normalizer.denormalize_action(np.zeros((1, K * ENV_A)))[0, :ENV_A].clip(-1, 1)
    np.testing.assert_allclose(a, np.broadcast_to(mean, a.shape), rtol=1e-5, atol=1e-6)


def test_a_budget_caps_the_decision_time_and_no_budget_runs_every_iteration() -> None:
    agent = _agent(delays=[0.004] * 10, decision_ms=40, iterations=1000)
    frames = _frames(4 * K)
    agent.reset(frames[0])
    for f in frames:
        agent.act(f)
    # >= 4 ms iterations in a 40 ms budget: the planner stops near the budget, not after the 1000
    # iterations (>= 4 s) it was given; the bound leaves room for a loaded, shared CPU.
    assert agent.decisions == 4
    assert max(agent.decision_times) < 0.5 and 1 <= agent.last_result.trace.shape[0] < 1000
    free = _agent(delays=[0.0] * 10, decision_ms=40, iterations=7)
    free.decision_ms = None
    free.reset(frames[0])
    free.act(frames[0])
    assert free.last_result.trace.shape[0] == 7 and free.overruns == 0


def test_mpc_config_gives_the_agent_its_budget_and_refuses_a_bad_one() -> None:
    env = make("forethought/TwoRoom-v0")
    agent = MPCConfig(samples=8, iterations=2, decision_ms=50).build_agent(_model(), env.action_space, "cpu")
    assert agent.decision_ms == 50
    with pytest.raises(ValueError, match="--decision-ms must be > 0"):
        MPCConfig(decision_ms=0)
