"""Goal costs, the default objective factory (LatentGoalObjective), and the fast candidate rollout it uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.models import PredictorConfig, WorldModel, WorldModelConfig
from forethought.planning import LatentGoalObjective, ObjectiveFactory, goal_cost

D, A = 8, 4


def _model(kind: str = "transformer", history: int = 3) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig(obs_shape=(5,), action_dim=A, latent_dim=D, history=history,
                           encoder=WorldModelConfig.preset("tiny", (5,), A).encoder,
                           predictor=PredictorConfig(kind=kind, width=32, depth=2, heads=4))
    m = WorldModel(cfg).eval()
    with torch.no_grad():  # zero-initialised heads would hide the actions; randomise the predictor
        for p in m.predictor.parameters():
            p.normal_(0, 0.3)
    return m


def test_goal_cost_values() -> None:
    goal = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # (B=2, D=2)
    lat = torch.zeros(2, 1, 3, 2)  # (B, N=1, H=3, D)
    lat[0, 0, :, 0] = torch.tensor([1.0, 2.0, 3.0])
    acts = torch.zeros(2, 1, 3, 1)
    assert goal_cost(goal, "l1", "last")(lat, acts).tolist() == [[1.5], [1.0]]
    assert goal_cost(goal, "l2", "last")(lat, acts).tolist() == [[4.5], [1.0]]
    assert goal_cost(goal, "l1", "sum")(lat, acts).tolist() == [[3.0], [3.0]]
    assert goal_cost(goal, "l2", "sum")(lat, acts).tolist() == [[7.0], [3.0]]
    with pytest.raises(ValueError, match="available: l1, l2"):
        goal_cost(goal, "l3")
    with pytest.raises(ValueError, match="available: last, sum"):
        goal_cost(goal, "l2", "mean")


def test_terminal_weight_adds_the_last_step() -> None:
    goal = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    lat = torch.zeros(2, 1, 3, 2)
    lat[0, 0, :, 0] = torch.tensor([1.0, 2.0, 3.0])  # per-step l2: 0.5, 2, 4.5 -> sum 7, last 4.5
    acts = torch.zeros(2, 1, 3, 1)
    assert goal_cost(goal, "l2", "sum", terminal_weight=2.0)(lat, acts).tolist() == [[7.0 + 9.0], [3.0 + 2.0]]
    assert goal_cost(goal, "l1", "sum", terminal_weight=0.5)(lat, acts).tolist() == [[3.0 + 0.75], [3.0 + 0.5]]
    with pytest.raises(ValueError, match="only applies to reduce='sum'"):
        goal_cost(goal, "l2", "last", terminal_weight=1.0)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite and >= 0"):
            goal_cost(goal, "l2", "sum", terminal_weight=bad)


@pytest.mark.parametrize("kind", ["transformer", "mlp"])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_objective_equals_rolling_each_candidate_alone(kind: str, L: int) -> None:
    m = _model(kind)
    B, N, H = 2, 5, 4
    z, past = torch.randn(B, L, D), torch.randn(B, L - 1, A)
    acts, goal = torch.randn(B, N, H, A), torch.randn(B, D)
    factory = LatentGoalObjective(m, "l2", "sum")
    assert isinstance(factory, ObjectiveFactory)
    with torch.no_grad():
        got = factory(z, past if L > 1 else None, goal)(acts)  # (B, N)
        torch.testing.assert_close(LatentGoalObjective(m, fast=False)(z, past if L > 1 else None, goal)(acts), got,
                                   rtol=1e-4, atol=1e-4)
        for b in range(B):
            for n in range(N):
                lat = m.rollout(z[b : b + 1], acts[b : b + 1, n], past[b : b + 1] if L > 1 else None)
                ref = goal_cost(goal[b : b + 1], "l2", "sum")(lat[:, None], acts[b : b + 1, n][:, None])
                torch.testing.assert_close(got[b, n], ref[0, 0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("history", [1, 3, 4])
def test_fast_rollout_equals_reference(history: int) -> None:
    m = _model("transformer", history)
    B, N, H = 3, 7, 6
    for L in range(1, history + 1):
        z, past, acts = torch.randn(B, L, D), torch.randn(B, L - 1, A), torch.randn(B, N, H, A)
        with torch.no_grad():
            fast = m.rollout_candidates(z, acts, past, fast=True)
            slow = m.rollout_candidates(z, acts, past, fast=False)
        assert fast.shape == (B, N, H, D)
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)
        # A history longer than h is cut to the last h, exactly as rollout does.
    z, past, acts = torch.randn(B, history + 2, D), torch.randn(B, history + 1, A), torch.randn(B, N, H, A)
    with torch.no_grad():
        ref = m.rollout(z.repeat_interleave(N, 0), acts.reshape(B * N, H, A), past.repeat_interleave(N, 0))
        torch.testing.assert_close(m.rollout_candidates(z, acts, past), ref.view(B, N, H, D), rtol=1e-4, atol=1e-4)


def test_bf16_objective_is_close_and_float32() -> None:
    m = _model()
    z, past, acts, goal = torch.randn(2, 3, D), torch.randn(2, 2, A), torch.randn(2, 6, 3, A), torch.randn(2, D)
    with torch.no_grad():
        c32 = LatentGoalObjective(m, "l1")(z, past, goal)(acts)
        c16 = LatentGoalObjective(m, "l1", bf16=True)(z, past, goal)(acts)
    assert c16.dtype == torch.float32
    assert 0 < (c16 - c32).abs().max() < 0.05 * c32.abs().max()


def test_objective_is_differentiable_in_the_actions() -> None:
    m = _model()
    z, goal = torch.randn(2, 1, D), torch.randn(2, D)
    acts = torch.randn(2, 3, 2, A, requires_grad=True)
    objective = LatentGoalObjective(m)(z, None, goal)
    (g,) = torch.autograd.grad(objective(acts).sum(), acts)
    eps = 1e-3 * torch.randn_like(acts)  # first order: the gradient predicts the change of a small step
    with torch.no_grad():
        change = (objective(acts + eps) - objective(acts)).sum()
    torch.testing.assert_close(change, (g * eps).sum(), rtol=0.05, atol=1e-5)


def test_the_cli_planner_names_are_the_library_planners() -> None:
    from forethought.evaluation.config import PLANNER_NAMES  # torch-free copy for `forethought eval --help`
    from forethought.planning import PLANNERS

    assert set(PLANNER_NAMES) == set(PLANNERS)


def test_readout_cost_weighs_estimated_state_dims() -> None:
    from forethought.planning.objectives import readout_cost

    m = WorldModel(WorldModelConfig(obs_shape=(5,), action_dim=A, latent_dim=D, history=3, readout_dim=3,
                                    encoder=WorldModelConfig.preset("tiny", (5,), A).encoder,
                                    predictor=PredictorConfig(width=32, depth=1, heads=4))).eval()
    with torch.no_grad():  # readout = the first three latent dims
        m.readout.weight.copy_(torch.eye(3, D))
        m.readout.bias.zero_()
    goal = torch.zeros(1, D)
    lat = torch.zeros(1, 2, 2, D)  # (B, N=2, H=2, D)
    lat[0, 0, :, 0] = 1.0  # candidate 0 off in state dim 0
    lat[0, 1, :, 2] = 1.0  # candidate 1 off in state dim 2
    lat[0, :, :, 5] = 3.0  # both far in a latent dim the readout ignores
    with torch.no_grad():
        c = readout_cost(m, goal, [1.0, 0.0, 0.0], "sum")(lat, torch.zeros(1, 2, 2, A))
        last = readout_cost(m, goal, [0.0, 0.0, 2.0], "last")(lat, torch.zeros(1, 2, 2, A))
        mixed = readout_cost(m, goal, [1.0, 0.0, 0.0], "sum", latent_weight=1.0)(lat, torch.zeros(1, 2, 2, A))
    assert c.tolist() == [[2.0, 0.0]] and last.tolist() == [[0.0, 2.0]]  # only the weighted dims count
    assert torch.allclose(mixed - c, torch.full((1, 2), 2 * (9.0 + 1.0) / D))  # + the summed latent L2
    with pytest.raises(ValueError, match="3 numbers"):
        readout_cost(m, goal, [1.0, 1.0], "sum")
    plain = _model()
    with pytest.raises(ValueError, match="--state-weight"):
        readout_cost(plain, torch.zeros(1, D), [1.0])


def test_coast_scores_the_candidate_then_the_rest_action() -> None:
    """coast=k: the cost of the candidate followed by k model steps of zero env action (normalized)."""
    from forethought.data.normalization import Normalizer, NormStats
    from forethought.planning.objectives import rest_action

    m = _model()
    mean, std = [0.5, -0.2], [2.0, 0.5]  # env action dim 2, frameskip 2: model action dim A = 4
    m.normalization = Normalizer(NormStats.fit(np.array([[mean[0] - std[0], mean[1] - std[1]],
                                                          [mean[0] + std[0], mean[1] + std[1]]]))).to_dict()
    rest = rest_action(m)
    torch.testing.assert_close(rest, torch.tensor([-0.25, 0.4, -0.25, 0.4]))  # (0 - mean) / std, per slot
    B, N, H, k = 2, 3, 4, 2
    z, acts, goal = torch.randn(B, 3, D), torch.randn(B, N, H, A), torch.randn(B, D)
    with torch.no_grad():
        got = LatentGoalObjective(m, coast=k)(z, None, goal)(acts)
        extended = torch.cat([acts, rest.expand(B, N, k, A)], dim=2)
        torch.testing.assert_close(got, LatentGoalObjective(m)(z, None, goal)(extended))
        assert not torch.allclose(got, LatentGoalObjective(m)(z, None, goal)(acts))  # the coasting steps count
    with pytest.raises(ValueError, match="coast"):
        LatentGoalObjective(m, coast=-1)
    m.normalization = None
    with pytest.raises(ValueError, match="action statistics"):
        LatentGoalObjective(m, coast=1)
