"""forethought.objectives: prediction losses, collapse regularizers, EMA target, diagnostics."""

from forethought.objectives.diagnostics import collapse_diagnostics, effective_rank, per_dim_std
from forethought.objectives.ema import EMATarget, ema_momentum
from forethought.objectives.jepa import JEPALoss
from forethought.objectives.prediction import rollout_loss, teacher_forced_loss
from forethought.objectives.regularizer import (
    DEFAULT_WEIGHTS,
    REGULARIZERS,
    EMARegularizer,
    NoRegularizer,
    Regularizer,
    make_regularizer,
)
from forethought.objectives.sigreg import SIGReg, random_directions
from forethought.objectives.vicreg import VICReg, covariance_loss, variance_loss

__all__ = [
    "DEFAULT_WEIGHTS",
    "EMARegularizer",
    "EMATarget",
    "JEPALoss",
    "NoRegularizer",
    "REGULARIZERS",
    "Regularizer",
    "SIGReg",
    "VICReg",
    "collapse_diagnostics",
    "covariance_loss",
    "effective_rank",
    "ema_momentum",
    "make_regularizer",
    "per_dim_std",
    "random_directions",
    "rollout_loss",
    "teacher_forced_loss",
    "variance_loss",
]
