"""Small statistics for evaluation reports: timing summaries, and the Wilson interval of success rates.

`wilson_interval` is defined in `forethought._stats` (surprise calibration uses it too, and sits
below evaluation in the layers) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forethought._stats import Z_95, wilson_interval

__all__ = ["Z_95", "time_summary", "wilson_interval"]


def time_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """`{"count", "mean", "p50", "p95", "total"}` of durations in seconds (None entries when empty)."""
    arr = np.asarray(list(seconds), dtype=np.float64)
    if arr.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "total": 0.0}
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "total": float(arr.sum()),
    }
