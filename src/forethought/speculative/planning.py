"""Speculative rollouts inside planning: a forward-only objective factory, and where it does not pay.

:class:`SpeculativeObjective` is an objective factory (the
``forethought.planning.objectives.ObjectiveFactory`` protocol): called with the current latent
history and the goal it returns ``objective(actions (B, N, H, A)) -> (B, N)``, the goal cost of
the candidates' rollouts done by :func:`~forethought.speculative.rollout.speculative_rollout` on
``B * N`` rows. It is forward-only: usable by sampling planners (CEM, MPPI, random shooting) and
to score a plan, not by the gradient planner.

Why not the gradient planner. Its gradient must flow through the target's sequential chain
``z_{k+1} = f(z_k, a_k)``; a speculative trajectory is made of accepted *draft* states, so
differentiating it gives the draft's Jacobians (a different model, never trained to match the
target's derivatives), and differentiating only the target's one parallel verification pass
gives a one-step (truncated) gradient that sees no effect of ``a_0`` on ``z_H``. On top of that
planner rollouts are batched (``samples`` x episodes rows, short horizons), where
``bench/speculative.py`` (its planner section) measures no gain: speculation trades sequential
steps for wider batches, which only pays when the batch is too small to use the core.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.models.protocols import LatentWorldModel
from forethought.planning.objectives import CostSpec, check_cost_spec, make_cost
from forethought.planning.protocols import Objective
from forethought.speculative.draft import DraftPredictor, check_draft_for
from forethought.speculative.rollout import speculative_rollout
from forethought.speculative.rounds import check_speculative_args



@dataclass(frozen=True)
class SpeculativeObjective:
    """Objective factory: goal costs of speculative candidate rollouts (forward-only, no gradients).

    ``SpeculativeObjective(model, draft)(z_hist, a_hist, goal_z)`` is the objective a planner
    minimises, ``actions (B, N, H, A) -> costs (B, N)``. With ``epsilon = 0`` it equals the plain
    latent rollout objective up to float rounding (tested, also through CEM). Its rollouts run
    under ``no_grad``: actions that require a gradient are refused, so use the default latent
    objective with the gradient planner.

    Attributes:
        model: the target :class:`~forethought.models.WorldModel` (eval mode).
        draft: a draft distilled from ``model`` (:func:`~forethought.speculative.load_draft`);
            checked in ``__post_init__`` as ``load_draft(path, target=model)`` checks it (latent
            and action dims, history, weights fingerprint).
        epsilon: acceptance tolerance relative to ``draft.config.latent_scale`` (0 = exact).
        gamma: drafted steps per round (>= 1).
        cost: a norm name for :func:`~forethought.planning.costs.goal_cost` (``"l2"``, ``"l1"``),
            or a callable ``cost(goal_z (B, D)) -> Cost`` (``(latents (B, N, H, D), actions
            (B, N, H, A)) -> (B, N)``).
        reduce, terminal_weight: passed to ``goal_cost`` when ``cost`` is a name (a callable cost
            takes no terminal weight). Checked in ``__post_init__`` as the default
            :class:`~forethought.planning.objectives.LatentGoalObjective` checks them.
    """

    model: LatentWorldModel
    draft: DraftPredictor
    epsilon: float = 0.03
    gamma: int = 4
    cost: CostSpec = "l2"
    reduce: str = "sum"
    terminal_weight: float = 0.0

    def __post_init__(self) -> None:
        check_speculative_args(self.gamma, self.epsilon, 1.0)
        check_draft_for(self.draft, self.model)
        check_cost_spec(self.cost, self.reduce, self.terminal_weight)  # as the default factory does

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        """The objective for one planning step.

        Args:
            z_hist: ``(B, L, D)`` latents of the last ``L <= h`` model frames.
            a_hist: ``(B, L-1, A)`` normalized model actions between them, or ``None`` (``L = 1``).
            goal_z: ``(B, D)`` goal latents.

        Returns:
            ``objective(actions (B, N, H, A)) -> (B, N)``.
        """
        if z_hist.ndim != 3:
            raise ValueError(f"z_hist must be (B, L, D), got shape {tuple(z_hist.shape)}")
        past = None if a_hist is None or a_hist.shape[1] == 0 else a_hist
        cost = make_cost(goal_z, self.cost, self.reduce, self.terminal_weight)  # goal_cost(goal_z, ...) or cost(goal_z)
        model, draft, epsilon, gamma = self.model, self.draft, self.epsilon, self.gamma

        def objective(actions: Tensor) -> Tensor:
            if actions.ndim != 4 or actions.shape[0] != z_hist.shape[0]:
                raise ValueError(f"actions must be (B={z_hist.shape[0]}, N, H, A), got {tuple(actions.shape)}")
            if actions.requires_grad and torch.is_grad_enabled():
                raise ValueError("SpeculativeObjective is forward-only (no gradient through accepted draft "
                                 "states); plan with the gradient planner on the default latent rollout objective")
            B, N, H, A = actions.shape
            z = z_hist.repeat_interleave(N, dim=0)  # (B N, L, D)
            p = None if past is None else past.repeat_interleave(N, dim=0)  # (B N, L-1, A)
            lat = speculative_rollout(model.predictor, draft, z, actions.reshape(B * N, H, A), p,
                                      gamma=gamma, epsilon=epsilon)  # (B N, H, D)
            return cost(lat.view(B, N, H, -1), actions)

        return objective
