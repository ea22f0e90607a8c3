"""Perturbations change what they claim, only from the event on; clips replay identically."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.surprise.arguments import PERTURBATION_NAMES
from forethought.surprise.perturbations import PERTURBATIONS, NotApplicable, make_perturbation, paired_clips

from .conftest import ENV_ID, FRAMESKIP

FRAMES, EVENT = 10, 4


def _pair(name: str, seed: int = 0):
    env = make(ENV_ID)
    policy = make_policy("smooth", env.action_space)
    for s in range(seed, seed + 50):
        try:
            return paired_clips(env, policy, make_perturbation(name), s, FRAMES, FRAMESKIP, EVENT)
        except NotApplicable:
            continue
    raise AssertionError(f"{name} never applicable")


def test_cli_names_match_the_registry() -> None:
    assert tuple(PERTURBATIONS) == PERTURBATION_NAMES


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_identical_before_the_event_different_after(name: str) -> None:
    normal, perturbed = _pair(name)
    assert perturbed.event == EVENT - 1 and normal.event is None
    np.testing.assert_array_equal(normal.actions, perturbed.actions)  # the model is told the same actions
    np.testing.assert_array_equal(normal.obs[:EVENT], perturbed.obs[:EVENT])
    assert not np.array_equal(normal.obs[EVENT:], perturbed.obs[EVENT:])


def test_teleport_jumps_far() -> None:
    normal, perturbed = _pair("teleport")
    assert np.linalg.norm(perturbed.states[EVENT] - normal.states[EVENT]) > 10


def test_dynamics_perturbations_change_motion_not_looks() -> None:
    normal, weak = _pair("action_scale")
    step_n = np.linalg.norm(np.diff(normal.states[EVENT - 1 :], axis=0), axis=1)
    step_w = np.linalg.norm(np.diff(weak.states[EVENT - 1 :], axis=0), axis=1)
    assert step_w.sum() < 0.5 * step_n.sum()
    normal, broken = _pair("broken_actuator")
    dx = np.diff(broken.states[EVENT - 1 :, 0])
    np.testing.assert_allclose(dx, 0.0, atol=1e-9)  # the x motor is dead
    assert np.abs(np.diff(normal.states[EVENT - 1 :, 0])).sum() > 1


def test_visual_perturbations_change_looks_not_motion() -> None:
    normal, shifted = _pair("colour_shift")
    np.testing.assert_array_equal(normal.states, shifted.states)
    np.testing.assert_array_equal(shifted.obs[EVENT:], normal.obs[EVENT:][..., [1, 2, 0]])
    normal, occluded = _pair("occluder")
    diff = np.any(occluded.obs[EVENT] != normal.obs[EVENT], axis=-1)
    assert 100 <= diff.sum() <= 16 * 16 and np.all(occluded.obs[EVENT][diff] == 128)


def test_layout_changes_block_or_free_the_wall_and_reset_restores_it() -> None:
    env = make(ENV_ID)
    base = env.unwrapped
    env.reset(seed=0)
    base.set_state(np.array([20.0, 32.0]))  # left room, level with the door
    base.set_layout(door_width=0)
    for _ in range(20):
        env.step(np.array([1.0, 0.0], np.float32))
    assert base.get_state()[0] < 32  # the closed door stops it
    base.set_layout(wall=False)
    base.set_state(np.array([20.0, 10.0]))  # away from the door: only a missing wall lets it through
    for _ in range(10):
        env.step(np.array([1.0, 0.0], np.float32))
    assert base.get_state()[0] > 40
    env.reset(seed=1)
    assert (base.door_width, base.wall) == (16.0, True)
    assert base.render_state(np.array([10.0, 10.0]))[5, 32].tolist() == [170, 170, 170]  # the wall is drawn again


def test_closing_the_door_on_the_agent_is_not_applicable() -> None:
    env = make(ENV_ID)
    env.reset(seed=0)
    env.unwrapped.set_state(np.array([32.0, 32.0]))  # in the doorway
    with pytest.raises(ValueError, match="inside the new wall"):
        env.unwrapped.set_layout(door_width=0)
    assert env.unwrapped.door_width == 16.0  # unchanged
    with pytest.raises(NotApplicable):
        make_perturbation("door_closed").start(env.unwrapped, np.random.default_rng(0))
    with pytest.raises(ValueError, match="TwoRoom"):
        make_perturbation("door_closed").start(object(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown perturbation"):
        make_perturbation("earthquake")
