"""The imagination policy: trained only through a frozen world model, it lowers the imagined cost; as a
warm start it hands the planner its imagined plan, and it refuses a model whose latents it does not share."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from forethought.agent import MPCAgent
from forethought.data.store import EpisodeStore
from forethought.envs import make
from forethought.models import WorldModel, WorldModelConfig
from forethought.planning import PlanResult
from forethought.policies.goal_policy import GoalPolicy, GoalPolicyConfig
from forethought.policies.hindsight import GoalDataset
from forethought.policies.imagination import (ImaginationConfig, ImaginationObjective, ImaginationWarmStart,
                                              policy_rollout)

H = 4  # imagined steps


def _world_model(store: EpisodeStore, seed: int = 0) -> WorldModel:
    """A tiny state world model whose predictor has random weights, so that actions move the latents."""
    torch.manual_seed(seed)
    model = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(2,), action_dim=2, frameskip=1, history=2),
                       store.stats.to_dict())
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.normal_(0, 0.1)
    return model.eval()


def _policy(model: WorldModel) -> GoalPolicy:
    cfg = model.config
    policy = GoalPolicy(GoalPolicyConfig(obs_shape=cfg.obs_shape, action_dim=cfg.action_dim, frameskip=1,
                                         method="imagination", latent_dim=cfg.latent_dim, encoder=cfg.encoder,
                                         hidden=64, latent_space="world_model"), model.normalization)
    policy.encoder.load_state_dict(model.encoder.state_dict())
    return policy


@pytest.fixture(scope="module")
def trained_model(point_data, tmp_path_factory) -> WorldModel:
    """The tiny preset (history 2) trained 60 steps on the point toy: a few seconds."""
    from forethought.training.api import train

    out = tmp_path_factory.mktemp("imagination") / "run"
    train(point_data, out, preset="tiny", steps=60, warmup_steps=5, history=2, batch_size=32, ckpt_every=0,
          eval_every=0, progress=False, tensorboard=False)
    return WorldModel.from_pretrained(out / "model")


def _fit(objective: ImaginationObjective, data: GoalDataset, steps: int) -> None:
    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=3e-3, foreach=True)
    torch.manual_seed(0)
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    objective.train()
    for batch in itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), steps):
        loss = objective(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_training_through_a_frozen_model_lowers_the_imagined_cost(point_data):
    """Fast: a tiny model with random predictor weights (actions move its latents); gradients reach the
    policy through the frozen predictor, and nothing of the model moves."""
    store = EpisodeStore.open(point_data)
    model = _world_model(store)
    frozen = copy.deepcopy(model.state_dict())
    cfg = ImaginationConfig(horizon=H, bc_weight=0.0)
    objective = ImaginationObjective(_policy(model), model.predictor, store.stats, cfg)
    data = GoalDataset(store, history=model.history, goals=cfg.goals(), in_memory=True)
    held = next(iter(DataLoader(data, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(1))))
    objective.eval()
    with torch.no_grad():
        before = float(objective(held)["imagined_cost"])
    _fit(objective, data, 60)
    objective.eval()
    with torch.no_grad():
        after = float(objective(held)["imagined_cost"])
    assert after < 0.92 * before, (before, after)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())  # the world model never moved
    assert not model.training and not objective.policy.encoder.training  # frozen parts stay in eval mode


@pytest.mark.slow
def test_training_through_the_frozen_model_lowers_the_imagined_cost_to_cems(point_data, trained_model):
    """The known answer: what CEM finds by searching action sequences in imagination, per task, at every
    decision, the policy reaches in one forward pass per step after training through the same model."""
    from forethought.planning import LatentGoalObjective, make_planner
    from forethought.policies.imagination import action_box

    store, model = EpisodeStore.open(point_data), trained_model
    frozen = copy.deepcopy(model.state_dict())
    cfg = ImaginationConfig(horizon=H, bc_weight=0.0)
    objective = ImaginationObjective(_policy(model), model.predictor, store.stats, cfg)
    data = GoalDataset(store, history=model.history, goals=cfg.goals(), in_memory=True)
    held = next(iter(DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(1))))

    def imagined_cost() -> float:
        objective.eval()
        with torch.no_grad():
            return float(objective(held)["imagined_cost"])

    with torch.no_grad():  # CEM on the same tasks and the same cost (l2, summed over the horizon)
        z = model.encode(torch.cat([held["obs"][:, :2], held["goal"][:, None]], 1))
        past = store.stats.normalize_action(held["action"][:, :1])
        cem = make_planner("cem", samples=100, iterations=10, seed=0).plan(
            LatentGoalObjective(model)(z[:, :2], past, z[:, 2]), torch.zeros(len(z), H, 2), *action_box(store.stats, 1))
    before, planned = imagined_cost(), float(cem.cost.mean())
    _fit(objective, data, 100)
    after = imagined_cost()
    assert planned < 0.9 * before  # the model's actions matter: there is something to learn
    assert after < 0.9 * before and after < 1.05 * planned, (before, planned, after)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())  # the world model never moved
    assert not model.training and not objective.policy.encoder.training  # frozen parts stay in eval mode


def test_the_support_term_keeps_actions_in_the_data_range(point_data):
    store = EpisodeStore.open(point_data)
    model = _world_model(store)
    objective = ImaginationObjective(_policy(model), model.predictor, store.stats, ImaginationConfig(horizon=2))
    data = GoalDataset(store, history=model.history, goals=ImaginationConfig().goals(), in_memory=True)
    batch = next(iter(DataLoader(data, batch_size=8)))
    with torch.no_grad():
        objective.policy.head[-1].bias.fill_(100.0)  # far outside anything the data did
    out = objective(batch)
    assert float(out["support"]) > 1000 and torch.isfinite(out["loss"])


class RecordingPlanner:
    """A real Planner that returns its init unchanged and records it."""

    def __init__(self) -> None:
        self.inits: list[torch.Tensor] = []

    def plan(self, objective, init, low, high) -> PlanResult:
        self.inits.append(init.clone())
        cost = objective(init[:, None])[:, 0]
        return PlanResult(init.clamp(low, high), cost, cost[None], 1)


def test_the_warm_start_is_the_policys_imagined_plan_and_needs_the_same_latents(point_data):
    store = EpisodeStore.open(point_data)
    model = _world_model(store)
    policy = _policy(model).eval()
    planner = RecordingPlanner()
    from .toy_envs import POINT_ID

    agent = MPCAgent(model, planner, action_space=make(POINT_ID).action_space, horizon=3)
    agent.warm_start = ImaginationWarmStart(policy, model)
    rng = np.random.default_rng(0)
    goal, obs = rng.uniform(0, 1, (2, 2)).astype(np.float32), rng.uniform(0, 1, (2, 2)).astype(np.float32)
    agent.reset(goal)
    agent.act(obs)
    with torch.no_grad():
        z = model.encode(torch.as_tensor(np.stack([obs, goal], 1)))
        expected, _ = policy_rollout(policy, model.predictor, z[:, :1], None, z[:, 1], 3)
    # Same computation, batched differently (the agent encodes the goal and the frame apart): equal
    # up to the summation order of the CPU's kernels (AVX2 differs from AVX-512 in the last bits).
    torch.testing.assert_close(planner.inits[0], expected, rtol=1e-4, atol=1e-5)

    model_free = _policy(model)
    model_free.config = GoalPolicyConfig(**{**model_free.config.to_dict(), "latent_space": "own", "method": "gcbc",
                                            "encoder": model.config.encoder})
    with pytest.raises(ValueError, match="own encoder"):
        ImaginationWarmStart(model_free, model)
    with pytest.raises(ValueError, match="another world model"):
        ImaginationWarmStart(policy, _world_model(store, seed=1))
