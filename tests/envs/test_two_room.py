"""TwoRoom: gymnasium compliance, determinism, walls that hold, the step cap, the goal API."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from forethought.envs import make
from forethought.envs.two_room import TwoRoomEnv

ID = "forethought/TwoRoom-v0"


def test_check_env():
    check_env(make(ID, render_mode="rgb_array").unwrapped, skip_render_check=False)


def test_spaces_and_info():
    env = make(ID, image_size=32)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (2,) and info["state"].dtype == np.float64
    assert env.action_space.dtype == np.float32


def test_seeded_determinism(rollout):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 2)).astype(np.float32)
    o1, s1 = rollout(ID, 3, actions)
    o2, s2 = rollout(ID, 3, actions)
    o3, s3 = rollout(ID, 4, actions)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)


def _crosses_wall_outside_door(env: TwoRoomEnv, p: np.ndarray, q: np.ndarray) -> bool:
    """Whether the straight segment p -> q passes through the (grown) wall, checked densely."""
    t = np.linspace(0, 1, 200)[:, None]
    pts = p + t * (q - p)
    return not all(env.in_free_space(x) for x in pts)


@pytest.mark.parametrize("max_step", [4.0, 30.0])
def test_never_passes_through_the_wall(max_step):
    # With max_step 30 (far thicker than the wall) a naive "move then check" would tunnel.
    env = TwoRoomEnv(max_step=max_step)
    rng = np.random.default_rng(1)
    crossings = 0
    for ep in range(10):
        env.reset(seed=ep)
        p = env.get_state()
        for _ in range(300):
            # Biased toward +-x so the agent pushes into the wall often.
            a = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1), rng.uniform(-1, 1)], np.float32)
            _, _, _, _, info = env.step(a)
            q = info["state"]
            assert env.in_free_space(q), q
            assert not _crosses_wall_outside_door(env, p, q), (p, q)
            if np.sign(p[0] - 32) != np.sign(q[0] - 32):
                crossings += 1
                y_door = abs((p[1] + q[1]) / 2 - env.door_center)
                assert y_door <= env.door_width / 2, (p, q)
            p = q
    assert crossings > 0  # the door is used, so the test is not vacuous


def test_pushing_into_the_wall_stops_at_it_and_slides():
    env = TwoRoomEnv()
    env.reset(seed=0)
    env.set_state([20.0, 20.0])  # below the door; moving right and away from the door
    for _ in range(20):
        _, _, _, _, info = env.step(np.array([1.0, -0.3], np.float32))
    x_face = env.arena_size / 2 - env.wall_thickness / 2 - env.agent_radius
    assert info["state"][0] == pytest.approx(x_face)
    assert info["state"][1] < 20.0 - 5  # slid along the wall rather than sticking


def test_walks_through_the_door():
    env = TwoRoomEnv()
    env.reset(seed=0)
    env.set_state([10.0, env.door_center])
    for _ in range(20):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["state"][0] > env.arena_size / 2 + 10


def test_step_norm_is_capped():
    env = TwoRoomEnv()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        env.set_state([16.0, 32.0])  # far from walls: the full step is taken
        a = rng.uniform(-1, 1, size=2).astype(np.float32)
        _, _, _, _, info = env.step(a)
        step = np.linalg.norm(info["state"] - [16.0, 32.0])
        expected = min(np.linalg.norm(a.astype(np.float64)) * env.max_step, env.max_step)
        assert step == pytest.approx(expected, abs=1e-9)
    env.set_state([16.0, 32.0])
    _, _, _, _, info = env.step(np.array([1.0, 1.0], np.float32))  # a box corner: capped
    assert np.linalg.norm(info["state"] - [16.0, 32.0]) == pytest.approx(env.max_step)


def test_goal_render_shows_agent_at_goal():
    env = TwoRoomEnv()
    env.reset(seed=0)
    env.set_state([10.0, 10.0])
    env.set_goal_state([50.0, 50.0])
    obs, goal_img = env.render(), env.render_goal()
    diff = np.abs(obs.astype(int) - goal_img.astype(int)).sum(-1) > 0
    rows, cols = np.nonzero(diff)
    # Differences only around the two agent positions (pixels = arena units at 64x64).
    near_start = (np.abs(rows - 10) <= 4) & (np.abs(cols - 10) <= 4)
    near_goal = (np.abs(rows - 50) <= 4) & (np.abs(cols - 50) <= 4)
    assert diff.any() and np.all(near_start | near_goal)
    assert near_goal.any() and near_start.any()
    # The goal image is exactly the observation in the goal state.
    env.set_state([50.0, 50.0])
    np.testing.assert_array_equal(env.render(), goal_img)


def test_success():
    env = TwoRoomEnv()
    g = np.array([50.0, 50.0])
    assert env.success(g, g)
    assert env.success(g + [env.success_radius * 0.9, 0], g)
    assert not env.success(g + [env.success_radius * 1.1, 0], g)
    assert not env.success(np.array([10.0, 10.0]), g)


def test_goal_samples_cover_both_rooms_and_free_space():
    env = TwoRoomEnv()
    rng = np.random.default_rng(0)
    goals = np.array([env.sample_goal_state(rng) for _ in range(300)])
    assert all(env.in_free_space(g) for g in goals)
    assert (goals[:, 0] < 30).mean() > 0.3 and (goals[:, 0] > 34).mean() > 0.3


def test_set_state_rejects_walls_and_bad_shapes():
    env = TwoRoomEnv()
    with pytest.raises(ValueError, match="inside a wall"):
        env.set_state([32.0, 5.0])
    with pytest.raises(ValueError, match="shape"):
        env.set_state([1.0, 2.0, 3.0])


@pytest.mark.parametrize("kwargs", [{"door_width": 5.0}, {"max_step": 0.0}, {"image_size": 4}, {"door_center": 2.0}])
def test_bad_kwargs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TwoRoomEnv(**kwargs)
