"""Planning with multi-step diffusion dynamics: the objective factory behind `forethought eval --dynamics DIR`.

DMPC's dynamics half (Zhou et al. 2025): candidates are imagined by a diffusion model that samples
``F`` future latents at once (:class:`~forethought.models.diffusion_dynamics.DiffusionDynamics`,
trained with ``forethought train-dynamics``) instead of the world model's predictor stepping one
latent at a time; the cost is the same (the distance to the goal latent, or any :data:`CostSpec`),
so any planner works unchanged: CEM, MPPI, random shooting, SSR over an action proposal.

Each objective call is one denoising pass over the whole candidate set (``sample_steps`` denoiser
calls on ``B * N`` sequences, times ``ceil(H / F)`` chunks when the horizon is longer than ``F``).
Sampling is deterministic given its noise, and the noise is fixed per decision: drawn from a
generator seeded with ``(seed, decision)`` at every call, and shared by the candidates of an
episode (common random numbers), so a candidate scores the same whenever it is evaluated in a
decision, and two candidates differ by their actions only.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import Tensor

from forethought.models.diffusion_dynamics import DiffusionDynamics, check_dynamics_for
from forethought.models.protocols import LatentWorldModel
from forethought.planning.objectives import CostSpec, check_cost_spec, make_cost
from forethought.planning.protocols import Objective

SEED_STRIDE = 1_000_003  # decision d of seed s draws its noise from seed s * SEED_STRIDE + d


class DiffusionRollout:
    """A :class:`~forethought.planning.protocols.CandidateDynamics` over diffusion dynamics with fixed noise:
    ``(z_hist (B, L, D), actions (B, N, H, A), a_hist) -> (B, N, H, D)``, the same output at every call.

    Args:
        dynamics: a :class:`~forethought.models.diffusion_dynamics.DiffusionDynamics`.
        seed: seed of the noise, drawn afresh from it at every call.
        steps: DDIM steps per chunk (default: the dynamics' ``sample_steps``).
        shared_noise: the candidates of an episode start from the same noise.
        bf16: run the denoiser under bfloat16 autocast.
    """

    def __init__(self, dynamics: DiffusionDynamics, seed: int = 0, steps: int | None = None,
                 shared_noise: bool = True, bf16: bool = False) -> None:
        self.dynamics, self.seed, self.steps = dynamics, int(seed), steps or dynamics.config.sample_steps
        self.shared_noise, self.bf16 = shared_noise, bf16
        self.denoiser_calls = 0  # so far, each on all B * N sequences of a call

    def __call__(self, z_hist: Tensor, actions: Tensor, a_hist: Tensor | None = None) -> Tensor:
        gen = torch.Generator(device=actions.device).manual_seed(self.seed)
        ctx = torch.autocast(actions.device.type, torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with ctx:
            latents = self.dynamics.rollout(z_hist, actions.detach(), a_hist, generator=gen, steps=self.steps,
                                            shared_noise=self.shared_noise)
        self.denoiser_calls += self.steps * math.ceil(actions.shape[2] / self.dynamics.horizon)
        return latents.float()


class DiffusionDynamicsObjective:
    """An :class:`~forethought.planning.objectives.ObjectiveFactory`: ``cost(dynamics.rollout(...), actions)``.

    Args:
        model: the world model whose latent space the dynamics live in (checked: same encoder, same
            action space); it encodes observations and goals, its predictor is not used.
        dynamics: a :class:`~forethought.models.diffusion_dynamics.DiffusionDynamics`.
        cost, reduce, terminal_weight: as :class:`~forethought.planning.objectives.LatentGoalObjective`.
        steps: DDIM steps per chunk (default: the dynamics' ``sample_steps``).
        seed: seed of the sampling noise (each decision draws from its own stream).
        shared_noise: the candidates of an episode start from the same noise (default).
        bf16: run the denoiser under bfloat16 autocast (latents and costs stay float32).
    """

    def __init__(self, model: LatentWorldModel, dynamics: DiffusionDynamics, cost: CostSpec = "l2",
                 reduce: str = "sum", terminal_weight: float = 0.0, *, steps: int | None = None, seed: int = 0,
                 shared_noise: bool = True, bf16: bool = False) -> None:
        check_cost_spec(cost, reduce, terminal_weight)
        if isinstance(dynamics, DiffusionDynamics):
            check_dynamics_for(dynamics, model)
        if steps is not None and not 1 <= steps <= dynamics.config.diffusion_steps:
            raise ValueError(f"steps must be in [1, {dynamics.config.diffusion_steps}] (the dynamics' diffusion steps), "
                             f"got {steps}")
        self.model, self.dynamics = model, dynamics.eval()
        self.cost, self.reduce, self.terminal_weight = cost, reduce, float(terminal_weight)
        self.steps = steps or dynamics.config.sample_steps
        self.seed, self.shared_noise, self.bf16 = int(seed), bool(shared_noise), bool(bf16)
        self.decisions = 0  # since the last reset: the noise stream of the next decision
        self.denoiser_calls = 0  # denoiser calls so far (each on all B * N sequences of a call)

    def reset(self) -> None:
        """New episodes start: the decisions' noise streams start again (reproducible per batch)."""
        self.decisions = 0

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        if z_hist.ndim != 3 or goal_z.ndim != 2 or goal_z.shape[0] != z_hist.shape[0]:
            raise ValueError(f"need z_hist (B, L, D) and goal_z (B, D), got {tuple(z_hist.shape)}, {tuple(goal_z.shape)}")
        cost = make_cost(goal_z, self.cost, self.reduce, self.terminal_weight)
        if a_hist is not None and a_hist.shape[1] == 0:
            a_hist = None
        rollout = DiffusionRollout(self.dynamics, self.seed * SEED_STRIDE + self.decisions, self.steps,
                                   self.shared_noise, self.bf16)  # this decision's noise, the same at every call
        self.decisions += 1

        def objective(actions: Tensor) -> Tensor:
            latents = rollout(z_hist, actions, a_hist)
            self.denoiser_calls += self.steps * math.ceil(actions.shape[2] / self.dynamics.horizon)
            return cost(latents, actions)

        return objective

    def describe(self) -> dict[str, Any]:
        """JSON-safe settings, for reports."""
        cfg = self.dynamics.config
        return {"kind": "diffusion_dynamics", "horizon_F": cfg.horizon, "history": cfg.history, "steps": self.steps,
                "prediction": cfg.prediction, "shared_noise": self.shared_noise, "seed": self.seed,
                "cost": self.cost if isinstance(self.cost, str) else "custom", "reduce": self.reduce,
                "terminal_weight": self.terminal_weight, "bf16": self.bf16}
