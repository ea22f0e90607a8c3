"""The example test-time objectives: their costs rank known plans, their success tests judge known paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.envs import make
from forethought.examples.objectives import (avoid_zone, pass_waypoint, reacher_fingertip, tworoom_avoid_zone,
                                             tworoom_low_energy, tworoom_waypoint)


def _line(a, b, steps: int) -> torch.Tensor:
    """``steps`` states from ``a`` (exclusive) to ``b`` (inclusive), ``(steps, 2)``."""
    t = torch.linspace(0, 1, steps + 1)[1:, None]
    return torch.tensor(a) + t * (torch.tensor(b) - torch.tensor(a))


@pytest.fixture(scope="module")
def tworoom():
    env = make("forethought/TwoRoom-v0")
    yield env.unwrapped
    env.close()


def test_avoid_zone(tworoom):
    goal = torch.tensor([[16.0, 50.0]])
    through = _line((16.0, 14.0), (16.0, 50.0), 5)  # straight up through the zone x 8-24, y 24-40
    around = torch.stack([torch.tensor([28.0, 20.0]), torch.tensor([28.0, 32.0]), torch.tensor([28.0, 44.0]),
                          torch.tensor([20.0, 50.0]), torch.tensor([16.0, 50.0])])
    costs = tworoom_avoid_zone(torch.stack([through, around])[None], torch.zeros(1, 2, 5, 2), goal)
    assert costs.shape == (1, 2) and costs[0, 1] < costs[0, 0]
    judge = tworoom_avoid_zone.success
    assert not judge(np.concatenate([[[16.0, 14.0]], through.numpy()]), np.zeros((5, 2)), np.array([16.0, 50.0]),
                     tworoom)
    assert judge(np.concatenate([[[16.0, 14.0]], around.numpy()]), np.zeros((5, 2)), np.array([16.0, 50.0]), tworoom)
    assert not judge(np.concatenate([[[16.0, 14.0]], around.numpy()]), np.zeros((5, 2)), np.array([50.0, 50.0]),
                     tworoom)  # avoided, but the goal not reached
    assert avoid_zone(penalty=0.0)(torch.stack([through, around])[None], torch.zeros(1, 2, 5, 2), goal)[0, 0] < \
        costs[0, 0]  # the penalty is what makes crossing expensive


def test_waypoint(tworoom):
    goal = torch.tensor([[16.0, 16.0]])
    plan = _line((20.0, 20.0), (16.0, 16.0), 3)[None, None]  # (1, 1, 3, 2) straight to the goal
    not_yet = torch.tensor([[[10.0, 10.0], [20.0, 20.0]]])  # frames seen: far from the door
    passed = torch.tensor([[[40.0, 32.0], [24.0, 32.0], [20.0, 20.0]]])  # came through the door
    to_goal = (plan[0, 0] - goal).norm(dim=-1).sum()
    torch.testing.assert_close(tworoom_waypoint(plan, torch.zeros(1, 1, 3, 2), goal, passed)[0, 0], to_goal)
    door, g = torch.tensor([32.0, 32.0]), goal[0]
    want = ((plan[0, 0] - door).norm(dim=-1) + (door - g).norm()).sum()  # the path to go via the door
    torch.testing.assert_close(tworoom_waypoint(plan, torch.zeros(1, 1, 3, 2), goal, not_yet)[0, 0], want)
    via_door = pass_waypoint()(_line((20.0, 20.0), (32.0, 32.0), 3)[None, None], torch.zeros(1, 1, 3, 2), goal,
                               not_yet)
    assert via_door[0, 0] < want  # heading for the door is better than heading for the goal
    judge = tworoom_waypoint.success
    through = np.concatenate([[[40.0, 40.0]], _line((40.0, 40.0), (16.0, 16.0), 6).numpy()])  # crosses (32, 32)
    direct = np.concatenate([[[20.0, 10.0]], _line((20.0, 10.0), (16.0, 16.0), 6).numpy()])
    assert judge(through, np.zeros((6, 2)), np.array([16.0, 16.0]), tworoom)
    assert not judge(direct, np.zeros((6, 2)), np.array([16.0, 16.0]), tworoom)


def test_low_energy(tworoom):
    states, goal = torch.zeros(1, 2, 4, 2), torch.zeros(1, 2)
    actions = torch.stack([torch.full((4, 2), 0.2), torch.full((4, 2), 1.0)])[None]
    costs = tworoom_low_energy(states, actions, goal)
    assert costs[0, 0] < costs[0, 1]
    at_goal = np.array([[5.0, 5.0], [16.0, 16.0]])
    assert tworoom_low_energy.success(at_goal, np.full((1, 2), 0.5), np.array([16.0, 16.0]), tworoom)  # 0.25 <= 0.3
    assert not tworoom_low_energy.success(at_goal, np.full((1, 2), 0.6), np.array([16.0, 16.0]), tworoom)


@pytest.mark.mujoco
def test_reacher_fingertip_is_the_env_kinematics():
    try:
        env = make("forethought/Reacher-v0")
    except ImportError as e:
        pytest.skip(f"needs the [mujoco] extra: {e}")
    states = np.array([[0.3, -1.0, 0, 0], [2.5, 1.2, 0, 0], [7.0, 0.1, 0, 0]])
    want = np.stack([env.unwrapped.fingertip(s) for s in states])
    np.testing.assert_allclose(reacher_fingertip(states).numpy(), want, atol=1e-6)
    env.close()


def test_goal_image_baseline_has_no_state_cost_and_the_same_judge():
    from forethought.examples.objectives import baseline_tworoom_waypoint

    assert tworoom_waypoint.success.__qualname__ == "pass_waypoint.success"  # the original keeps its name
    goal = np.array([16.0, 16.0])
    path = np.concatenate([[[40.0, 40.0]], _line((40.0, 40.0), (16.0, 16.0), 6).numpy()])
    env = make("forethought/TwoRoom-v0").unwrapped
    assert baseline_tworoom_waypoint.success(path, np.zeros((6, 2)), goal, env) == \
        tworoom_waypoint.success(path, np.zeros((6, 2)), goal, env)
    assert baseline_tworoom_waypoint(torch.ones(2, 3, 4, 2), torch.ones(2, 3, 4, 2)).abs().sum() == 0
