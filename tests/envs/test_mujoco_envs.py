"""PointMaze and Reacher (the [mujoco] extra): compliance, determinism, goal API, render cost."""

from __future__ import annotations

import time

import numpy as np
import pytest

from forethought.envs import make

pytestmark = pytest.mark.mujoco


def _make(env_id: str, **kwargs):
    try:
        return make(env_id, **kwargs)
    except ImportError as e:
        pytest.skip(f'{env_id} needs the [mujoco] extra (pip install "forethought[mujoco]"): {e}')
    except Exception as e:  # no usable OpenGL (EGL) on this machine
        if "GL" in type(e).__name__ or "GL" in str(e) or "context" in str(e).lower():
            pytest.skip(f"{env_id}: no headless OpenGL here (MUJOCO_GL=egl): {e}")
        raise


IDS = ["forethought/PointMaze-v0", "forethought/Reacher-v0"]


@pytest.fixture(scope="module", params=IDS)
def env(request):
    e = _make(request.param)
    yield e
    e.close()


def test_check_env():
    from gymnasium.utils.env_checker import check_env

    for env_id in IDS:
        e = _make(env_id, render_mode="rgb_array")
        check_env(e.unwrapped, skip_render_check=False)
        e.close()


def test_obs_and_state(env):
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (4,) and info["state"].dtype == np.float64
    assert obs.std() > 5  # a real picture, not a blank frame


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_determinism(env_id):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 2)).astype(np.float32)
    runs = []
    for _ in range(2):
        e = _make(env_id)
        obs, info = e.reset(seed=7)
        frames, states = [obs], [info["state"]]
        for a in actions:
            obs, _, _, _, info = e.step(a)
            frames.append(obs)
            states.append(info["state"])
        e.close()
        runs.append((np.stack(frames), np.stack(states)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert np.abs(np.diff(runs[0][1][:, :2], axis=0)).sum() > 0.05  # actions move the agent


def test_goal_api(env):
    u = env.unwrapped
    env.reset(seed=1)
    goal = u.sample_goal_state(np.random.default_rng(0))
    u.set_goal_state(goal)
    np.testing.assert_array_equal(u.goal_state, goal)
    assert u.success(goal, goal)
    goal_img = u.render_goal()
    state = u.get_state()
    # The goal image is the observation in the goal state, and rendering it left the episode alone.
    np.testing.assert_array_equal(u.get_state(), state)
    u.set_state(goal)
    np.testing.assert_array_equal(u.render(), goal_img)
    far = None
    rng = np.random.default_rng(1)
    for _ in range(100):
        cand = u.sample_goal_state(rng)
        if not u.success(cand, goal):
            far = cand
            break
    assert far is not None
    u.set_state(far)
    assert not np.array_equal(u.render(), goal_img)


def test_point_maze_success_threshold():
    e = _make("forethought/PointMaze-v0").unwrapped
    g = np.array([1.0, 1.0, 0.0, 0.0])
    assert e.success(g + [0.44, 0, 0, 0], g) and not e.success(g + [0.46, 0, 0, 0], g)
    e.close()
    dino = _make("forethought/PointMaze-v0", success_distance=0.5).unwrapped  # DINO-WM's criterion
    assert dino.success(g + [0.49, 0, 0, 0], g) and not dino.success(g + [0.51, 0, 0, 0], g)
    dino.close()
    with pytest.raises(ValueError, match="success_distance"):
        _make("forethought/PointMaze-v0", success_distance=-1)


def test_reacher_success_is_fingertip_distance():
    e = _make("forethought/Reacher-v0").unwrapped
    g = np.array([0.3, 0.5, 0.0, 0.0])
    tip = e.fingertip(g)
    s = g.copy(); s[0] += 0.1  # shoulder turned 0.1 rad: tip moves about 0.1 * 0.24 m = 0.024 m
    assert np.linalg.norm(e.fingertip(s) - tip) < e.success_distance and e.success(s, g)
    s = g.copy(); s[0] += 0.6  # about 0.14 m away
    assert not e.success(s, g)
    e.close()


def test_render_is_cheap(env):
    """Shadows, reflections and multisampling off: a 64x64 frame far under the 25-80 ms default."""
    env.reset(seed=0)
    u = env.unwrapped
    s = u.get_state()
    u.render_state(s)
    t = time.perf_counter()
    for _ in range(20):
        u.render_state(s)
    assert (time.perf_counter() - t) / 20 < 0.02
