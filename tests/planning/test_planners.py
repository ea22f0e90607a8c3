"""Planners on a known quadratic: near its minimum, better than random shooting at equal budget,
inside the bounds, helped by a warm start, per-episode statistics, reproducible."""

from __future__ import annotations

import pytest
import torch

from forethought.planning import PLANNERS, PlanResult, Planner, make_planner

B, H, A = 3, 5, 2
SELF_CONTAINED = [n for n in PLANNERS if n not in ("ssr", "proposal")]  # they sample a proposal: test_ssr.py
LOW, HIGH = -torch.full((A,), 2.0), torch.full((A,), 2.0)
BUDGETS = {  # (samples, iterations): equal number of objective evaluations per planner pair
    "cem": dict(samples=64, iterations=15),
    "mppi": dict(samples=64, iterations=15),
    "gradient": dict(samples=8, iterations=40, lr=0.1),
}


def _targets(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((B, H, A), generator=g) * 3.0 - 1.5  # (B, H, A), inside the box


def quadratic(target: torch.Tensor, calls: list | None = None):
    """Objective ``(B, N, H, A) -> (B, N)``: squared distance to a per-episode target."""

    def objective(actions: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(tuple(actions.shape))
        return (actions - target[:, None]).pow(2).sum(dim=(-1, -2))

    return objective


@pytest.mark.parametrize("name", list(BUDGETS))
def test_planner_minimises_quadratic_and_beats_random_shooting(name: str) -> None:
    target = _targets()
    budget = BUDGETS[name]
    calls: list = []
    res = make_planner(name, seed=0, **budget).plan(quadratic(target, calls), torch.zeros(B, H, A), LOW, HIGH)
    assert isinstance(res, PlanResult) and res.actions.shape == (B, H, A)
    # Batched over episodes and candidates: every call sees (B, N, H, A).
    assert calls and all(c == (B, budget["samples"], H, A) for c in calls)
    assert res.evaluations == budget["samples"] * budget["iterations"]
    true_cost = (res.actions - target).pow(2).sum(dim=(-1, -2))
    torch.testing.assert_close(res.cost, true_cost)
    assert true_cost.max() < 0.05, true_cost  # random shooting lands around 2-4 here
    rs = make_planner("random", seed=0, samples=budget["samples"], iterations=budget["iterations"])
    rs_cost = rs.plan(quadratic(target), torch.zeros(B, H, A), LOW, HIGH).cost
    assert (true_cost < rs_cost).all(), (true_cost, rs_cost)
    assert (res.trace[1:] <= res.trace[:-1]).all()  # best-so-far never gets worse


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_bounds_hold_when_the_minimum_is_outside(name: str) -> None:
    target = _targets() * 3.0  # mostly outside [-2, 2]
    low, high = torch.tensor([-2.0, -0.5]), torch.tensor([2.0, 1.0])
    budget = BUDGETS["gradient"] if name == "gradient" else dict(samples=64, iterations=50)
    res = make_planner(name, seed=0, **budget).plan(quadratic(target), torch.zeros(B, H, A), low, high)
    assert (res.actions >= low).all() and (res.actions <= high).all()
    if name != "random":  # the box-constrained minimum is the clamped target
        optimum = (target.clamp(low, high) - target).pow(2).sum(dim=(-1, -2))
        assert (res.cost - optimum).max() < 0.2, (res.cost, optimum)


@pytest.mark.parametrize("name", ["cem", "mppi", "gradient"])
def test_warm_start_lowers_cost_at_equal_budget(name: str) -> None:
    small = dict(samples=16, iterations=2, **({"lr": 0.05} if name == "gradient" else {}))
    cold, warm = [], []
    for seed in range(5):
        target = _targets(seed)
        near = target + 0.1 * torch.randn(B, H, A, generator=torch.Generator().manual_seed(seed))
        cold.append(make_planner(name, seed=seed, **small).plan(quadratic(target), torch.zeros(B, H, A), LOW, HIGH).cost)
        warm.append(make_planner(name, seed=seed, **small).plan(quadratic(target), near, LOW, HIGH).cost)
    assert torch.cat(warm).mean() < 0.5 * torch.cat(cold).mean()


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_statistics_are_per_episode(name: str) -> None:
    """Opposite targets in two episodes: a CEM/MPPI that pools elites across the batch axis would
    return the same (middle) plan for both."""
    target = torch.stack([torch.full((H, A), 1.2), torch.full((H, A), -1.2)])
    res = make_planner(name, seed=0, samples=64, iterations=15).plan(quadratic(target), torch.zeros(2, H, A), LOW, HIGH)
    assert (res.actions - target).abs().max() < 0.2


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_seeded_planners_are_reproducible(name: str) -> None:
    target = _targets()

    def run(seed: int) -> torch.Tensor:
        return make_planner(name, seed=seed, samples=8, iterations=3).plan(
            quadratic(target), torch.zeros(B, H, A), LOW, HIGH).actions

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    p = make_planner(name, seed=1, samples=8, iterations=3)
    first = p.plan(quadratic(target), torch.zeros(B, H, A), LOW, HIGH).actions
    p.reseed()
    assert torch.equal(first, p.plan(quadratic(target), torch.zeros(B, H, A), LOW, HIGH).actions)


def test_factory_and_config_errors_say_what_to_do() -> None:
    assert all(isinstance(make_planner(n), Planner) for n in SELF_CONTAINED)
    with pytest.raises(ValueError, match="available: cem, mppi, gradient, random"):
        make_planner("cme")
    with pytest.raises(ValueError, match="fields are: samples"):
        make_planner("cem", sampels=10)
    with pytest.raises(ValueError, match="elites"):
        make_planner("cem", samples=10, elites=20)
    with pytest.raises(ValueError, match="temperature"):
        make_planner("mppi", temperature=0.0)
    p = make_planner("cem", samples=8, iterations=1)
    with pytest.raises(ValueError, match=r"low and high must have shape \(A=2,\)"):
        p.plan(quadratic(_targets()), torch.zeros(B, H, A), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="costs of shape"):
        p.plan(lambda a: a.sum(dim=(-1, -2)).flatten(), torch.zeros(B, H, A), LOW, HIGH)


def test_colored_noise_has_unit_variance_and_the_asked_smoothness() -> None:
    from forethought.planning.common import colored_noise

    g = torch.Generator().manual_seed(0)
    for beta, lag1 in ((0.0, (-0.05, 0.05)), (2.0, (0.8, 0.95))):
        x = colored_noise((8000, 25, 2), beta, g, torch.device("cpu"))  # (samples, T, channels)
        var = x.var(dim=0)  # (T, 2): every time step, every channel
        assert ((var > 0.9) & (var < 1.1)).all(), var
        r = torch.corrcoef(torch.stack([x[:, 3, 0], x[:, 4, 0], x[:, 4, 1]]))
        assert lag1[0] < r[0, 1] < lag1[1]  # neighbouring steps of one channel
        assert abs(r[1, 2]) < 0.05  # channels stay independent
    # White noise is exactly torch.randn's stream: beta=0 changes nothing for existing seeds.
    a = colored_noise((3, 5, 2), 0.0, torch.Generator().manual_seed(1), torch.device("cpu"))
    torch.testing.assert_close(a, torch.randn((3, 5, 2), generator=torch.Generator().manual_seed(1)))


def test_colored_candidates_run_over_env_steps_across_model_steps() -> None:
    from forethought.planning.common import gaussian_candidates

    mean, std = torch.zeros(1, 5, 10), torch.ones(1, 5, 10)  # H=5 model steps of 5 env steps x 2 dims
    big = torch.full((10,), 1e9)
    c = gaussian_candidates(mean, std, 8001, torch.Generator().manual_seed(0), -big, big, beta=2.0, frameskip=5)
    assert torch.equal(c[:, 0], mean[:, 0][:, None].expand(1, 5, 10)[:, :, :])  # candidate 0 is the mean
    x = c[0, 1:]  # (8000, H, A)
    # The last env step of model step 0 (dims 8:10) and the first of step 1 (dims 0:2) are neighbours.
    across = torch.corrcoef(torch.stack([x[:, 0, 8], x[:, 1, 0]]))[0, 1]
    assert across > 0.7
    with pytest.raises(ValueError, match="multiple of frameskip=3"):
        gaussian_candidates(mean, std, 4, torch.Generator(), -big, big, beta=2.0, frameskip=3)
    with pytest.raises(ValueError, match="noise_beta"):
        make_planner("cem", noise_beta=-1.0)
    with pytest.raises(ValueError, match="frameskip"):
        make_planner("mppi", frameskip=0)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_colored_noise_planners_still_minimise(name: str) -> None:
    target = torch.linspace(-1.5, 1.5, H)[None, :, None].expand(B, H, A)  # a smooth optimum
    objective = quadratic(target)
    init = torch.zeros(B, H, A)
    start = objective(init[:, None])[:, 0]
    result = make_planner(name, noise_beta=2.0, **BUDGETS[name]).plan(objective, init, LOW, HIGH)
    assert (result.cost < 0.05 * start).all(), (result.cost, start)  # smooth noise refines less finely
