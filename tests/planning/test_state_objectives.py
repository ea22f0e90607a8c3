"""`StateObjective`: a user's cost over the model's state readout, in env units, with goal and past states."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.data.normalization import Normalizer, NormStats
from forethought.models import WorldModel, WorldModelConfig
from forethought.planning.costs import goal_cost
from forethought.planning.state_objectives import StateObjective, load_callable

S, ENV_A = 2, 2


def _model(readout: bool = True) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(S,), action_dim=ENV_A, readout_dim=S if readout else None)
    rng = np.random.default_rng(0)
    states = rng.normal([10.0, 20.0], [2.0, 4.0], size=(500, S))
    norm = Normalizer(NormStats.fit(rng.uniform(-1, 1, (500, ENV_A)) * 0.5), NormStats.fit(states))
    return WorldModel(cfg, norm.to_dict()).eval()


def test_costs_are_the_function_of_the_denormalized_readout_of_the_rollout():
    model = _model()
    z_hist, a_hist = torch.randn(2, 3, model.latent_dim), torch.randn(2, 2, model.action_dim)
    goal_z, actions = torch.randn(2, model.latent_dim), torch.randn(2, 4, 3, model.action_dim)
    seen = {}

    def cost(states, actions, goal, past):
        seen.update(states=states, actions=actions, goal=goal, past=past)
        return states[..., 0].sum(-1) + actions.abs().sum((-1, -2))

    factory = StateObjective(model, cost, latent_weight=0.5)
    with torch.no_grad():
        got = factory(z_hist, a_hist, goal_z)(actions)
        norm = Normalizer.from_dict(model.normalization)
        latents = model.rollout_candidates(z_hist, actions, a_hist)  # (B, N, H, D)
        states = norm.denormalize_state(model.readout(latents))
        want = states[..., 0].sum(-1) + norm.denormalize_action(actions).abs().sum((-1, -2))
        want = want + 0.5 * goal_cost(goal_z, "l2", "sum")(latents, actions)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert seen["states"].shape == (2, 4, 3, S) and seen["goal"].shape == (2, S)
    assert 5 < float(seen["states"][..., 0].mean()) < 15  # env units (x around 10), not normalized
    assert seen["past"].shape == (2, 1, S)
    factory(z_hist, a_hist, goal_z)(actions)
    assert seen["past"].shape == (2, 2, S)  # the frames seen so far, one per decision
    factory.reset()
    factory(z_hist, a_hist, goal_z)(actions)
    assert seen["past"].shape == (2, 1, S)


def test_only_the_declared_context_is_passed_and_errors_say_what_to_do():
    model = _model()
    plain = StateObjective(model, lambda states, actions: states.sum((-1, -2)))
    assert plain.context == ()
    out = plain(torch.randn(1, 1, model.latent_dim), None, torch.randn(1, model.latent_dim))(
        torch.zeros(1, 5, 2, model.action_dim))
    assert out.shape == (1, 5)
    bad = StateObjective(model, lambda states, actions: states.sum(-1))
    with pytest.raises(ValueError, match=r"shape \(B, N\) = \(1, 5\)"):
        bad(torch.randn(1, 1, model.latent_dim), None, torch.randn(1, model.latent_dim))(
            torch.zeros(1, 5, 2, model.action_dim))
    with pytest.raises(ValueError, match="--state-weight"):
        StateObjective(_model(readout=False), lambda states, actions: states)


def test_load_callable(tmp_path):
    fn = load_callable("forethought.examples.objectives:tworoom_low_energy")
    assert callable(fn) and callable(fn.success)
    (tmp_path / "mine.py").write_text("def cost(states, actions):\n    return states.sum((-1, -2))\n")
    assert load_callable(f"{tmp_path / 'mine.py'}:cost").__name__ == "cost"
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        load_callable("no_colon")
    with pytest.raises(ValueError, match="has no function 'nope'"):
        load_callable(f"{tmp_path / 'mine.py'}:nope")
    with pytest.raises(ImportError, match="PYTHONPATH"):
        load_callable("not_a_module_anywhere:cost")
