"""What a planner sees, and what it returns (docs/design.md "Core interfaces").

A planner minimises an :data:`Objective` over action sequences inside a box. It never sees a
model class, a simulator, a true state or a success flag: the objective closes over the world
model, the current latent history and the goal latent (see :mod:`forethought.planning.costs`).

Shapes (docs/conventions.md): ``B`` episodes, ``N`` candidates, horizon ``H``, model action dim
``A`` (normalized, frameskip-concatenated); candidates ``(B, N, H, A)``, costs ``(B, N)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

Cost = Callable[[Tensor, Tensor], Tensor]
"""``cost(latents (B, N, H, D), actions (B, N, H, A)) -> (B, N)``; lower is better."""

Objective = Callable[[Tensor], Tensor]
"""``objective(actions (B, N, H, A)) -> (B, N)``: a cost of whole action sequences."""


@dataclass(frozen=True)
class PlanResult:
    """The outcome of one :meth:`Planner.plan` call.

    Attributes:
        actions: ``(B, H, A)`` the best sequence found per episode (inside the bounds).
        cost: ``(B,)`` its objective value.
        trace: ``(iterations, B)`` best cost found so far after each iteration that ran (fewer than
            configured when an anytime planner ran out of time).
        evaluations: candidate sequences evaluated per episode (the budget actually spent;
            a gradient step counts as one evaluation per sequence, its backward pass aside).
    """

    actions: Tensor
    cost: Tensor
    trace: Tensor
    evaluations: int


@runtime_checkable
class Planner(Protocol):
    """Minimises an objective over ``(B, H, A)`` action sequences in the box ``[low, high]``.

    Batched over episodes and candidates: the objective is called with ``(B, N, H, A)``, never
    with one episode or one candidate at a time, and each episode keeps its own statistics.
    """

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor) -> PlanResult:
        """Plan from ``init (B, H, A)`` (zeros, the mean normalized action, for a cold start; the
        previous plan shifted by the executed steps for a warm start), with ``low``/``high``
        ``(A,)`` bounds; returns actions ``(B, H, A)`` with ``low <= a <= high``.

        Anytime planners (all built-in ones) also take a keyword ``deadline``: a
        ``time.perf_counter()`` value after which no new iteration starts unless none has run yet
        (:func:`forethought.planning.common.anytime`); the best plan found so far is returned and
        ``PlanResult.trace`` has one row per iteration that ran. Agents pass it only when given a
        real-time budget, so a planner without it still works everywhere else.
        """
        ...


@runtime_checkable
class Proposal(Protocol):
    """A distribution over action chunks given the decision's context (DMPC's action proposal, e.g.
    :class:`forethought.policies.DiffusionProposal`). Planners sample candidates from it.

    ``horizon``: model steps ``F`` per chunk; ``conditioned_on_goal``: whether ``goal_z`` is used.
    """

    horizon: int

    @property
    def conditioned_on_goal(self) -> bool: ...

    def sample(self, z: Tensor | None, goal_z: Tensor | None = None, n: int = 1, *,
               generator: torch.Generator | None = None, steps: int | None = None) -> Tensor:
        """``z (B, D)`` current latents, ``goal_z (B, D)`` or ``None`` -> ``(B, n, F, A)`` normalized model actions."""
        ...


@runtime_checkable
class ConditionedPlanner(Protocol):
    """A planner that needs the decision's context besides the objective (one sampling from a proposal).

    :class:`~forethought.agent.MPCAgent` calls ``condition`` before every ``plan`` when the planner
    has it; the planner still never sees a model, a simulator or a success flag.
    """

    def condition(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> None:
        """``z_hist (B, L, D)``, ``a_hist (B, L-1, A)`` or ``None``, ``goal_z (B, D)`` of this decision."""
        ...


@runtime_checkable
class CandidateDynamics(Protocol):
    """How an objective imagines candidates' futures (the dynamics half of DMPC's factorization).

    The world model's predictor, rolled out one step at a time
    (:class:`forethought.models.fast_rollout.CandidateRollout`, what :class:`LatentGoalObjective
    <forethought.planning.objectives.LatentGoalObjective>` uses), and a multi-step diffusion model
    sampling ``F`` steps at once (:class:`forethought.planning.diffusion_dynamics.DiffusionDynamicsObjective`
    wraps one) both fit it; an objective scores what it returns with any :data:`Cost`.
    """

    def __call__(self, z_hist: Tensor, actions: Tensor, a_hist: Tensor | None = None) -> Tensor:
        """``z_hist (B, L, D)``, ``actions (B, N, H, A)`` normalized, ``a_hist (B, L-1, A)`` or ``None``
        -> imagined latents ``(B, N, H, D)`` (``actions[:, :, 0]`` leaves the last history latent)."""
        ...
