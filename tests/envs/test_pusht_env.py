"""PushT: gymnasium compliance, determinism, clean pixels, state round trip, scripted pushes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gym_pusht", reason='needs the [pusht] extra: pip install "forethought[pusht]"')

from gymnasium.utils.env_checker import check_env  # noqa: E402

from forethought.data.policies import make_policy  # noqa: E402
from forethought.envs import make  # noqa: E402

ID = "forethought/PushT-v0"


def test_check_env():
    check_env(make(ID, render_mode="rgb_array").unwrapped, skip_render_check=False)


def test_spaces_and_info():
    env = make(ID)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (7,) and info["state"].dtype == np.float64


def test_seeded_determinism(rollout):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 2)).astype(np.float32)
    o1, s1 = rollout(ID, 5, actions)
    o2, s2 = rollout(ID, 5, actions)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(s1, s2)


def test_relative_action_moves_agent_toward_displacement():
    env = make(ID).unwrapped
    env.reset(seed=0)
    env.set_state([100.0, 100.0, 350.0, 350.0, 0.0, 0.0, 0.0])
    for _ in range(3):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    moved = info["state"][:2] - [100.0, 100.0]
    # The PD controller lags its target (k_p=100, k_v=20, 0.1 s per step): ~20 units per step.
    assert 40 < moved[0] < 150 and abs(moved[1]) < 1e-6


def test_no_action_cross_in_pixels():
    # Same state reached with different last actions (a zero-length push vs. a large one that
    # is then undone exactly by set_state) must render identically: no action marker.
    env = make(ID).unwrapped
    env.reset(seed=0)
    state = env.get_state()
    env.step(np.array([1.0, -1.0], np.float32))
    env.set_state(state)
    a = env.render()
    env.step(np.array([-1.0, 1.0], np.float32))
    env.set_state(state)
    b = env.render()
    np.testing.assert_array_equal(a, b)
    # And the pixels are those of the state alone.
    np.testing.assert_array_equal(a, env.render_state(state))


def test_observation_has_no_goal_region():
    env = make(ID).unwrapped
    env.reset(seed=0)
    state = env.get_state()
    img1 = env.render()
    env.set_goal_state(env.sample_goal_state(np.random.default_rng(1)))
    np.testing.assert_array_equal(img1, env.render_state(state))
    assert not np.array_equal(env.render_goal(), img1)


def test_set_state_round_trip():
    env = make(ID).unwrapped
    env.reset(seed=0)
    s = np.array([200.0, 150.0, 300.0, 320.0, 1.0, 3.0, -2.0])
    env.set_state(s)
    np.testing.assert_allclose(env.get_state(), s, atol=1e-9)


def test_set_state_makes_dynamics_history_free():
    env = make(ID).unwrapped
    env.reset(seed=3)
    s0 = env.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(15, 2)).astype(np.float32)
    out = []
    for _ in range(2):
        env.set_state(s0)
        for a in actions:
            env.step(a)
        out.append(env.get_state())
    np.testing.assert_array_equal(out[0], out[1])


def test_success_is_block_pose_only():
    env = make(ID).unwrapped
    g = np.array([100.0, 100.0, 256.0, 256.0, 0.1, 0.0, 0.0])
    assert env.success(g, g)
    s = g.copy(); s[:2] = [400.0, 400.0]; s[5:] = 5.0  # agent elsewhere: still success
    assert env.success(s, g)
    s = g.copy(); s[2] += 19.0
    assert env.success(s, g)
    s = g.copy(); s[2] += 21.0
    assert not env.success(s, g)
    s = g.copy(); s[4] = 0.1 - np.pi / 9 * 0.9 + 2 * np.pi  # angle wraps
    assert env.success(s, g)
    s = g.copy(); s[4] += np.pi / 9 * 1.1
    assert not env.success(s, g)


def test_scripted_pusher_moves_the_block_often():
    env = make(ID)
    policy = make_policy("pusht", env.action_space, env_id=ID)
    moved = total = 0
    for ep in range(4):
        obs, info = env.reset(seed=ep)
        policy.reset(np.random.default_rng(ep))
        for _ in range(80):
            obs, _, _, _, nxt = env.step(policy.act(obs, info))
            d_pos = np.linalg.norm(nxt["state"][2:4] - info["state"][2:4])
            d_ang = abs(np.angle(np.exp(1j * (nxt["state"][4] - info["state"][4]))))
            moved += (d_pos > 0.5) or (d_ang > 0.01)
            total += 1
            info = nxt
    assert moved / total > 0.2, moved / total
