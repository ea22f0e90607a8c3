import numpy as np
import pytest

from forethought.envs import make
from forethought.evaluation.tasks import sample_env_tasks, sample_tasks

from .conftest import ENV_ID

HELD_OUT = [2, 5, 11, 17]


def test_tasks_are_deterministic_and_seed_dependent(tworoom_store):
    a = sample_tasks(tworoom_store, HELD_OUT, 10, goal_offset=25, seed=7)
    b = sample_tasks(tworoom_store, HELD_OUT, 10, goal_offset=25, seed=7)
    c = sample_tasks(tworoom_store, HELD_OUT, 10, goal_offset=25, seed=8)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    assert [(t.episode, t.start_row) for t in a] != [(t.episode, t.start_row) for t in c]


def test_tasks_come_from_held_out_episodes_with_goal_offset_ahead(tworoom_store):
    tasks = sample_tasks(tworoom_store, HELD_OUT, 12, goal_offset=25, seed=0)
    assert len(tasks) == 12
    # Each held-out episode is used once before any is repeated.
    assert sorted(t.episode for t in tasks[:4]) == HELD_OUT
    for t in tasks:
        assert t.episode in HELD_OUT
        ep = tworoom_store.episode(t.episode)
        assert 0 <= t.start_row and t.start_row + 25 <= ep.num_steps
        np.testing.assert_array_equal(t.start_state, ep.state[t.start_row])
        np.testing.assert_array_equal(t.goal_state, ep.state[t.start_row + 25])  # same episode, 25 steps on
    rows = {t.start_row for t in tasks}
    assert len(rows) > 3  # start rows are spread, not always 0


def test_tasks_refuse_impossible_offsets(tworoom_store):
    with pytest.raises(ValueError, match="goal_offset"):
        sample_tasks(tworoom_store, HELD_OUT, 5, goal_offset=41)  # episodes have 40 steps
    with pytest.raises(ValueError, match="episode ids"):
        sample_tasks(tworoom_store, [99], 5)
    with pytest.raises(ValueError, match="no held-out"):
        sample_tasks(tworoom_store, [], 5)
    assert sample_tasks(tworoom_store, HELD_OUT, 2, goal_offset=40)[0].start_row == 0  # the edge case fits


def test_env_sampled_tasks_are_deterministic():
    env = make(ENV_ID, image_size=16)
    a, b = sample_env_tasks(env, 5, seed=1), sample_env_tasks(env, 5, seed=1)
    assert all(np.array_equal(x.start_state, y.start_state) and np.array_equal(x.goal_state, y.goal_state)
               for x, y in zip(a, b))
    assert not np.array_equal(a[0].goal_state, a[1].goal_state)
    assert all(env.unwrapped.in_free_space(t.goal_state) and env.unwrapped.in_free_space(t.start_state) for t in a)


def test_unsolved_tasks_drops_tasks_solved_at_the_start_and_counts_them():
    from forethought.evaluation.tasks import Task, unsolved_tasks

    tasks = [Task(np.array([0.0, 0.0]), np.array([d, 0.0])) for d in (0.5, 10.0, 1.0, 20.0, 30.0)]
    near = lambda s, g: float(np.linalg.norm(s - g)) < 4.0  # noqa: E731 (the env's success test's shape)
    kept, counts = unsolved_tasks(tasks, near, 2)
    assert [t.goal_state[0] for t in kept] == [10.0, 20.0]
    assert counts == {"drawn": 4, "dropped": 2, "kept": 2}
    kept, counts = unsolved_tasks(tasks, near, 5)  # fewer qualify than asked: all looked at
    assert len(kept) == 3 and counts == {"drawn": 5, "dropped": 2, "kept": 3}
    with pytest.raises(ValueError, match="n must be >= 1"):
        unsolved_tasks(tasks, near, 0)
