"""The speculative planning objective equals the planners' objective at epsilon 0 and drives CEM alike."""

from __future__ import annotations

import pytest
import torch

from forethought.planning.costs import goal_cost, rollout_objective
from forethought.speculative.draft import DraftConfig, DraftPredictor
from forethought.speculative.planning import speculative_objective
from tests.speculative.conftest import A, D, HIST, inputs


def test_epsilon_zero_objective_equals_rollout_objective(model):
    z, _, past = inputs(2, HIST, 1, seed=8)
    goal = torch.randn(2, D, generator=torch.Generator().manual_seed(9))
    cost = goal_cost(goal, "l2", "sum")
    acts = torch.randn(2, 5, 7, A, generator=torch.Generator().manual_seed(10))
    draft = DraftPredictor(DraftConfig(D, A, HIST))
    with torch.no_grad():
        ref = rollout_objective(model, z, past, cost)(acts)
        spec = speculative_objective(model, draft, z, past, cost, epsilon=0.0)(acts)
    assert spec.shape == (2, 5)
    torch.testing.assert_close(spec, ref, rtol=1e-4, atol=1e-4)


def test_gradient_planner_inputs_are_refused_with_a_pointer(model):
    z, _, past = inputs(1, HIST, 1)
    obj = speculative_objective(model, DraftPredictor(DraftConfig(D, A, HIST)), z, past, goal_cost(torch.zeros(1, D)))
    with pytest.raises(ValueError, match="rollout_objective"):
        obj(torch.zeros(1, 2, 3, A, requires_grad=True))
