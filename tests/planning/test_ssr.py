"""Sample-score-rank and proposal-initialized CEM / MPPI: the best of a known set under a known objective."""

from __future__ import annotations

import pytest
import torch

from forethought.planning import SampleScoreRank, make_planner

H, A = 3, 2
VALUES = torch.linspace(-1.0, 1.0, 9)  # the set: constant chunks at these values


class SetProposal:
    """Samples from a known finite set: chunk ``k`` is the constant ``VALUES[k]``; draw ``i`` is chunk
    ``i mod K`` (so ``n >= K`` draws cover the set). Records the context it was given."""

    horizon = H
    conditioned_on_goal = True

    def __init__(self) -> None:
        self.seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def sample(self, z, goal_z=None, n=1, *, generator=None, steps=None):
        self.seen.append((z, goal_z))
        chunks = VALUES[torch.arange(n) % len(VALUES)][:, None, None].expand(n, H, A)
        return chunks[None].expand(z.shape[0], n, H, A).clone()


def _objective(targets: torch.Tensor):
    """Per episode ``b``: squared distance of every action to ``targets[b]``: ``(B, N, H, A) -> (B, N)``."""
    return lambda actions: (actions - targets[:, None, None, None]).pow(2).sum((-1, -2))


def _conditioned(planner, B: int) -> None:
    planner.condition(torch.randn(B, 2, 4), None, torch.randn(B, 4))


def test_ssr_picks_the_best_of_the_set_per_episode():
    targets = torch.tensor([0.7, -0.55, 0.1])  # nearest set values: 0.75, -0.5, 0.0
    proposal = SetProposal()
    planner = make_planner("ssr", samples=10, proposal=proposal)  # 9 draws cover the set, plus the initial plan
    _conditioned(planner, 3)
    low, high = -torch.ones(A), torch.ones(A)
    result = planner.plan(_objective(targets), torch.full((3, H, A), 0.9), low, high)
    best = VALUES[(VALUES[None] - targets[:, None]).abs().argmin(1)]  # (3,) the known answer
    torch.testing.assert_close(result.actions, best[:, None, None].expand(3, H, A))
    torch.testing.assert_close(result.cost, (best - targets).pow(2) * H * A)
    assert result.evaluations == 10 and result.trace.shape == (1, 3)
    z, goal = proposal.seen[-1]
    assert z.shape == (3, 4) and goal is not None  # the current latent z_hist[:, -1] and the goal


def test_the_initial_plan_is_kept_when_it_is_better():
    planner = make_planner("ssr", samples=5, proposal=SetProposal())
    _conditioned(planner, 1)
    init = torch.full((1, H, A), 0.33)
    result = planner.plan(_objective(torch.tensor([0.33])), init, -torch.ones(A), torch.ones(A))
    torch.testing.assert_close(result.actions, init)


def test_cem_and_mppi_start_from_the_proposal():
    targets = torch.tensor([0.75, -0.25])  # exactly in the set
    low, high = -torch.ones(A), torch.ones(A)
    for name in ("cem", "mppi"):
        planner = make_planner(name, samples=10, iterations=1, proposal=SetProposal())
        _conditioned(planner, 2)
        result = planner.plan(_objective(targets), torch.zeros(2, H, A), low, high)
        assert result.cost.max() == 0, name  # the first population held the optimum
        plain = make_planner(name, samples=10, iterations=1).plan(_objective(targets), torch.zeros(2, H, A), low, high)
        assert plain.cost.min() > 0  # Gaussian samples never hit it exactly


def test_refusals():
    with pytest.raises(ValueError, match="--proposal DIR"):
        make_planner("ssr")
    with pytest.raises(ValueError, match="takes no proposal"):
        make_planner("gradient", proposal=SetProposal())
    planner = SampleScoreRank(samples=4)
    planner.set_proposal(SetProposal())
    with pytest.raises(ValueError, match="call condition"):
        planner.plan(_objective(torch.zeros(1)), torch.zeros(1, H, A), -torch.ones(A), torch.ones(A))
    _conditioned(planner, 1)
    with pytest.raises(ValueError, match="plan with horizon 3"):
        planner.plan(_objective(torch.zeros(1)), torch.zeros(1, H + 2, A), -torch.ones(A), torch.ones(A))


def test_the_proposal_as_a_policy_executes_a_sample_unscored():
    planner = make_planner("proposal", proposal=SetProposal())
    _conditioned(planner, 2)
    calls = []
    result = planner.plan(lambda a: calls.append(a) or a.sum((-1, -2)), torch.zeros(2, H, A), -torch.ones(A),
                          torch.ones(A))
    assert not calls and result.evaluations == 0  # never scored
    torch.testing.assert_close(result.actions, torch.full((2, H, A), -1.0))  # the set's first chunk
    with pytest.raises(ValueError, match="--proposal DIR"):
        make_planner("proposal")
