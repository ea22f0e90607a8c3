"""forethought.policies: decision makers trained from data, beside the planners (layer 6).

Today: the diffusion **action proposal** of factorized planning (DMPC, docs/adaptation.md), a
behaviour prior over chunks of model actions conditioned on the frozen encoder's latents. It is
saved apart from the world model, refuses a model with another action space or encoder, and
plugs into the planners through :class:`forethought.planning.protocols.Proposal`.

>>> from forethought.policies import load_proposal
>>> proposal = load_proposal("runs/reacher_proposal", model)      # refuses a mismatched model
>>> chunks = proposal.sample(z, goal_z, n=64)                      # (B, 64, F, A) normalized model actions
"""

from forethought._lazy import lazy_exports

# Loaded on first access, so that importing `forethought.policies.arguments` for the CLI does not import torch.
_EXPORTS = {
    "DiffusionProposal": "forethought.policies.proposal",
    "ProposalConfig": "forethought.policies.proposal",
    "ProposalMismatchError": "forethought.policies.proposal",
    "check_proposal_for": "forethought.policies.proposal",
    "load_proposal": "forethought.policies.proposal",
    "save_proposal": "forethought.policies.proposal",
    "ChunkDataset": "forethought.policies.training",
    "fit_proposal": "forethought.policies.training",
    "train_proposal": "forethought.policies.training",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
