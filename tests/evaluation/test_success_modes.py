"""The two success protocols: judged at the end (ours) and latched over the episode
(stable-worldmodel / LeWM), recorded side by side; distances in the success test's space."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.evaluation.protocol import evaluate
from forethought.evaluation.tasks import Task


class ThereAndBack:
    """Moves +x for `out` steps, then -x: passes through a goal placed on its way and leaves it."""

    def __init__(self, out: int) -> None:
        self.out, self.t = out, 0

    def reset(self, goal_obs: np.ndarray) -> None:
        self.t = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.t += 1
        direction = 1.0 if self.t <= self.out else -1.0
        return np.tile(np.array([[direction, 0.0]], np.float32), (len(obs), 1))


def _task() -> Task:
    # TwoRoom (64 x 64 arena, 4 units per step at full action): start left of the goal, same room.
    return Task(start_state=np.array([10.0, 20.0]), goal_state=np.array([22.0, 20.0]))


def test_latched_success_counts_a_visit_final_success_does_not() -> None:
    tasks = [_task()]
    final = evaluate(ThereAndBack(out=3), "forethought/TwoRoom-v0", {}, tasks, budget=7, success="final")
    latched = evaluate(ThereAndBack(out=3), "forethought/TwoRoom-v0", {}, tasks, budget=7, success="any")
    (e_final,), (e_any,) = final.episodes, latched.episodes
    # After 3 steps +x it stands on the goal (22, 20); after 4 more -x it is 16 units away.
    assert e_final.first_success_step == e_any.first_success_step == 3
    assert (e_final.success, e_final.success_final, e_final.success_any) == (False, False, True)
    assert (e_any.success, e_any.success_final, e_any.success_any) == (True, False, True)
    assert e_final.final_distance == pytest.approx(16.0) and e_final.initial_distance == pytest.approx(12.0)
    s = latched.summary()
    assert s["success_mode"] == "any" and s["success_rate"] == 1.0 and s["success_rate_final"] == 0.0
    with pytest.raises(ValueError, match="final, any"):
        evaluate(ThereAndBack(out=3), "forethought/TwoRoom-v0", {}, tasks, budget=2, success="ever")


def test_staying_on_the_goal_succeeds_under_both() -> None:
    result = evaluate(ThereAndBack(out=3), "forethought/TwoRoom-v0", {}, [_task()], budget=3, success="final")
    (e,) = result.episodes
    assert e.success and e.success_final and e.success_any and e.first_success_step == 3


def test_pusht_distance_is_the_block_position_error() -> None:
    pytest.importorskip("gym_pusht")
    from forethought.envs import make

    env = make("forethought/PushT-v0").unwrapped
    state = np.array([100.0, 100.0, 200.0, 200.0, 0.5, 3.0, -2.0])
    goal = np.array([400.0, 400.0, 203.0, 204.0, 0.5, 0.0, 0.0])  # agent far away: not part of success
    assert env.goal_distance(state, goal) == pytest.approx(5.0) and env.success(state, goal)
    env.close()


@pytest.mark.mujoco
def test_reacher_joint_criterion_is_stable_worldmodels() -> None:
    pytest.importorskip("dm_control")
    from forethought.envs import make

    tip = make("forethought/Reacher-v0").unwrapped
    joints = make("forethought/Reacher-v0", success="joints").unwrapped
    goal = np.array([1.0, -0.5, 0.0, 0.0])
    near = goal + np.array([0.04, -0.04, 2.0, 2.0])  # both joints within 0.05 rad; velocities ignored
    wrapped = goal + np.array([2 * np.pi - 0.03, 0.0, 0.0, 0.0])  # the same angle once wrapped
    off = goal + np.array([0.0, 0.08, 0.0, 0.0])  # the wrist 0.08 rad off: fingertip still close
    assert joints.success(near, goal) and joints.success(wrapped, goal) and not joints.success(off, goal)
    assert tip.success(off, goal)  # dm_control's fingertip criterion is looser
    assert joints.goal_distance(off, goal) == pytest.approx(0.08)
    with pytest.raises(ValueError, match="fingertip, joints"):
        make("forethought/Reacher-v0", success="pose")
    tip.close(), joints.close()
