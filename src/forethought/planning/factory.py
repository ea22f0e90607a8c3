"""``make_planner(name, **settings)``: planners by name, for configs and the CLI."""

from __future__ import annotations

from typing import Any

from forethought.planning.cem import CEM, CEMConfig
from forethought.planning.gradient import GradientConfig, GradientPlanner
from forethought.planning.mppi import MPPI, MPPIConfig
from forethought.planning.protocols import Planner
from forethought.planning.shooting import RandomShooting, ShootingConfig

PLANNERS: dict[str, tuple[type, type]] = {
    "cem": (CEM, CEMConfig),
    "mppi": (MPPI, MPPIConfig),
    "gradient": (GradientPlanner, GradientConfig),
    "random": (RandomShooting, ShootingConfig),
}


def make_planner(name: str, **settings: Any) -> Planner:
    """A planner by name (``cem``, ``mppi``, ``gradient``, ``random``) with its config fields as
    keyword arguments, e.g. ``make_planner("cem", samples=300, iterations=30, seed=0)``."""
    if name not in PLANNERS:
        raise ValueError(f"Unknown planner {name!r}; available: {', '.join(PLANNERS)}")
    cls, config_cls = PLANNERS[name]
    try:
        config = config_cls(**settings)
    except TypeError as e:
        fields = ", ".join(config_cls.__dataclass_fields__)
        raise ValueError(f"bad settings for planner {name!r}: {e}; its fields are: {fields}") from e
    return cls(config)
