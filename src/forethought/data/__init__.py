"""forethought.data: the episode store, collection, windows and normalization.

Names are imported on first use, so that ``import forethought.data.collect`` in a spawned
collection worker does not pay for torch (only ``windows`` needs it). The collection engine is ``forethought.data.collect.collect``
(not re-exported here: the submodule and the function share the name ``collect``).
"""

from __future__ import annotations

from forethought._lazy import lazy_exports

_EXPORTS = {
    "Episode": "forethought.data.episode",
    "EpisodeStore": "forethought.data.store",
    "DatasetError": "forethought.data.errors",
    "DatasetCorruptError": "forethought.data.errors",
    "verify": "forethought.data.integrity",
    "NormStats": "forethought.data.normalization",
    "Normalizer": "forethought.data.normalization",
    "WindowDataset": "forethought.data.windows",
    "split_episodes": "forethought.data.windows",
    "moving_fraction": "forethought.data.collect",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
