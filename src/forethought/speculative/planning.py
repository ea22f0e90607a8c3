"""Speculative rollouts inside planning: a forward-only objective, and where it does not pay.

:func:`speculative_objective` has the signature of
:func:`forethought.planning.costs.rollout_objective` (``actions (B, N, H, A) -> costs (B, N)``)
with the candidates' rollouts done by :func:`~forethought.speculative.rollout.speculative_rollout`
on ``B * N`` rows. It is forward-only: usable by sampling planners (CEM, MPPI) and to score a
plan, not by the gradient planner.

Why not the gradient planner. Its gradient must flow through the target's sequential chain
``z_{k+1} = f(z_k, a_k)``; a speculative trajectory is made of accepted *draft* states, so
differentiating it gives the draft's Jacobians (a different model, never trained to match the
target's derivatives), and differentiating only the target's one parallel verification pass
gives a one-step (truncated) gradient that sees no effect of ``a_0`` on ``z_H``. On top of that
its rollouts are batched (``samples`` x episodes rows, short horizons), where
:func:`benchmark_planner` measures no gain: speculation trades sequential steps for wider
batches, which only pays when the batch is too small to use the core.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor

from forethought.speculative.rollout import speculative_rollout

Cost = Callable[[Tensor, Tensor], Tensor]


def speculative_objective(model, draft, z_hist: Tensor, a_hist: Tensor | None, cost: Cost, *,
                          epsilon: float = 0.0, gamma: int = 4) -> Callable[[Tensor], Tensor]:
    """Objective ``actions (B, N, H, A) -> (B, N)``: ``cost`` of speculative rollouts (no gradient).

    ``z_hist (B, L, D)`` and ``a_hist (B, L-1, A)`` (or ``None``) as in ``rollout_objective``.
    """
    if z_hist.ndim != 3:
        raise ValueError(f"z_hist must be (B, L, D), got shape {tuple(z_hist.shape)}")

    def objective(actions: Tensor) -> Tensor:
        if actions.ndim != 4 or actions.shape[0] != z_hist.shape[0]:
            raise ValueError(f"actions must be (B={z_hist.shape[0]}, N, H, A), got {tuple(actions.shape)}")
        if actions.requires_grad and torch.is_grad_enabled():
            raise ValueError("speculative_objective is forward-only (no gradient through accepted draft states); "
                             "use forethought.planning.costs.rollout_objective with the gradient planner")
        B, N, H, A = actions.shape
        z = z_hist.repeat_interleave(N, dim=0)
        past = None if a_hist is None or a_hist.shape[1] == 0 else a_hist.repeat_interleave(N, dim=0)
        lat = speculative_rollout(model.predictor, draft, z, actions.reshape(B * N, H, A), past,
                                  gamma=gamma, epsilon=epsilon)
        return cost(lat.view(B, N, H, -1), actions)

    return objective


def benchmark_planner(model, draft, zz: Tensor, aa: Tensor, *, repeats: int = 3, epsilon: float = 0.03,
                      gamma: int = 4, shapes=((1, 5), (16, 5), (300, 5), (16, 50), (1, 50))) -> dict:
    """Objective evaluations at planner shapes ``(N candidates, H)`` for one episode: the planners'
    fast objective vs the speculative one. Times in ms (medians)."""
    from forethought.planning.costs import goal_cost, rollout_objective
    from forethought.speculative.distill import random_model_actions

    h = model.history
    z_hist, a_hist, goal = zz[:1, :h], aa[:1, : h - 1], zz[:1, -1]
    cost = goal_cost(goal, "l2", "last")
    rows = []
    with torch.inference_mode():
        for N, H in shapes:
            acts = random_model_actions(model, (1, N, H, model.action_dim), torch.Generator().manual_seed(N + H))
            fast = rollout_objective(model, z_hist, a_hist, cost)
            spec = speculative_objective(model, draft, z_hist, a_hist, cost, epsilon=epsilon, gamma=gamma)
            t = {"fast": [], "spec": []}
            c_fast, c_spec = fast(acts), spec(acts)
            for _ in range(repeats):
                for k, f in (("fast", fast), ("spec", spec)):
                    t0 = time.perf_counter()
                    f(acts)
                    t[k].append(time.perf_counter() - t0)
            med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in t.items()}
            rows.append({"N": N, "H": H, "fast_ms": med["fast"], "spec_ms": med["spec"],
                         "speedup": med["fast"] / med["spec"],
                         "cost_rel_diff": float(((c_spec - c_fast).abs() / c_fast.abs().clamp_min(1e-8)).mean())})
    return {"rows": rows, "epsilon": epsilon, "gamma": gamma}
