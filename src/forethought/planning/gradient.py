"""Gradient descent on the action sequence through the differentiable predictor.

``samples`` sequences per episode (the initial plan plus ``samples - 1`` perturbations of it,
restarts that make the method less sensitive to local minima) are optimised in parallel with
Adam on the summed objective, projected back onto the action box after every step (projected
gradient descent). The best sequence evaluated is returned. The objective must be
differentiable: it runs with autograd enabled even when the caller is in ``no_grad``; anything it
closes over must not be an inference-mode tensor (encode under ``torch.no_grad()`` instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.planning.common import Best, Seeded, anytime, check_costs, check_problem, gaussian_candidates
from forethought.planning.protocols import Objective, PlanResult


@dataclass(frozen=True)
class GradientConfig:
    """Gradient-planner settings; the budget is ``samples * iterations`` evaluations per episode
    (each also pays a backward pass, about twice a forward one).

    Attributes:
        samples: sequences optimised in parallel per episode (the initial plan is the first).
        iterations: gradient steps.
        lr: Adam learning rate in normalized action units.
        init_std: standard deviation of the perturbations of the initial plan.
        seed: seed of the planner's random stream.
    """

    samples: int = 16
    iterations: int = 30
    lr: float = 0.1
    init_std: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 1 or self.iterations < 1:
            raise ValueError(f"the gradient planner needs samples >= 1 and iterations >= 1, got {self.samples}, {self.iterations}")
        if not self.lr > 0:
            raise ValueError(f"GradientConfig.lr must be > 0 (try 0.01-0.3), got {self.lr}")
        if self.init_std < 0:
            raise ValueError(f"GradientConfig.init_std must be >= 0, got {self.init_std}")


class GradientPlanner(Seeded):
    """Projected Adam on ``(B, samples, H, A)`` action sequences."""

    config_class = GradientConfig
    config: GradientConfig

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor, *,
             deadline: float | None = None) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner` (anytime with a ``deadline``)."""
        cfg = self.config
        init, low, high = check_problem(init, low, high)
        B = init.shape[0]
        gen = self.generator(init.device)
        start = gaussian_candidates(init, torch.full_like(init, cfg.init_std), cfg.samples, gen, low, high)
        best = Best(init)
        with torch.inference_mode(False), torch.enable_grad():
            x = start.clone().requires_grad_(True)  # (B, N, H, A), a leaf
            opt = torch.optim.Adam([x], lr=cfg.lr)
            for _ in anytime(cfg.iterations, deadline, init.device):
                costs = check_costs(objective(x), B, cfg.samples)  # (B, N)
                best.update(x.detach(), costs.detach())
                best.end_iteration()
                (grad,) = torch.autograd.grad(costs.sum(), x)  # candidates are independent: sum is exact
                x.grad = grad
                opt.step()
                with torch.no_grad():
                    x.clamp_(low, high)
        return PlanResult(best.actions.clone(), best.cost.clone(), torch.stack(best.trace), cfg.samples * len(best.trace))
