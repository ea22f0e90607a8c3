"""The scripted PushT expert: geometry as gym-pusht's, routes clear of the T, pushes toward the target pose."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from forethought.data.collect import collect
from forethought.data.policies import make_policy
from forethought.data.pusht_expert import PushTExpertPolicy
from forethought.data.pusht_geometry import (
    AGENT_RADIUS,
    COM_LOCAL,
    GYRATION2,
    TEE_RECTS,
    TeeRoutes,
    contact_candidates,
    contact_loop,
    dist_to_tee,
    rot,
    wrap,
)

BOX = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
ENV_ID = "forethought/PushT-v0"


@pytest.fixture(scope="module")
def env():
    pytest.importorskip("gym_pusht")
    from forethought.envs import make

    e = make(ENV_ID)
    yield e
    e.close()


def _pose_error(state: np.ndarray, target: np.ndarray) -> float:
    """Block position error plus angle error at 60 units per radian (as the expert weighs them)."""
    return float(np.hypot(*(state[2:4] - target[:2])) + 60.0 * abs(wrap(state[4] - target[2])))


def test_geometry_matches_gym_pusht(env):
    """The hard-coded T is the env's: its two rectangles, centre of gravity, moment per mass, agent radius."""
    sim = env.unwrapped._sim
    sim._setup()
    rects = sorted([v.min(0).tolist() + v.max(0).tolist() for v in env.unwrapped._tee_local], key=lambda r: r[1])
    np.testing.assert_allclose(rects, TEE_RECTS)
    block = sim.block
    np.testing.assert_allclose(tuple(block.center_of_gravity), COM_LOCAL)
    assert block.moment / block.mass == pytest.approx(GYRATION2)
    assert [s.radius for s in sim.agent.shapes] == [AGENT_RADIUS]
    assert all(s.friction == 0 for s in (*block.shapes, *sim.agent.shapes))  # the frictionless push model


def test_contact_loop_touches_the_tee_everywhere():
    pts, u, normals, length = contact_loop()
    np.testing.assert_allclose(dist_to_tee(pts), AGENT_RADIUS, atol=1e-9)
    assert np.all(np.diff(u) > 0) and length > u[-1]
    # The T's perimeter (480), plus a quarter circle at each of its 6 convex corners, less 2 x 15 at each inner one.
    assert length == pytest.approx(480 + 6 * np.pi / 2 * AGENT_RADIUS - 2 * 2 * AGENT_RADIUS, rel=1e-3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)


def test_routes_around_the_tee_never_touch_it():
    """Following the waypoints from all around (steps of 20 units) reaches each pre-contact point clear of the T."""
    c = contact_candidates()
    routes = TeeRoutes(c["agent"], c["pre"])
    starts = COM_LOCAL + 160.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    for k in range(0, len(c["pre"]), 3):
        for a in starts:
            for _ in range(40):
                w, how = routes.around_waypoint(a, k)
                assert how == "go"
                step = np.minimum(1.0, 20.0 / max(float(np.linalg.norm(w - a)), 1e-9)) * (w - a)
                closest = min(dist_to_tee(a + f * step) for f in np.linspace(0, 1, 5))
                assert closest > AGENT_RADIUS, (k, a, w)
                a = a + step
                if np.linalg.norm(a - c["pre"][k]) < 1.0:
                    break
            else:
                pytest.fail(f"no route to contact {k} at {c['point'][k]}")


def test_pushes_the_block_to_the_target_pose(env):
    start = np.array([100.0, 100.0, 300.0, 250.0, 0.3, 0.0, 0.0])
    target = np.array([200.0, 330.0, 2.5])
    _, info = env.reset(seed=0, options={"state": start})
    policy = PushTExpertPolicy(env.action_space, noise=0.1)
    policy.reset(np.random.default_rng(0))
    policy.set_target(target)
    first = _pose_error(info["state"], target)
    errors = []
    for _ in range(120):
        _, _, _, _, info = env.step(policy.act(None, info))
        errors.append(_pose_error(info["state"], target))
        if policy.reached(info["state"]):
            break
    assert first > 200 and min(errors) < 0.15 * first, (first, min(errors))
    assert policy.reached(info["state"])  # within 15 units and pi / 12


