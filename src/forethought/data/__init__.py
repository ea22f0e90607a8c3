"""forethought.data: the episode store, collection, windows and normalization.

Names are imported on first use, so that ``import forethought.data.collect`` in a spawned
collection worker does not pay for torch (only ``windows`` needs it). The collection engine is ``forethought.data.collect.collect``
(not re-exported here: the submodule and the function share the name ``collect``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Episode": "forethought.data.episode",
    "EpisodeStore": "forethought.data.store",
    "DatasetError": "forethought.data.store",
    "NormStats": "forethought.data.normalization",
    "Normalizer": "forethought.data.normalization",
    "WindowDataset": "forethought.data.windows",
    "split_episodes": "forethought.data.windows",
    "moving_fraction": "forethought.data.collect",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'forethought.data' has no attribute {name!r}")
