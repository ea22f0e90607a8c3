"""Anytime planning: with a wall-clock deadline the planners stop iterating in time, always run at
least one iteration, and count only the work they did."""

from __future__ import annotations

import time

import pytest
import torch

from forethought.models import WorldModel, WorldModelConfig
from forethought.planning import LatentGoalObjective, make_planner
from forethought.planning.common import anytime

MARGIN = 0.03  # s: scheduling jitter of a shared CPU; one iteration on the tiny model is ~1-3 ms


def _objective():
    """A real objective: a tiny world model's rollout toward a goal latent (B=2, h=1)."""
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 16, 16), action_dim=2, history=1)
    model = WorldModel(cfg).eval()
    z = torch.randn(2, 1, model.latent_dim)
    goal = torch.randn(2, model.latent_dim)
    return LatentGoalObjective(model)(z, None, goal), model.action_dim


@pytest.mark.parametrize("name", ["cem", "mppi", "random", "gradient"])
@pytest.mark.parametrize("budget", [0.02, 0.08])
def test_planner_returns_within_the_budget_with_the_best_plan_so_far(name: str, budget: float) -> None:
    objective, A = _objective()
    planner = make_planner(name, samples=32, iterations=100_000, seed=0)
    low, high = -torch.ones(A), torch.ones(A)
    # The process's first backward pass (gradient planner) takes ~0.5 s of one-time setup; an iteration
    # that has started always finishes, so warm up first as an agent's first decision would.
    planner.plan(objective, torch.zeros(2, 4, A), low, high, deadline=time.perf_counter() - 1.0)
    t0 = time.perf_counter()
    res = planner.plan(objective, torch.zeros(2, 4, A), low, high, deadline=t0 + budget)
    took = time.perf_counter() - t0
    assert took < budget + MARGIN, (took, budget)
    n = res.trace.shape[0]
    assert 1 <= n < 100_000 and res.evaluations == 32 * n  # only the iterations that ran are counted
    assert (res.trace[1:] <= res.trace[:-1]).all()
    torch.testing.assert_close(res.cost, res.trace[-1])


def test_a_longer_budget_buys_more_iterations_and_no_worse_plans() -> None:
    objective, A = _objective()
    low, high = -torch.ones(A), torch.ones(A)
    short = make_planner("cem", samples=32, iterations=100_000, seed=0).plan(
        objective, torch.zeros(2, 4, A), low, high, deadline=time.perf_counter() + 0.01)
    long = make_planner("cem", samples=32, iterations=100_000, seed=0).plan(
        objective, torch.zeros(2, 4, A), low, high, deadline=time.perf_counter() + 0.1)
    assert long.trace.shape[0] > short.trace.shape[0]
    # Same seed, same stream: the long run's first iterations are the short run's.
    torch.testing.assert_close(long.trace[: short.trace.shape[0]], short.trace)
    assert (long.cost <= short.cost).all()


def test_a_deadline_already_past_still_runs_one_iteration_and_none_caps_nothing() -> None:
    objective, A = _objective()
    res = make_planner("cem", samples=16, iterations=50, seed=0).plan(
        objective, torch.zeros(2, 3, A), -torch.ones(A), torch.ones(A), deadline=time.perf_counter() - 1.0)
    assert res.trace.shape[0] == 1 and res.evaluations == 16
    assert list(anytime(7, None, torch.device("cpu"))) == list(range(7))
    assert len(list(anytime(7, time.perf_counter() + 60, torch.device("cpu")))) == 7  # the cap still holds
