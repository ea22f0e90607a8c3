"""``make_planner(name, **settings)``: planners by name, for configs and the CLI."""

from __future__ import annotations

from typing import Any

from forethought.planning.cem import CEM, CEMConfig
from forethought.planning.gradient import GradientConfig, GradientPlanner
from forethought.planning.mppi import MPPI, MPPIConfig
from forethought.planning.protocols import Planner, Proposal
from forethought.planning.shooting import RandomShooting, ShootingConfig
from forethought.planning.ssr import ProposalPolicy, ProposalPolicyConfig, SampleScoreRank, SSRConfig

PLANNERS: dict[str, tuple[type, type]] = {
    "cem": (CEM, CEMConfig),
    "mppi": (MPPI, MPPIConfig),
    "gradient": (GradientPlanner, GradientConfig),
    "random": (RandomShooting, ShootingConfig),
    "ssr": (SampleScoreRank, SSRConfig),
    "proposal": (ProposalPolicy, ProposalPolicyConfig),
}
PROPOSAL_PLANNERS = ("ssr", "proposal", "cem", "mppi")  # the planners that sample from a proposal
NEEDS_PROPOSAL = ("ssr", "proposal")


def make_planner(name: str, proposal: Proposal | None = None, proposal_steps: int | None = None,
                 **settings: Any) -> Planner:
    """A planner by name (``cem``, ``mppi``, ``gradient``, ``random``, ``ssr``, ``proposal``) with its config fields as
    keyword arguments, e.g. ``make_planner("cem", samples=300, iterations=30, seed=0)``.

    ``proposal``: the action proposal SSR samples from, or CEM / MPPI's first population;
    ``proposal_steps`` overrides its denoising steps per sample.
    """
    if name not in PLANNERS:
        raise ValueError(f"Unknown planner {name!r}; available: {', '.join(PLANNERS)}")
    cls, config_cls = PLANNERS[name]
    try:
        config = config_cls(**settings)
    except TypeError as e:
        fields = ", ".join(config_cls.__dataclass_fields__)
        raise ValueError(f"bad settings for planner {name!r}: {e}; its fields are: {fields}") from e
    planner = cls(config)
    if name in NEEDS_PROPOSAL and proposal is None:
        raise ValueError(f"planner {name!r} samples from an action proposal: pass proposal= (the CLI: --proposal DIR, "
                         "trained with `forethought train-proposal`)")
    if proposal is not None:
        if name not in PROPOSAL_PLANNERS:
            raise ValueError(f"planner {name!r} takes no proposal; the ones that do: {', '.join(PROPOSAL_PLANNERS)}")
        planner.set_proposal(proposal, proposal_steps)
    return planner
