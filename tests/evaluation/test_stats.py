import pytest

from forethought.evaluation.stats import time_summary, wilson_interval


@pytest.mark.parametrize(
    "k, n, low, high",
    [  # reference: scipy.stats.binomtest(k, n).proportion_ci(method="wilson"), scipy 1.17
        (25, 50, 0.366445, 0.633555),
        (0, 10, 0.0, 0.277533),  # closed form at k = 0: z^2 / (n + z^2)
        (10, 10, 0.722467, 1.0),
        (1, 50, 0.003539, 0.104954),
        (45, 50, 0.786398, 0.956524),
        (0, 50, 0.0, 0.071348),  # the demo's 50 tasks: 100% reads [92.9%, 100%]
        (50, 50, 0.928652, 1.0),
        (46, 50, 0.811618, 0.968450),
    ],
)
def test_wilson_matches_reference(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-6)
    assert hi == pytest.approx(high, abs=1e-6)


def test_wilson_matches_scipy_when_available():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 1), (3, 7), (17, 50), (50, 50), (123, 400)]:
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_wilson_contains_estimate_and_shrinks_with_n():
    for k, n in [(3, 7), (30, 70), (300, 700)]:
        lo, hi = wilson_interval(k, n)
        assert lo < k / n < hi
    widths = [hi - lo for lo, hi in (wilson_interval(5, 10), wilson_interval(50, 100))]
    assert widths[1] < widths[0]
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_interval(6, 5)
    with pytest.raises(ValueError):
        wilson_interval(-1, 5)


def test_time_summary():
    s = time_summary([0.1, 0.2, 0.3, 0.4])
    assert s["count"] == 4 and s["mean"] == pytest.approx(0.25) and s["p50"] == pytest.approx(0.25)
    assert s["total"] == pytest.approx(1.0) and 0.3 < s["p95"] <= 0.4
    assert time_summary([])["mean"] is None
