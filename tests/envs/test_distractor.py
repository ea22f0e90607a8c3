"""TwoRoom's action-independent distractor (`distractor=True`): seen, never felt, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.envs import make

ENV = "forethought/TwoRoom-v0"


def _run(env, actions, seed):
    obs, info = env.reset(seed=seed)
    frames, states, blobs = [obs], [info["state"]], [env.unwrapped._blob.pos.copy()]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs)
        states.append(info["state"])
        blobs.append(env.unwrapped._blob.pos.copy())
    return np.stack(frames), np.stack(states), np.stack(blobs)


def test_the_blob_moves_on_its_own_and_changes_only_the_pixels():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (30, 2)).astype(np.float32)
    frames, states, blobs = _run(make(ENV, distractor=True), actions, seed=5)
    plain = make(ENV)
    plain_frames, plain_states = [plain.reset(seed=5)[0]], [plain.unwrapped.get_state()]
    for a in actions:
        obs, _, _, _, info = plain.step(a)
        plain_frames.append(obs)
        plain_states.append(info["state"])
    np.testing.assert_array_equal(states, np.stack(plain_states))  # the agent's motion is untouched
    differs = (frames != np.stack(plain_frames)).any(-1)  # (T, H, W): pixels the blob changed
    assert differs.any(axis=(1, 2)).mean() > 0.9 and differs.sum(axis=(1, 2)).max() < 120  # a small blob
    assert np.abs(np.diff(blobs, axis=0)).sum(-1).mean() > 0.5  # it moves
    assert blobs.min() >= 4.0 and blobs.max() <= 60.0  # inside the arena
    # cyan, not the agent's red: the blob's pixels are where the plain frame was floor or wall
    assert (frames[differs][:, 2] > frames[differs][:, 0]).mean() > 0.5


def test_the_blob_ignores_the_actions_and_is_reproducible():
    rng = np.random.default_rng(1)
    a1, a2 = (rng.uniform(-1, 1, (20, 2)).astype(np.float32) for _ in range(2))
    _, s1, b1 = _run(make(ENV, distractor=True), a1, seed=9)
    _, s2, b2 = _run(make(ENV, distractor=True), a2, seed=9)
    np.testing.assert_array_equal(b1, b2)  # the same blob path whatever the agent does
    assert not np.array_equal(s1, s2)
    _, _, b3 = _run(make(ENV, distractor=True), a1, seed=10)
    assert not np.array_equal(b1, b3)


def test_reset_options_and_goal_images_with_the_distractor():
    env = make(ENV, distractor=True)
    obs, info = env.reset(seed=2, options={"state": [10.0, 10.0], "goal_state": [50.0, 50.0]})
    np.testing.assert_array_equal(info["state"], [10.0, 10.0])
    assert np.array_equal(env.unwrapped.render_goal(), env.unwrapped.render_state(np.array([50.0, 50.0])))
    assert np.array_equal(obs, env.unwrapped.render())
    with pytest.raises(TypeError, match="distractor"):
        make(ENV, distractor="yes")