def test_deterministic_given_rng_and_actions_in_the_box(env):
    def run(seed: int, noise: float) -> np.ndarray:
        _, info = env.reset(seed=3)
        policy = make_policy("pusht-expert", env.action_space, env_id=ENV_ID, noise=noise)
        policy.reset(np.random.default_rng(seed))
        acts = []
        for _ in range(60):
            acts.append(policy.act(None, info))
            _, _, _, _, info = env.step(acts[-1])
        return np.stack(acts)

    a, b, c = run(0, 0.3), run(0, 0.3), run(1, 0.3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (60, 2)
    assert np.all(a >= -1.0) and np.all(a <= 1.0)
    assert np.abs(a).max() == 1.0  # it travels at full speed at times


def test_speed_caps_the_action_and_still_pushes_toward_the_target(env):
    start = np.array([100.0, 100.0, 300.0, 250.0, 0.3, 0.0, 0.0])
    target = np.array([250.0, 300.0, 0.8])

    def run(speed: float) -> tuple[np.ndarray, float, float]:
        _, info = env.reset(seed=0, options={"state": start})
        policy = PushTExpertPolicy(env.action_space, noise=0.0, speed=speed)
        policy.reset(np.random.default_rng(0))
        policy.set_target(target)
        first, acts, best = _pose_error(info["state"], target), [], np.inf
        for _ in range(150):  # once there, the policy draws a new target: keep the closest approach
            acts.append(policy.act(None, info))
            _, _, _, _, info = env.step(acts[-1])
            best = min(best, _pose_error(info["state"], target))
        return np.stack(acts), first, best

    fast, first, fast_end = run(1.0)
    slow, first, slow_end = run(0.3)
    assert np.abs(fast).max() == pytest.approx(1.0) and np.abs(slow).max() == pytest.approx(0.3, abs=1e-6)
    assert slow_end < 0.3 * first and fast_end < 0.3 * first, (first, slow_end, fast_end)
    with pytest.raises(ValueError, match="speed"):
        PushTExpertPolicy(BOX, speed=0.0)
    with pytest.raises(ValueError, match="speed"):
        PushTExpertPolicy(BOX, speed=1.5)


def test_collect_moves_the_block_more_than_the_old_pusher(tmp_path, env):
    kw = {"episodes": 3, "steps": 60, "progress": False}
    expert = collect(ENV_ID, tmp_path / "expert", policy="pusht-expert", policy_kwargs={"noise": 0.1}, **kw)
    old = collect(ENV_ID, tmp_path / "old", policy="pusht", **kw)
    assert expert["episodes"] == 3 and expert["env_steps"] == 180
    assert expert["block_moving_fraction"] > max(0.6, old["block_moving_fraction"] + 0.15), (expert, old)


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="PushT"):
        make_policy("pusht-expert", BOX, env_id="forethought/TwoRoom-v0")
    with pytest.raises(ValueError, match="Box"):
        PushTExpertPolicy(spaces.Box(-1.0, 1.0, shape=(3,)))
    with pytest.raises(ValueError, match="noise >= 0"):
        PushTExpertPolicy(BOX, noise=-0.1)
    policy = PushTExpertPolicy(BOX)
    with pytest.raises(RuntimeError, match="reset"):
        policy.act(None, {"state": np.zeros(7)})
    policy.reset(np.random.default_rng(0))
    with pytest.raises(ValueError, match="info\\['state'\\]"):
        policy.act(None, {"state": np.zeros(2)})


def test_world_and_block_frames_agree():
    """`rot` maps the block frame to the world the way the env draws the T."""
    r = rot(np.pi / 2)
    np.testing.assert_allclose(r @ np.array([1.0, 0.0]), [0.0, 1.0], atol=1e-12)
    assert wrap(3 * np.pi / 2) == pytest.approx(-np.pi / 2)
