"""forethought.policies: goal-conditioned policies that act in one forward pass.

Model-free, from the reward-free dataset with hindsight goals: GCBC, GCIQL and GCIVL. Model-based:
the imagination policy, trained only through a frozen world model (Dyna). All are a
:class:`GoalPolicy` (the world model's encoder architecture + an action head), saved as a folder.

>>> from forethought.policies import GoalPolicy, PolicyTrainConfig, train_policy
>>> train_policy(PolicyTrainConfig(method="gcbc", model="runs/tworoom", out="runs/tworoom-gcbc"))
>>> policy = GoalPolicy.from_pretrained("runs/tworoom-gcbc/model")
>>> action = policy.act(obs, goal_obs)   # (B, A) normalized model actions

Names are imported on first use (the CLI reads the options without importing torch).
"""

from forethought._lazy import lazy_exports

_EXPORTS = {
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
    "ImaginationProposal": "forethought.policies.imagination",
    "policy_rollout": "forethought.policies.imagination",
    "PolicyTrainConfig": "forethought.policies.config",
    "train_policy": "forethought.policies.train_policy",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
