"""AUROC, FPR at a TPR and detection delays against brute force and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.surprise.metrics import auroc, detection_delays, fpr_at_tpr


def test_auroc_extremes_ties_and_brute_force() -> None:
    assert auroc([0, 1, 2], [3, 4]) == 1.0
    assert auroc([3, 4], [0, 1, 2]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    rng = np.random.default_rng(0)
    neg, pos = rng.integers(0, 5, 40).astype(float), rng.integers(1, 7, 30).astype(float)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(neg, pos) == pytest.approx(brute)
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_fpr_at_tpr_uses_the_threshold_that_keeps_the_recall() -> None:
    neg = np.arange(10.0)  # 0..9
    pos = np.array([5.0, 8.0, 9.5, 20.0])
    # 95% of 4 positives = all 4: threshold 5 flags negatives 5..9 = half of them.
    assert fpr_at_tpr(neg, pos, 0.95) == 0.5
    assert fpr_at_tpr(neg, pos, 0.5) == pytest.approx(0.0)  # threshold 9.5
    assert fpr_at_tpr(neg, np.array([100.0]), 0.95) == 0.0


def test_detection_delays() -> None:
    scores = np.array([[0, 5, 0, 0, 0],  # alarm before the event only: never after it
                       [0, 0, 0, 5, 0],  # 1 step after the event at 2
                       [0, 0, 5, 0, 0]], dtype=float)
    np.testing.assert_array_equal(detection_delays(scores, np.array([2, 2, 2]), 1.0), [-1, 1, 0])
