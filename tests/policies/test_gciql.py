"""GCIQL and GCIVL on an analytic toy: a 1-D chain whose optimal goal-conditioned values are known.

On the chain (tests/policies/toy_envs.py) the fewest steps from cell ``s`` to cell ``g`` are
``|s - g|`` and the optimal value ``V*(s, g) = -(1 - gamma^|s-g|) / (1 - gamma)`` falls with that
distance, so a correct implementation, trained only on uniform random walks with hindsight goals,
must (1) order states by their distance to the goal and (2) extract a policy that steps toward it
(the data's actions are random: behaviour cloning alone would learn no direction worth moving).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from forethought.data.store import EpisodeStore
from forethought.models.encoders import EncoderConfig
from forethought.policies.gciql import GCIQLConfig, GCIQLObjective, expectile_loss, value_goals
from forethought.policies.goal_policy import GoalPolicy, GoalPolicyConfig
from forethought.policies.hindsight import GoalDataset

from .toy_envs import make_chain_store

N = 8  # chain cells


@pytest.fixture(scope="module")
def chain_store(tmp_path_factory) -> EpisodeStore:
    return EpisodeStore.open(make_chain_store(tmp_path_factory.mktemp("chain") / "data", n=N))


def _train(store: EpisodeStore, value_only: bool, steps: int = 300, seed: int = 0) -> GCIQLObjective:
    torch.manual_seed(seed)
    cfg = GCIQLConfig(discount=0.9, target_tau=0.1, value_only=value_only, hidden=32)
    data = GoalDataset(store, goals=value_goals(cfg), in_memory=True)
    policy = GoalPolicy(GoalPolicyConfig(obs_shape=(N,), action_dim=1, frameskip=1, method="gcivl" if value_only else "gciql",
                                         latent_dim=16, encoder=EncoderConfig(kind="mlp", width=32, depth=1, projector_hidden=32),
                                         hidden=32), store.stats.to_dict())
    objective = GCIQLObjective(policy, store.stats, cfg)
    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=3e-3, foreach=True)
    loader = DataLoader(data, batch_size=64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed))
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    for step, batch in zip(range(steps), batches):
        loss = objective(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        objective.after_step(step)
    return objective.eval()


@pytest.mark.parametrize("method", ["gciql", "gcivl"])
def test_values_order_states_by_distance_to_goal_and_the_policy_steps_toward_it(chain_store, method):
    objective = _train(chain_store, value_only=method == "gcivl")
    with torch.no_grad():
        z = objective.policy.encode(torch.eye(N)[:, None])[:, 0]  # (N, D): every cell
        s, g = (x.flatten() for x in torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij"))
        values = objective.values(z[s], z[g]).view(N, N).numpy()  # values[s, g]
        action = objective.normalizer.denormalize_action(objective.policy(z[s], z[g])).view(N, N).numpy()
    distance = np.abs(np.arange(N)[:, None] - np.arange(N)[None, :])
    by_distance = [values[distance == d].mean() for d in range(N)]
    assert all(a > b for a, b in zip(by_distance[:5], by_distance[1:5])), by_distance  # strictly falling nearby
    pairs = [(values[s1, goal] > values[s2, goal]) for goal in range(N) for s1 in range(N) for s2 in range(N)
             if abs(s1 - goal) < abs(s2 - goal)]
    assert np.mean(pairs) >= 0.9, f"values order only {np.mean(pairs):.0%} of state pairs by distance"
    if method == "gcivl":  # its fixed point is V*: near the goal, where the data covers it densely, it is close
        optimal = [-(1 - 0.9**d) / (1 - 0.9) for d in range(5)]
        assert np.abs(np.array(by_distance[:5]) - optimal).max() < 0.75, (by_distance, optimal)
    off = distance > 0
    toward = np.sign(action[off]) == np.sign((np.arange(N)[None, :] - np.arange(N)[:, None])[off])
    assert toward.mean() >= 0.9 and (np.abs(action[off]) > 1 / 3).mean() >= 0.7  # it moves, the right way


def test_expectile_loss_is_asymmetric():
    diff = torch.tensor([1.0, -1.0])
    assert expectile_loss(diff, diff, 0.9).tolist() == pytest.approx([0.9, 0.1])
    assert expectile_loss(diff, diff, 0.5).tolist() == pytest.approx([0.5, 0.5])  # 0.5: the mean's (halved) L2


def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="--discount"):
        GCIQLConfig(discount=1.0)
    with pytest.raises(ValueError, match="--expectile"):
        GCIQLConfig(expectile=0.3)
    with pytest.raises(ValueError, match="sum to 1"):
        GCIQLConfig(p_current=0.5, p_future=0.5, p_random=0.5)
