"""forethought.policies: decision makers trained from data, beside the planners (layer 6).

* The diffusion **action proposal** of factorized planning (DMPC, docs/adaptation.md): a behaviour
  prior over chunks of model actions conditioned on the frozen encoder's latents, saved apart from
  the world model, refused next to a model with another action space or encoder; it plugs into
  the planners through :class:`forethought.planning.protocols.Proposal`.
* **Goal-conditioned policies** that act in one forward pass (docs/policies.md): model-free from
  the reward-free dataset with hindsight goals (GCBC, GCIQL, GCIVL), or trained only through a
  frozen world model (the imagination policy, Dyna). Each is a :class:`GoalPolicy` (the world
  model's encoder architecture + an action head), saved as a folder.

>>> from forethought.policies import load_proposal, GoalPolicy
>>> proposal = load_proposal("runs/reacher_proposal", model)      # refuses a mismatched model
>>> chunks = proposal.sample(z, goal_z, n=64)                      # (B, 64, F, A) normalized model actions
>>> policy = GoalPolicy.from_pretrained("runs/tworoom-gcbc/model")
>>> action = policy.act(obs, goal_obs)                             # (B, A) normalized model actions

Names are imported on first use, so the CLI reads the options without importing torch.
"""

from forethought._lazy import lazy_exports

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
    "GoalPolicy": "forethought.policies.goal_policy",
    "GoalPolicyConfig": "forethought.policies.goal_policy",
    "is_policy_folder": "forethought.policies.goal_policy",
    "GoalDataset": "forethought.policies.hindsight",
    "GoalSampling": "forethought.policies.hindsight",
    "GCBCObjective": "forethought.policies.gcbc",
    "GCIQLConfig": "forethought.policies.gciql",
    "GCIQLObjective": "forethought.policies.gciql",
    "ImaginationConfig": "forethought.policies.imagination",
    "ImaginationObjective": "forethought.policies.imagination",
    "ImaginationWarmStart": "forethought.policies.imagination",
    "policy_rollout": "forethought.policies.imagination",
    "PolicyTrainConfig": "forethought.policies.config",
    "train_policy": "forethought.policies.train_policy",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
