"""Changed-physics variants (forethought.envs.physics): same actions, different trajectory; defaults unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.envs import make
from forethought.envs.physics import VARIANTS, check_gains, scale_action, variant

ACTIONS = np.random.default_rng(0).uniform(-1, 1, size=(30, 2)).astype(np.float32)


def _states(env_id: str, start=None, scale: float = 1.0, **kwargs) -> np.ndarray:
    """True states `(T+1, S)` of ACTIONS from `reset(seed=1)` (and `options={"state": start}`)."""
    try:
        env = make(env_id, **kwargs)
    except ImportError as e:
        pytest.skip(f"{env_id} needs the [mujoco] extra: {e}")
    _, info = env.reset(seed=1, options={"state": start} if start is not None else None)
    states = [info["state"]]
    for a in ACTIONS * scale:
        states.append(env.step(a)[4]["state"])
    env.close()
    return np.stack(states)


def _path_length(states: np.ndarray, dims=slice(0, 2)) -> np.ndarray:
    """Distance travelled along each of the chosen state dims."""
    return np.abs(np.diff(states[:, dims], axis=0)).sum(0)


def test_tworoom_motor_gain():
    # The left room, away from the wall, actions of norm < 1 (the step cap never binds): no collisions.
    start, common = np.array([16.0, 16.0]), dict(max_step=0.5, scale=0.7)
    base = _states("forethought/TwoRoom-v0", start, **common)
    same = _states("forethought/TwoRoom-v0", start, motor_gain=[1.0, 1.0], **common)
    np.testing.assert_array_equal(base, same)  # the default is the unchanged env, bit for bit
    weak = _states("forethought/TwoRoom-v0", start, motor_gain=0.3, **common)
    np.testing.assert_allclose(_path_length(weak), 0.3 * _path_length(base), rtol=1e-6)
    dead_x = _states("forethought/TwoRoom-v0", start, motor_gain=[0.0, 1.0], **common)
    assert np.all(dead_x[:, 0] == start[0])  # x never moves
    np.testing.assert_allclose(dead_x[:, 1], base[:, 1])  # y moves as before
    reversed_x = _states("forethought/TwoRoom-v0", start, motor_gain=[-1.0, 1.0], **common)  # wired in reverse
    np.testing.assert_allclose(reversed_x[:, 0] - start[0], start[0] - base[:, 0], atol=1e-9)  # x mirrored
    np.testing.assert_allclose(reversed_x[:, 1], base[:, 1])


@pytest.mark.mujoco
def test_reacher_joint_gain():
    base = _states("forethought/Reacher-v0")
    np.testing.assert_array_equal(base, _states("forethought/Reacher-v0", joint_gain=[1.0, 1.0]))
    weak = _states("forethought/Reacher-v0", joint_gain=[1.0, 0.3])
    dead = _states("forethought/Reacher-v0", joint_gain=[1.0, 0.0])
    assert np.abs(weak - base).max() > 0.05  # same actions, another trajectory
    wrist = slice(1, 2)
    assert _path_length(dead, wrist) < 0.2 * _path_length(base, wrist)  # the wrist barely moves (only coupling)
    assert _path_length(weak, wrist) < 0.8 * _path_length(base, wrist)
    assert _path_length(dead, slice(0, 1)) > 0.3 * _path_length(base, slice(0, 1))  # the shoulder still works
    reversed_wrist = _states("forethought/Reacher-v0", joint_gain=[1.0, -1.0])  # a motor wired in reverse
    np.testing.assert_allclose(reversed_wrist, _states("forethought/Reacher-v0", joint_gain=[1.0, -1.0]))
    assert np.abs(reversed_wrist - base).max() > 0.05


@pytest.mark.mujoco
def test_pointmaze_mass_and_damping():
    base = _states("forethought/PointMaze-v0")
    np.testing.assert_array_equal(base, _states("forethought/PointMaze-v0", mass_scale=1.0, damping_scale=1.0))
    for kwargs in ({"mass_scale": 3.0}, {"damping_scale": 10.0}):
        changed = _states("forethought/PointMaze-v0", **kwargs)
        assert _path_length(changed).sum() < 0.8 * _path_length(base).sum(), kwargs  # slower under the same pushes
    # set_physics mid-run changes each quantity on its own (damping alone once did nothing)
    env = make("forethought/PointMaze-v0")
    env.unwrapped.set_physics(damping_scale=10.0)
    assert env.unwrapped.damping_scale == 10.0 and env.unwrapped.mass_scale == 1.0
    sticky = _states("forethought/PointMaze-v0", damping_scale=10.0)
    env.reset(seed=1)
    moved = np.stack([env.step(a)[4]["state"] for a in ACTIONS])
    env.close()
    np.testing.assert_allclose(moved, sticky[1:])


def test_named_variants_and_bad_values():
    env_id, kwargs = variant("tworoom-weak-motor")
    assert env_id == "forethought/TwoRoom-v0" and kwargs == {"motor_gain": [0.3, 0.3]}
    assert all(eid.startswith("forethought/") for eid, _ in VARIANTS.values())
    with pytest.raises(ValueError, match="available"):
        variant("tworoom-jetpack")
    with pytest.raises(ValueError, match="motor_gain"):
        make("forethought/TwoRoom-v0", motor_gain=[1.0, float("nan")])
    with pytest.raises(ValueError, match="2 finite numbers"):
        check_gains([1, 2, 3], 2, "joint_gain", "Reacher")
    np.testing.assert_array_equal(scale_action(np.array([0.5, -1.0], np.float32), [0.0, 0.5]), [0.0, -0.5])
    assert scale_action(np.ones(2, np.float32), 0.3).dtype == np.float32


def test_collect_records_the_variant(tmp_path):
    from forethought.data.collect import collect
    from forethought.data.store import EpisodeStore

    collect("forethought/TwoRoom-v0", tmp_path / "d", episodes=2, steps=5, env_kwargs={"motor_gain": [0.0, 1.0]},
            progress=False)
    store = EpisodeStore.open(tmp_path / "d")
    assert store.meta["env_kwargs"] == {"motor_gain": [0.0, 1.0]}
    ep = store.episode(0)
    assert np.all(ep.state[:, 0] == ep.state[0, 0])  # play data of the changed system: x never moves
