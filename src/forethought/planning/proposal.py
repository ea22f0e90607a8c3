"""Planners that sample candidates from an action proposal: the shared part (DMPC, docs/adaptation.md).

A proposal (:class:`~forethought.planning.protocols.Proposal`) needs the decision's context (the
current latent and the goal latent), which the planner protocol's ``plan(objective, ...)`` does not
carry; so these planners have ``condition(z_hist, a_hist, goal_z)``, which the MPC agent calls
before every ``plan``. Planning never imports a proposal class: any object with the protocol works.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forethought.planning.protocols import Proposal


class ProposalSampling:
    """Mixin: holds an optional proposal and the context of the current decision."""

    proposal: Proposal | None = None
    _context: tuple[Tensor, Tensor | None] | None = None
    proposal_steps: int | None = None  # denoising steps per sample (None: the proposal's own)

    def set_proposal(self, proposal: Proposal | None, steps: int | None = None) -> None:
        """Sample candidates from ``proposal`` (``None`` removes it); ``steps`` overrides its sampling steps."""
        if proposal is not None and not callable(getattr(proposal, "sample", None)):
            raise TypeError(f"a proposal needs sample(z, goal_z, n, generator=...), got {type(proposal).__name__}")
        self.proposal, self.proposal_steps, self._context = proposal, steps, None

    def condition(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> None:
        """Remember the current latent ``z_hist[:, -1] (B, D)`` and ``goal_z (B, D)`` for the next ``plan``."""
        self._context = (z_hist[:, -1], goal_z)

    def proposal_candidates(self, n: int, generator: torch.Generator, low: Tensor, high: Tensor,
                            batch: int, horizon: int) -> Tensor:
        """``(B, n, H, A)`` chunks from the proposal for the conditioned decision, clamped to the bounds."""
        if self.proposal is None:
            raise ValueError(f"{type(self).__name__} has no proposal: set_proposal(proposal) (the CLI: --proposal DIR)")
        if self._context is None:
            raise ValueError(f"{type(self).__name__}: call condition(z_hist, a_hist, goal_z) before plan() (MPCAgent "
                             "does): the proposal samples given the current latent")
        z, goal = self._context
        if z.shape[0] != batch:
            raise ValueError(f"the conditioned decision has {z.shape[0]} episodes, plan() got {batch}")
        if self.proposal.horizon != horizon:
            raise ValueError(f"the proposal samples chunks of {self.proposal.horizon} model steps, the plan has "
                             f"{horizon}: plan with horizon {self.proposal.horizon} or train a proposal with "
                             f"--horizon {horizon}")
        goal = goal if getattr(self.proposal, "conditioned_on_goal", False) else None
        chunks = self.proposal.sample(z, goal, n, generator=generator, steps=self.proposal_steps)
        return chunks.to(low.dtype).clamp(low, high)
