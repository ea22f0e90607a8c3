"""Forethought: world models that plan.

Observe, encode, predict, imagine, plan, act, measure surprise, remember, update.
Subpackages are layered; lower layers never import higher ones::

    envs -> data -> models -> objectives -> training -> planning -> agent, speculative -> surprise
    -> evaluation -> cli   (docs/conventions.md, "Layers"; enforced by tests/test_layers.py)

Importing ``forethought`` is cheap: subpackages load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
