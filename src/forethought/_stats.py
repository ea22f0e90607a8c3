"""Small statistics shared by evaluation reports and surprise calibration: the Wilson interval.

Success rates over 50 episodes are coarse (one episode is 2 points), so every rate is reported
with a 95% interval. The Wilson score interval is used rather than the normal approximation
`p ± 1.96 sqrt(p(1-p)/n)`, which collapses to zero width at 0% and 100% and undercovers for
small `n` (Brown, Cai & DasGupta, "Interval Estimation for a Binomial Proportion", 2001).

A layer-0 utility: it imports nothing from forethought.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # the 97.5% quantile of N(0, 1)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval `(low, high)` for `successes` out of `n` Bernoulli trials.

    `z=1.96` (the default, exactly the 97.5% normal quantile) gives a 95% interval.
    `n = 0` gives the uninformative `(0.0, 1.0)`.
    """
    if isinstance(successes, bool) or isinstance(n, bool):
        raise TypeError("wilson_interval takes integer counts, not booleans")
    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got successes={successes}, n={n}")
    if not z > 0:
        raise ValueError(f"wilson_interval: z must be > 0, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Clip rounding noise: at p = 0 or 1 one end is exactly 0 or 1 in exact arithmetic.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
