"""forethought.policies: decision makers trained from data, beside the planners (layer 6).

Today: the diffusion **action proposal** of factorized planning (DMPC, docs/adaptation.md), a
behaviour prior over chunks of model actions conditioned on the frozen encoder's latents. It is
saved apart from the world model, refuses a model with another action space or encoder, and
plugs into the planners through :class:`forethought.planning.protocols.Proposal`.

>>> from forethought.policies import load_proposal
>>> proposal = load_proposal("runs/reacher_proposal", model)      # refuses a mismatched model
>>> chunks = proposal.sample(z, goal_z, n=64)                      # (B, 64, F, A) normalized model actions
"""

from forethought.policies.proposal import (
    DiffusionProposal,
    ProposalConfig,
    ProposalMismatchError,
    check_proposal_for,
    load_proposal,
    save_proposal,
)
from forethought.policies.training import ChunkDataset, fit_proposal, train_proposal

__all__ = [
    "ChunkDataset",
    "DiffusionProposal",
    "ProposalConfig",
    "ProposalMismatchError",
    "check_proposal_for",
    "fit_proposal",
    "load_proposal",
    "save_proposal",
    "train_proposal",
]
