"""Planning with diffusion dynamics: fixed noise per decision, and CEM reaching a known goal on the linear toy."""

from __future__ import annotations

import pytest
import torch

from forethought.models import WorldModel, WorldModelConfig
from forethought.models.binding import model_binding
from forethought.models.diffusion_dynamics import DiffusionDynamics, DynamicsConfig, DynamicsMismatchError
from forethought.planning import make_planner
from forethought.planning.diffusion_dynamics import DiffusionDynamicsObjective
from tests.models.linear_toy import A, D, F, H, W, linear_episodes, train_linear_dynamics


def _model(latent_dim: int = D) -> WorldModel:
    """A world model whose latent and action spaces are the toy's (only its binding is used)."""
    return WorldModel(WorldModelConfig.preset("tiny", obs_shape=(3,), action_dim=A, latent_dim=latent_dim)).eval()


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    model = _model()
    return model, train_linear_dynamics(tmp_path_factory.mktemp("toy") / "run", **model_binding(model))


def _noisy_untrained(model: WorldModel) -> DiffusionDynamics:
    torch.manual_seed(0)
    dyn = DiffusionDynamics(DynamicsConfig(horizon=F, history=H, width=16, depth=1, diffusion_steps=20,
                                           sample_steps=3, **model_binding(model)))
    torch.nn.init.normal_(dyn.denoiser.out.weight, std=0.3)  # its output depends on the noise
    return dyn.eval()


def test_a_decision_scores_every_candidate_with_the_same_noise():
    model = _model()
    factory = DiffusionDynamicsObjective(model, _noisy_untrained(model), seed=3)
    g = torch.Generator().manual_seed(0)
    z_hist, goal = torch.randn(2, 2, D, generator=g), torch.randn(2, D, generator=g)
    a_hist, cands = torch.randn(2, 1, A, generator=g), torch.rand(2, 8, F, A, generator=g) * 2 - 1
    first = factory(z_hist, a_hist, goal)
    c1 = first(cands)
    assert c1.shape == (2, 8)
    torch.testing.assert_close(first(cands), c1, rtol=0, atol=0)  # called again in the decision: the same costs
    torch.testing.assert_close(first(cands[:, 3:5]), c1[:, 3:5])  # shared noise: independent of the set around it
    assert factory.denoiser_calls == 3 * 3  # 3 calls of one chunk, 3 DDIM steps each
    second = factory(z_hist, a_hist, goal)(cands)
    assert not torch.allclose(second, c1)  # the next decision draws new noise
    factory.reset()
    torch.testing.assert_close(factory(z_hist, a_hist, goal)(cands), c1, rtol=0, atol=0)  # reproducible per batch
    own = DiffusionDynamicsObjective(model, _noisy_untrained(model), seed=3, shared_noise=False)(z_hist, a_hist, goal)
    assert not torch.allclose(own(cands[:, 3:5]), own(cands)[:, 3:5])  # per-candidate noise depends on the layout
    long = factory(z_hist, a_hist, goal)(torch.zeros(2, 3, 2 * F + 1, A))  # 3 chained chunks
    assert long.shape == (2, 3) and torch.isfinite(long).all()


def test_cem_with_diffusion_dynamics_reaches_a_known_goal(toy):
    model, dyn = toy
    latents, actions = linear_episodes(6, 8, seed=4)
    z_hist = torch.stack([z[1:3] for z in latents])  # (B, 2, D): rows 1, 2
    a_hist = torch.stack([a[1:2] for a in actions])
    target = torch.rand(6, F, A, generator=torch.Generator().manual_seed(5)) * 1.6 - 0.8
    goal = z_hist[:, -1] + target.sum(1) @ W.T  # reachable in F steps
    objective = DiffusionDynamicsObjective(model, dyn, "l2", "last", seed=0)(z_hist, a_hist, goal)
    planner = make_planner("cem", samples=64, iterations=6, seed=0)
    plan = planner.plan(objective, torch.zeros(6, F, A), -torch.ones(A), torch.ones(A)).actions
    reached = z_hist[:, -1] + plan.sum(1) @ W.T  # where the plan truly ends
    start = (z_hist[:, -1] - goal).pow(2).sum(-1)
    miss = (reached - goal).pow(2).sum(-1)
    assert bool((miss < 0.05 * start).all()), (miss, start)


def test_dynamics_of_another_latent_space_are_refused(toy):
    _, dyn = toy
    with pytest.raises(DynamicsMismatchError, match="latent_dim 4 .the model: 5."):
        DiffusionDynamicsObjective(_model(latent_dim=5), dyn)
    with pytest.raises(ValueError, match="steps must be in"):
        DiffusionDynamicsObjective(toy[0], dyn, steps=500)
