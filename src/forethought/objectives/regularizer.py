"""The collapse-regularizer interface and its factory.

A JEPA trained end to end can make the prediction loss zero by mapping every observation to the
same latent. One of these prevents it:

* ``sigreg`` (default): push the batch of embeddings toward N(0, I) (LeJEPA / LeWM).
* ``vicreg``: keep every dimension's std >= 1 and decorrelate dimensions.
* ``ema``: regress onto a slowly moving, stop-gradient copy of the encoder (BYOL / I-JEPA). It
  adds no term to the loss; the training loop builds the target with :meth:`EMARegularizer.make_target`.
* ``none``: nothing (to demonstrate collapse).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from forethought.objectives.ema import EMATarget
from forethought.objectives.sigreg import SIGReg
from forethought.objectives.vicreg import VICReg

REGULARIZERS = ("sigreg", "vicreg", "ema", "none")
# Default loss weights, from each class (SIGReg: 0.09 as LeWM's released config).
DEFAULT_WEIGHTS = {"sigreg": SIGReg.weight, "vicreg": VICReg.weight, "ema": 0.0, "none": 0.0}


@runtime_checkable
class Regularizer(Protocol):
    """``z (B, T, D) -> scalar`` (unweighted); the loss adds ``weight * value``."""

    name: str
    weight: float
    needs_target_encoder: bool

    def __call__(self, z: Tensor) -> Tensor: ...


class NoRegularizer(nn.Module):
    """Adds nothing; ``needs_target_encoder`` tells the loop whether to build an EMA target."""

    name = "none"
    needs_target_encoder = False
    weight = 0.0

    def forward(self, z: Tensor) -> Tensor:
        return z.new_zeros(())


class EMARegularizer(NoRegularizer):
    """Marker for the EMA target encoder, holding its momentum schedule."""

    name = "ema"
    needs_target_encoder = True

    def __init__(self, base_momentum: float = 0.996, final_momentum: float = 1.0) -> None:
        super().__init__()
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum

    def make_target(self, encoder: nn.Module, total_steps: int | None = None) -> EMATarget:
        return EMATarget(encoder, self.base_momentum, self.final_momentum, total_steps)


def make_regularizer(name: str, weight: float | None = None, **kwargs: Any) -> nn.Module:
    """Build the regularizer ``name`` with loss weight ``weight`` (default :data:`DEFAULT_WEIGHTS`).

    ``kwargs`` go to the constructor (e.g. ``num_projections=256`` for SIGReg).
    """
    builders: dict[str, type[nn.Module]] = {
        "sigreg": SIGReg,
        "vicreg": VICReg,
        "ema": EMARegularizer,
        "none": NoRegularizer,
    }
    if name not in builders:
        raise ValueError(f"Unknown regularizer {name!r}; available: {', '.join(REGULARIZERS)}")
    try:
        reg = builders[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for regularizer {name!r}: {e}") from e
    w = DEFAULT_WEIGHTS[name] if weight is None else float(weight)
    if w < 0:
        raise ValueError(f"regularizer weight must be >= 0, got {w}")
    reg.weight = w
    return reg
