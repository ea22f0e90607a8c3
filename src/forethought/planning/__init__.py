"""forethought.planning: costs over imagined latents and planners that minimise them.

>>> from forethought.planning import LatentGoalObjective, make_planner
>>> planner = make_planner("cem", samples=300, iterations=30, seed=0)
>>> objective = LatentGoalObjective(model, "l2", bf16=True)(z_hist, a_hist, goal_z)
>>> result = planner.plan(objective, init=torch.zeros(B, H, A), low=low, high=high)
>>> result.actions  # (B, H, A), normalized model actions inside [low, high]

A planner sees only the objective and the bounds: no model class, simulator or success flag.
Sample-score-rank (``make_planner("ssr", samples=256, proposal=proposal)``) and CEM / MPPI with a
proposal also see the decision's latents through ``condition(z_hist, a_hist, goal_z)``.
"""

from forethought.planning.cem import CEM, CEMConfig
from forethought.planning.costs import goal_cost
from forethought.planning.factory import PLANNERS, make_planner
from forethought.planning.gradient import GradientConfig, GradientPlanner
from forethought.planning.mppi import MPPI, MPPIConfig
from forethought.planning.objectives import CostSpec, LatentGoalObjective, ObjectiveFactory
from forethought.planning.protocols import ConditionedPlanner, Cost, Objective, PlanResult, Planner, Proposal
from forethought.planning.shooting import RandomShooting, ShootingConfig
from forethought.planning.ssr import ProposalPolicy, ProposalPolicyConfig, SampleScoreRank, SSRConfig

__all__ = [
    "CEM",
    "MPPI",
    "PLANNERS",
    "CEMConfig",
    "ConditionedPlanner",
    "Cost",
    "CostSpec",
    "GradientConfig",
    "GradientPlanner",
    "LatentGoalObjective",
    "MPPIConfig",
    "Objective",
    "ObjectiveFactory",
    "PlanResult",
    "Planner",
    "Proposal",
    "ProposalPolicy",
    "ProposalPolicyConfig",
    "RandomShooting",
    "SSRConfig",
    "SampleScoreRank",
    "ShootingConfig",
    "goal_cost",
    "make_planner",
]
