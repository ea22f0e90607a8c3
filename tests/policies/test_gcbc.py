"""GCBC reaches goals: trained from a reward-free dataset with hindsight goals, judged by the evaluation protocol.

The toy (tests/policies/toy_envs.py, a point in the unit square) has a known optimal policy: head
straight for the goal. The data are smooth random walks that never aim at anything; relabeling each
step with a later frame of its walk as the goal is all GCBC needs to learn to head for goals it is
shown, from start/goal pairs of held-out episodes, under the same protocol as MPC (full budget,
success judged once from the true state).
"""

from __future__ import annotations

import pytest
import torch

from forethought.agent.policy_agent import PolicyAgent
from forethought.data.store import EpisodeStore
from forethought.envs import make
from forethought.evaluation.protocol import RandomAgent, evaluate
from forethought.evaluation.tasks import sample_tasks
from forethought.policies.config import PolicyTrainConfig
from forethought.policies.gcbc import GCBCObjective
from forethought.policies.goal_policy import GoalPolicy
from forethought.policies.train_policy import train_policy
from forethought.training.run_folder import read_run_info

from .toy_envs import POINT_ID


def test_gcbc_reaches_held_out_goals_where_a_random_policy_does_not(point_data, tmp_path):
    run = tmp_path / "gcbc"
    path = train_policy(PolicyTrainConfig(method="gcbc", data=str(point_data), out=str(run), preset="tiny", steps=300,
                                          batch_size=64, lr=3e-3, frameskip=1, ckpt_every=0, progress=False,
                                          tensorboard=False))
    store = EpisodeStore.open(point_data)
    held_out = read_run_info(run)["val_episodes"]
    tasks = sample_tasks(store, held_out, 20, goal_offset=20, seed=0)
    env = make(POINT_ID)
    policy = evaluate(PolicyAgent(GoalPolicy.from_pretrained(path), action_space=env.action_space), POINT_ID, {},
                      tasks, budget=30, batch=20, name="gcbc")
    random = evaluate(RandomAgent.for_space(env.action_space), POINT_ID, {}, tasks, budget=30, batch=20)
    assert policy.success_rate >= 0.8, [e.final_distance for e in policy.episodes]
    assert random.success_rate <= 0.2
    assert len(policy.decision_times) == 30  # one forward pass per model step (frameskip 1), for all 20 episodes


def test_gcbc_loss_is_the_mse_to_the_data_action_in_normalized_units(point_data):
    from forethought.models.encoders import EncoderConfig
    from forethought.policies.goal_policy import GoalPolicyConfig

    store = EpisodeStore.open(point_data)
    policy = GoalPolicy(GoalPolicyConfig(obs_shape=(2,), action_dim=2, frameskip=1, latent_dim=8,
                                         encoder=EncoderConfig(kind="mlp", width=8, depth=1, projector_hidden=8)))
    with torch.no_grad():
        policy.head[-1].weight.zero_()
        policy.head[-1].bias.zero_()  # predicts 0, the mean action: the loss is the data's normalized variance
    batch = {"obs": torch.rand(4, 2, 2), "goal": torch.rand(4, 2), "action": torch.tensor([[[1.0, -1.0]]] * 4)}
    loss = GCBCObjective(policy, store.stats)(batch)["loss"]
    expected = store.stats.normalize_action(batch["action"][:, -1]).pow(2).mean()
    assert torch.allclose(loss, expected)


@pytest.mark.slow
def test_gcbc_on_tworoom_pixels_beats_random_by_far(tmp_path):
    """TwoRoom at 32x32 pixels, 100 smooth walks, frameskip 5, 400 steps (about 30 s): the protocol's tasks
    (goal 25 env steps ahead, budget 50). Measured 63% against 3% for random."""
    from forethought.data.collect import collect

    env_id, kwargs = "forethought/TwoRoom-v0", {"image_size": 32}
    collect(env_id, tmp_path / "data", episodes=100, steps=60, policy="smooth", seed=0, progress=False, env_kwargs=kwargs)
    path = train_policy(PolicyTrainConfig(method="gcbc", data=str(tmp_path / "data"), out=str(tmp_path / "run"),
                                          preset="tiny", steps=400, batch_size=64, lr=2e-3, frameskip=5, ckpt_every=0,
                                          progress=False, tensorboard=False))
    tasks = sample_tasks(EpisodeStore.open(tmp_path / "data"), read_run_info(tmp_path / "run")["val_episodes"], 30,
                         goal_offset=25, seed=0)
    env = make(env_id, **kwargs)
    policy = evaluate(PolicyAgent(GoalPolicy.from_pretrained(path), action_space=env.action_space), env_id, kwargs,
                      tasks, budget=50, batch=30)
    random = evaluate(RandomAgent.for_space(env.action_space), env_id, kwargs, tasks, budget=50, batch=30)
    assert policy.success_rate >= random.success_rate + 0.3, (policy.success_rate, random.success_rate)


def test_goal_discount_draws_near_goals_and_is_gcbc_only(point_data):
    """--goal-discount d: hindsight goals m model steps ahead with P(m) ~ d^(m-1); uniform without it."""
    from forethought.policies.gcbc import gcbc_goals
    from forethought.policies.hindsight import GoalDataset

    store = EpisodeStore.open(point_data)
    torch.manual_seed(0)
    steps = {}
    for d in (None, 0.5):
        ds = GoalDataset(store, history=1, frameskip=1, goals=gcbc_goals(d))
        steps[d] = torch.tensor([float(ds[i % len(ds)]["goal_steps"]) for i in range(0, 4000, 7)])
    assert 1.6 < steps[0.5].mean() < 2.4  # geometric, mean 1 / (1 - 0.5) = 2 (truncated at episode ends)
    assert steps[None].mean() > 2 * steps[0.5].mean()  # uniform over the rest of the episode
    with pytest.raises(ValueError, match="goal-discount"):
        PolicyTrainConfig(method="gciql", out="x", data="y", goal_discount=0.5)
    with pytest.raises(ValueError, match="goal-discount"):
        PolicyTrainConfig(method="gcbc", out="x", data="y", goal_discount=1.0)
