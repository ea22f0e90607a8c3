"""Sample-score-rank (SSR), the planner of Diffusion Model Predictive Control (Zhou et al. 2025, sec. 3).

Per episode: draw ``samples`` action chunks from the proposal given the current latent (and the
goal latent), score all of them with the objective (the dynamics rollouts and the cost, one batch),
keep the best; ``iterations`` repeats with fresh samples. No refitting: the proposal is the whole
search distribution, so SSR costs ``samples * iterations`` evaluations plus ``iterations``
proposal calls (each ``steps`` denoiser calls on ``B * samples`` chunks). The initial plan (the
previous plan shifted, at a warm start) is candidate 0, so a good plan is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.planning.common import Best, Seeded, check_problem, score_candidates
from forethought.planning.proposal import ProposalSampling
from forethought.planning.protocols import Objective, PlanResult


@dataclass(frozen=True)
class SSRConfig:
    """SSR settings; the budget is ``samples * iterations`` evaluations per episode.

    Attributes:
        samples: candidates per objective call (the initial plan is the first one).
        iterations: objective calls, each with fresh proposal samples.
        seed: seed of the planner's random stream (the proposal's sampling noise).
    """

    samples: int = 256
    iterations: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 2 or self.iterations < 1:
            raise ValueError(f"SSR needs samples >= 2 and iterations >= 1, got {self.samples}, {self.iterations}")


class SampleScoreRank(ProposalSampling, Seeded):
    """Proposal samples -> objective -> the best plan per episode (``set_proposal`` first)."""

    config_class = SSRConfig
    config: SSRConfig

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner`; needs ``condition`` first."""
        cfg = self.config
        init, low, high = check_problem(init, low, high)
        B, H, A = init.shape
        gen = self.generator(init.device)
        best = Best(init)
        with torch.inference_mode():
            for _ in range(cfg.iterations):
                cand = self.proposal_candidates(cfg.samples - 1, gen, low, high, B, H)
                cand = torch.cat([best.actions[:, None], cand], dim=1)  # (B, samples, H, A)
                best.update(cand, score_candidates(objective, cand))
                best.end_iteration()
        return PlanResult(best.actions.clone(), best.cost.clone(), torch.stack(best.trace), cfg.samples * cfg.iterations)


@dataclass(frozen=True)
class ProposalPolicyConfig:
    """The proposal as a policy: one sample per decision, never scored.

    Attributes:
        seed: seed of the planner's random stream (the proposal's sampling noise).
    """

    seed: int = 0


class ProposalPolicy(ProposalSampling, Seeded):
    """DMPC's "proposal alone" baseline: each decision executes one proposal sample as it is (no dynamics, no
    objective: 0 evaluations). With ``receding = horizon`` the whole chunk runs open loop before the next sample."""

    config_class = ProposalPolicyConfig
    config: ProposalPolicyConfig

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner`; ``objective`` is not called."""
        init, low, high = check_problem(init, low, high)
        B, H, _ = init.shape
        with torch.inference_mode():
            actions = self.proposal_candidates(1, self.generator(init.device), low, high, B, H)[:, 0]
        nan = torch.full((B,), float("nan"), device=init.device)
        return PlanResult(actions.clone(), nan, nan[None], 0)
