"""MultiRoom: the layouts, walls that hold, the door-count helper on known positions, far goals."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.envs import make
from forethought.envs.multi_room import MultiRoomEnv
from forethought.envs.rooms import PRESETS
from forethought.envs.two_room import TwoRoomEnv

ID = "forethought/MultiRoom-v0"


def test_default_is_three_rooms_in_a_row_with_an_s_shaped_path():
    env = MultiRoomEnv()
    assert (env.rooms.rows, env.rooms.cols) == (1, 3)
    doors = {(d.a, d.b): d.center for d in env.rooms.doors}
    assert doors[(0, 1)] > 40 and doors[(1, 2)] < 24  # one door low, the other high: an S
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    wall = (obs == 170).all(-1)
    assert wall[:, 21].sum() > 40 and wall[:, 42].sum() > 40  # two walls
    assert not wall[51, 21] and wall[12, 21] and not wall[12, 42] and wall[51, 42]  # and their doors


@pytest.mark.parametrize("start, goal, rooms", [
    ((10, 10), (15, 55), [0]),
    ((10, 10), (30, 30), [0, 1]),
    ((10, 10), (55, 55), [0, 1, 2]),
    ((55, 10), (10, 55), [2, 1, 0]),
    ((32, 32), (55, 55), [1, 2]),
    ((32, 32), (8, 8), [1, 0]),
])
def test_room_path_and_doors_crossed_on_known_positions(start, goal, rooms):
    env = MultiRoomEnv()
    path, length = env.room_path(np.array(start, float), np.array(goal, float))
    assert path == rooms
    assert env.doors_crossed(np.array(start, float), np.array(goal, float)) == len(rooms) - 1
    assert length >= np.hypot(*np.subtract(goal, start)) - 1e-9


def test_path_between_outer_rooms_goes_round_both_doors():
    # (10, 10) -> (55, 10): 45 units apart, but the path dips to the low door and climbs back to the
    # high one: about 38 + 36 + 15 = 89 units through the door ends.
    env = MultiRoomEnv()
    rooms, length = env.room_path(np.array([10.0, 10.0]), np.array([55.0, 10.0]))
    assert rooms == [0, 1, 2] and 80 < length < 100


def test_four_rooms_u_needs_three_doors_between_neighbours_without_a_door():
    env = MultiRoomEnv(layout="four_rooms")  # 0 | 1 over 2 | 3; doors 0-1, 1-3, 3-2
    assert env.room_path(np.array([16.0, 16.0]), np.array([16.0, 48.0]))[0] == [0, 1, 3, 2]
    assert env.doors_crossed(np.array([48.0, 16.0]), np.array([48.0, 48.0])) == 1
    nine = MultiRoomEnv(layout="nine_rooms")
    assert nine.doors_crossed(np.array([10.0, 10.0]), np.array([54.0, 54.0])) == 8


def test_two_room_is_the_one_by_two_layout():
    two, multi = TwoRoomEnv(), MultiRoomEnv(layout={"grid": [1, 2], "doors": [[0, 1, 0.5]]})
    np.testing.assert_array_equal(two._boxes, multi._boxes)
    for p in ([10.0, 10.0], [50.0, 30.0]):
        np.testing.assert_array_equal(two.render_state(np.array(p)), multi.render_state(np.array(p)))
    assert two.doors_crossed(np.array([10.0, 10.0]), np.array([50.0, 50.0])) == 1
    two.set_layout(door_width=0)  # closed: no path
    assert two.doors_crossed(np.array([10.0, 10.0]), np.array([50.0, 50.0])) == -1


def test_never_passes_through_a_wall_and_uses_both_doors():
    env = MultiRoomEnv(max_step=30.0)  # far thicker than a wall: a naive "move then check" would tunnel
    rng = np.random.default_rng(1)
    visited = set()
    for ep in range(15):
        env.reset(seed=ep)
        p = env.get_state()
        heading = rng.uniform(-1, 1, 2)
        for _ in range(200):
            heading = np.clip(heading + rng.normal(0, 0.4, 2), -1, 1)
            _, _, _, _, info = env.step(heading.astype(np.float32))
            q = info["state"]
            assert env.in_free_space(q), q
            pts = p + np.linspace(0, 1, 100)[:, None] * (q - p)
            assert all(env.in_free_space(x) for x in pts), (p, q)  # the straight move stays in free space
            visited.add(env.room_of(q))
            p = q
    assert visited == {0, 1, 2}


def test_goal_min_doors_draws_far_goals_only():
    env = make(ID, goal_min_doors=2).unwrapped
    rng = np.random.default_rng(0)
    for seed in range(20):
        env.reset(seed=seed)
        assert env.room_of(env.get_state()) in (0, 2)  # the middle room has no goal two doors away
        assert env.doors_crossed(env.get_state(), env.goal_state) == 2
        assert env.doors_crossed(env.get_state(), env.sample_goal_state(rng)) == 2
    env.set_state([32.0, 32.0])
    with pytest.raises(ValueError, match="no goal is 2 doors"):
        env.sample_goal_state(rng)


def test_uniform_goals_cover_every_room():
    env = MultiRoomEnv()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    rooms = [env.room_of(env.sample_goal_state(rng)) for _ in range(300)]
    assert all(rooms.count(r) > 50 for r in range(3))


@pytest.mark.parametrize("kwargs, match", [
    ({"layout": "five_rooms"}, "unknown layout"),
    ({"layout": {"grid": [1, 3], "doors": [[0, 1, 0.5]]}}, "cannot be reached"),
    ({"layout": {"grid": [1, 3], "doors": [[0, 2, 0.5], [1, 2, 0.5]]}}, "not neighbours"),
    ({"layout": {"grid": [1, 3], "doors": [[0, 1, 1.5], [1, 2, 0.5]]}}, r"in \[0, 1\]"),
    ({"door_width": 5.0}, "diameter"),
    ({"goal_min_doors": 3}, "more than 2 doors"),
    ({"arena_size": 20.0, "door_width": 7.0, "layout": {"grid": [1, 2], "doors": [[0, 1, 0.5]]}}, "too small"),
])
def test_bad_kwargs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiRoomEnv(**kwargs)


def test_presets_build_and_are_connected():
    for name in PRESETS:
        env = MultiRoomEnv(layout=name)
        assert (env.rooms.door_distances() >= 0).all()
        env.reset(seed=0)
