"""Hindsight goals: where each goal frame comes from, checked on a store whose observations name their row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore
from forethought.policies.hindsight import GoalDataset, GoalSampling


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory) -> EpisodeStore:
    """6 episodes of 20..45 steps; the observation of row t of episode e is (e, t)."""
    store = EpisodeStore.create(tmp_path_factory.mktemp("labelled") / "d", meta={"env_id": "test/Labels-v0"},
                                obs_shape=(2,), obs_dtype=np.float32, action_dim=1, state_dim=None)
    for e in range(6):
        T = 20 + 5 * e
        obs = np.stack([np.full(T + 1, e), np.arange(T + 1)], axis=1).astype(np.float32)
        store.append_episode(Episode.from_steps(obs, np.zeros((T, 1), np.float32), np.zeros(T), np.zeros(T, bool),
                                                np.zeros(T, bool), seed=e))
    store.save_stats()
    return store


def _items(ds: GoalDataset, n: int = 300):
    torch.manual_seed(0)
    idx = torch.randint(len(ds), (n,)).tolist()
    return [ds[i] for i in idx]


def test_future_goals_are_later_frames_of_the_same_episode_on_the_model_step_grid(labelled_store):
    k, h = 3, 2
    ds = GoalDataset(labelled_store, history=h, frameskip=k, goals={"goal": GoalSampling(p_future=1.0)})
    lengths = labelled_store.episode_lengths
    offsets = []
    for item in _items(ds):
        episode, current = item["obs"][h - 1].tolist()  # frame h-1 is the current one
        goal_episode, goal_row = item["goal"].tolist()
        steps = int(item["goal_steps"])
        assert goal_episode == episode and steps >= 1
        assert goal_row == current + steps * k <= lengths[int(episode)]  # on the grid, inside the episode
        offsets.append(steps)
    assert max(offsets) > 5  # uniform over the rest of the episode, not only the next frame


def test_current_and_random_goals(labelled_store):
    chosen = [1, 3, 4]
    ds = GoalDataset(labelled_store, episodes=chosen, goals={
        "goal": GoalSampling(p_current=1.0, p_future=0.0), "other": GoalSampling(p_future=0.0, p_random=1.0)})
    episodes = set()
    for item in _items(ds, 200):
        assert torch.equal(item["goal"], item["obs"][0]) and int(item["goal_steps"]) == 0
        assert int(item["other_steps"]) == -1
        episodes.add(int(item["other"][0]))
    assert episodes == set(chosen)  # random goals come from the selected (training) episodes only


def test_geometric_offsets_follow_the_discount(labelled_store):
    ds = GoalDataset(labelled_store, goals={"goal": GoalSampling(p_future=1.0, discount=0.75)})
    steps = np.array([int(item["goal_steps"]) for item in _items(ds, 2000)])
    assert steps.min() >= 1 and abs(steps.mean() - 4.0) < 0.5  # Geometric(1 - 0.75): mean 4 (cut at the end)


def test_same_seed_same_goals(labelled_store):
    ds = GoalDataset(labelled_store, goals={"goal": GoalSampling(0.2, 0.5, 0.3, discount=0.9)})
    a, b = _items(ds, 50), _items(ds, 50)
    assert all(torch.equal(x["goal"], y["goal"]) for x, y in zip(a, b))


def test_bad_sampling_is_refused(labelled_store):
    with pytest.raises(ValueError, match="sum to 1"):
        GoalSampling(p_current=0.5, p_future=0.2)
    with pytest.raises(ValueError, match="discount"):
        GoalSampling(discount=1.0)
    with pytest.raises(ValueError, match="clashes"):
        GoalDataset(labelled_store, goals={"action": GoalSampling()})
