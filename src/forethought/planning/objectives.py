"""Objective factories: what an agent asks for at each decision, and the default one.

An agent plans by handing a planner an :data:`~forethought.planning.protocols.Objective` (a cost of
whole action sequences). Building it is the agent's only point of contact with *how* candidates are
imagined and scored, so that part is a plug-in: an :class:`ObjectiveFactory` takes the encoded
latent history and the goal latent of this decision and returns the objective. The default,
:class:`LatentGoalObjective`, rolls every candidate of every episode through the world model's
KV-cached predictor in one batch and scores the imagined latents by their distance to the goal.
Others (speculative rollouts, :class:`forethought.speculative.SpeculativeObjective`; a learned
reward; a readout of states) plug in the same way, with no change to the agent or the planners.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from forethought.data.normalization import Normalizer
from forethought.models.fast_rollout import CandidateRollout
from forethought.models.protocols import LatentWorldModel
from forethought.models.rollout import rollout_candidates
from forethought.planning.costs import goal_cost
from forethought.planning.protocols import Cost, Objective

CostSpec = str | Callable[[Tensor], Cost]
"""``"l1"``/``"l2"`` (distance to the goal latent) or ``make_cost(goal_z (B, D)) -> Cost``."""


@runtime_checkable
class ObjectiveFactory(Protocol):
    """Builds the objective of one decision from what the agent has encoded (never from the env).

    Optional: a ``reset()`` method, which the agent calls when new episodes start (a factory with
    per-episode state, e.g. :class:`forethought.agent.subgoals.SubgoalObjective`).
    """

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        """``z_hist (B, L, D)``: latents of the last ``L <= h`` model frames; ``a_hist (B, L-1, A)``:
        the normalized model actions between them (``None`` when ``L = 1``); ``goal_z (B, D)`` ->
        ``objective(actions (B, N, H, A)) -> (B, N)``."""
        ...


def make_cost(goal_z: Tensor, cost: CostSpec, reduce: str, terminal_weight: float) -> Cost:
    """The :data:`Cost` toward ``goal_z (B, D)`` that ``cost`` names (or builds, if it is a callable)."""
    if callable(cost):
        return cost(goal_z)
    return goal_cost(goal_z, cost, reduce, terminal_weight)


def check_cost_spec(cost: CostSpec, reduce: str, terminal_weight: float) -> None:
    """Fail at construction, not at the first decision, on a bad cost setting."""
    if callable(cost):
        if terminal_weight:
            raise ValueError("terminal_weight applies to the named costs ('l1', 'l2'); fold it into your cost callable")
        return
    goal_cost(torch.zeros(1, 1), cost, reduce, terminal_weight)


class LatentGoalObjective:
    """The default factory: ``cost(rollout(z_hist, a_hist, actions), actions)`` toward the goal latent.

    Args:
        model: a :class:`~forethought.models.WorldModel` (its ``predictor`` is rolled out).
        cost: ``"l2"`` (mean squared latent distance, LeWM), ``"l1"`` (V-JEPA 2-AC), or
            ``make_cost(goal_z (B, D)) -> Cost`` for any other objective given at run time.
        reduce: ``"sum"`` over the horizon (arrive early and stay) or ``"last"`` step only.
        terminal_weight: with ``"sum"``, extra weight on the last step (0: the plain sum).
        bf16: run the rollout in bfloat16 (weights cast once; latents and costs stay float32).
        compile: ``torch.compile`` the rollout (:class:`~forethought.models.fast_rollout.CandidateRollout`):
            for long-running agents and benchmarks; each new shape compiles first (tens of seconds).
        compile_mode: ``torch.compile``'s mode with ``compile``, e.g. ``"max-autotune"`` (minutes to compile).
        fast: ``False`` runs the reference rollout that repeats the history per candidate (benchmarks).
        coast: model steps of the **rest action** (zero env action, normalized with the model's
            statistics) appended to every candidate and scored with it: a plan that reaches the goal
            with speed and would run past it pays for the overshoot (a braking term for force-driven
            bodies such as PointMaze's ball). 0 (default) scores the candidate's own steps only.
    """

    def __init__(self, model: LatentWorldModel, cost: CostSpec = "l2", reduce: str = "sum", terminal_weight: float = 0.0, *,
                 bf16: bool = False, compile: bool = False, compile_mode: str | None = None, fast: bool = True,
                 coast: int = 0) -> None:
        check_cost_spec(cost, reduce, terminal_weight)
        if compile and not fast:
            raise ValueError("compile=True compiles the fast rollout; it cannot be combined with fast=False")
        if not (isinstance(coast, int) and coast >= 0):
            raise ValueError(f"coast must be an int >= 0 model steps, got {coast!r}")
        self.model, self.cost, self.reduce, self.terminal_weight = model, cost, reduce, float(terminal_weight)
        self.bf16, self.compile, self.fast, self.coast = bf16, compile, fast, coast
        self._rest = rest_action(model) if coast else None  # (A,) normalized zero env action
        dtype = torch.bfloat16 if bf16 else torch.float32
        self._rollout = CandidateRollout(model.predictor, dtype, compile, compile_mode)  # persists across decisions

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        if z_hist.ndim != 3 or goal_z.ndim != 2 or goal_z.shape[0] != z_hist.shape[0]:
            raise ValueError(f"need z_hist (B, L, D) and goal_z (B, D), got {tuple(z_hist.shape)}, {tuple(goal_z.shape)}")
        cost = make_cost(goal_z, self.cost, self.reduce, self.terminal_weight)
        if a_hist is not None and a_hist.shape[1] == 0:
            a_hist = None

        def objective(actions: Tensor) -> Tensor:
            if self.coast:  # (B, N, H + coast, A): each candidate, then the body left to itself
                rest = self._rest.to(actions).expand(*actions.shape[:2], self.coast, actions.shape[-1])
                actions = torch.cat([actions, rest], dim=2)
            if self.fast:
                latents = self._rollout(z_hist, actions, a_hist)  # (B, N, H, D) float32
            else:
                ctx = torch.autocast(z_hist.device.type, torch.bfloat16) if self.bf16 else contextlib.nullcontext()
                with ctx:
                    latents = rollout_candidates(self.model.predictor, z_hist, actions, a_hist, fast=False)
            return cost(latents.float(), actions)

        return objective

    def describe(self) -> dict[str, Any]:
        """JSON-safe settings, for reports."""
        return {"kind": "latent_goal", "cost": self.cost if isinstance(self.cost, str) else "custom",
                "reduce": self.reduce, "terminal_weight": self.terminal_weight, "bf16": self.bf16,
                "compile": self.compile, "fast": self.fast, "coast": self.coast}


def rest_action(model: LatentWorldModel) -> Tensor:
    """The model action ``(A,)`` of zero env action in every frameskip slot, normalized like the data."""
    if not getattr(model, "normalization", None):
        raise ValueError("coast needs the model's action statistics (a model saved by forethought train)")
    return Normalizer.from_dict(model.normalization).normalize_action(torch.zeros(model.action_dim))


def readout_cost(model: LatentWorldModel, goal_z: Tensor, weights: Sequence[float], reduce: str = "sum",
                 latent_weight: float = 0.0) -> Cost:
    """A cost in estimated *state* space: the model's readout head applied to imagined and goal latents.

    ``cost = sum_s w_s (r(z)_s - r(goal_z)_s)^2`` over the normalized state dims ``s`` (summed over
    the horizon or on its last step), plus ``latent_weight`` times the mean squared latent distance.
    The readout (``WorldModel.read_state``) was trained on the dataset's true states (privileged
    supervision, ``forethought train --state-weight``); at planning time it only reads latents of
    observations, so the agent still sees observations and the goal image only. The weights choose
    what matters (PushT: the block's x, y and angle, not the agent).
    """
    if getattr(model, "readout", None) is None:
        raise ValueError("the readout objective needs a model trained with --state-weight > 0 (it has no readout head)")
    w = torch.as_tensor(list(weights), dtype=torch.float32, device=goal_z.device)
    if w.ndim != 1 or w.numel() != model.readout.out_features or bool((w < 0).any()):
        raise ValueError(f"state weights must be {model.readout.out_features} numbers >= 0 (one per state dim), "
                         f"got {list(weights)}")
    goal_s = model.readout(goal_z.float())  # (B, S)
    latent = goal_cost(goal_z, "l2", reduce) if latent_weight else None

    def cost(latents: Tensor, actions: Tensor) -> Tensor:
        per_step = ((model.readout(latents) - goal_s[:, None, None]).pow(2) * w).sum(-1)  # (B, N, H)
        total = per_step[..., -1] if reduce == "last" else per_step.sum(-1)
        return total + latent_weight * latent(latents, actions) if latent is not None else total

    return cost
