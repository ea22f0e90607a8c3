"""SpeculativeObjective: at epsilon 0 it equals the plain latent rollout objective, cost by cost and
through CEM (same seed, same plan); it really uses the draft; it refuses gradients and bad settings."""

from __future__ import annotations

import pytest
import torch

from forethought.planning.cem import CEM
from forethought.planning.costs import goal_cost
from forethought.speculative import SpeculativeObjective
from forethought.speculative.draft import DraftConfig, DraftMismatchError, DraftPredictor
from tests.speculative.conftest import A, D, HIST, inputs

H = 6


def plain_objective(model, z_hist, a_hist, goal_z, norm="l2", reduce="sum"):
    """The planners' latent rollout objective, written out: ``actions (B, N, H, A) -> (B, N)``."""
    cost = goal_cost(goal_z, norm, reduce)
    return lambda actions: cost(model.rollout_candidates(z_hist, actions, a_hist), actions)


def problem(B: int, L: int, seed: int = 8):
    z, _, past = inputs(B, L, 1, seed=seed)
    goal = torch.randn(B, D, generator=torch.Generator().manual_seed(seed + 1))
    return z, (past if L > 1 else None), goal


def copy_last() -> DraftPredictor:
    """An untrained draft (copy-last): never within epsilon 0 of the target, far off at large epsilon."""
    return DraftPredictor(DraftConfig(D, A, HIST))


@pytest.mark.parametrize("L", [1, HIST])
def test_epsilon_zero_costs_equal_the_plain_objective(model, L):
    z, past, goal = problem(2, L)
    acts = torch.randn(2, 5, H, A, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        ref = plain_objective(model, z, past, goal)(acts)
        spec = SpeculativeObjective(model, copy_last(), epsilon=0.0)(z, past, goal)(acts)
        # A callable cost is called with the goal: here the l1 terminal cost.
        ref_l1 = plain_objective(model, z, past, goal, "l1", "last")(acts)
        spec_l1 = SpeculativeObjective(model, copy_last(), epsilon=0.0,
                                       cost=lambda g: goal_cost(g, "l1", "last"))(z, past, goal)(acts)
        # Negative control: a tolerance that accepts every draft gives the copy-last rollout's costs.
        loose = SpeculativeObjective(model, copy_last(), epsilon=1e6)(z, past, goal)(acts)
    assert spec.shape == (2, 5)
    torch.testing.assert_close(spec, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(spec_l1, ref_l1, rtol=1e-4, atol=1e-4)
    assert (ref - ref.mean(dim=1, keepdim=True)).abs().max() > 1e-2  # candidates differ: costs are informative
    assert (loose - ref).abs().max() > 1e-2  # the draft is really used


def test_cem_gives_the_same_plan_as_with_the_plain_objective(model):
    z, past, goal = problem(2, HIST, seed=3)
    init, low, high = torch.zeros(2, H, A), -torch.ones(A), torch.ones(A)
    factory = SpeculativeObjective(model, copy_last(), epsilon=0.0, gamma=3)
    plans = {}
    for name, objective in (("plain", plain_objective(model, z, past, goal)), ("spec", factory(z, past, goal))):
        plans[name] = CEM(samples=32, iterations=4, seed=0).plan(objective, init=init, low=low, high=high)
    ref, spec = plans["plain"], plans["spec"]
    torch.testing.assert_close(spec.actions, ref.actions, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(spec.trace, ref.trace, rtol=1e-4, atol=1e-4)
    # Not vacuous: CEM moved away from the start and improved on its first iteration.
    assert (ref.actions - init).abs().max() > 0.1
    assert (ref.trace[-1] < ref.trace[0]).all()
    # A different seed gives a different plan, so equal plans do come from equal costs.
    other = CEM(samples=32, iterations=4, seed=1).plan(factory(z, past, goal), init=init, low=low, high=high)
    assert (other.actions - spec.actions).abs().max() > 1e-2


def test_it_is_forward_only(model):
    z, past, goal = problem(1, HIST)
    obj = SpeculativeObjective(model, copy_last())(z, past, goal)
    with pytest.raises(ValueError, match="forward-only"):
        obj(torch.zeros(1, 2, 3, A, requires_grad=True))
    with pytest.raises(ValueError, match="actions must be"):
        obj(torch.zeros(2, 2, 3, A))  # B = 2 for a B = 1 history


def test_bad_settings_are_refused_at_construction(model):
    with pytest.raises(DraftMismatchError, match="action_dim"):
        SpeculativeObjective(model, DraftPredictor(DraftConfig(D, A + 1, HIST)))
    with pytest.raises(DraftMismatchError, match="different target"):
        SpeculativeObjective(model, DraftPredictor(DraftConfig(D, A, HIST, target_fingerprint="0" * 64)))
    for kw, msg in (({"epsilon": -0.1}, "epsilon"), ({"gamma": 0}, "gamma"), ({"cost": "l3"}, "norm"),
                    ({"reduce": "mean"}, "reduction"), ({"terminal_weight": -1.0}, "terminal_weight"),
                    ({"cost": lambda g: goal_cost(g), "terminal_weight": 1.0}, "terminal_weight")):
        with pytest.raises(ValueError, match=msg):
            SpeculativeObjective(model, copy_last(), **kw)
