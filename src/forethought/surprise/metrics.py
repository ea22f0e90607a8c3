"""Detection metrics: AUROC, false-positive rate at a true-positive rate, detection delay.

Scores are "higher = more anomalous". Negatives are normal clips, positives perturbed ones.
"""

from __future__ import annotations

import numpy as np


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    The Mann-Whitney U statistic divided by ``n_pos * n_neg`` (exact, no curve interpolation).
    """
    neg, pos = np.asarray(negatives, np.float64).ravel(), np.asarray(positives, np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"auroc needs negatives and positives, got {neg.size} and {pos.size}")
    allv = np.concatenate([neg, pos])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(allv.size, np.float64)
    sorted_v = allv[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[neg.size :].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def fpr_at_tpr(negatives: np.ndarray, positives: np.ndarray, tpr: float = 0.95) -> float:
    """Fraction of negatives flagged by the threshold that flags ``tpr`` of the positives.

    The threshold is the largest one that still flags at least ``tpr`` of the positives (a score
    ``>= threshold`` is flagged), so the number is the best false-positive rate at that recall.
    """
    neg, pos = np.asarray(negatives, np.float64).ravel(), np.asarray(positives, np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"fpr_at_tpr needs negatives and positives, got {neg.size} and {pos.size}")
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    k = int(np.ceil(tpr * pos.size))  # positives that must be flagged
    threshold = np.sort(pos)[::-1][k - 1]
    return float((neg >= threshold).mean())


def detection_delays(scores: np.ndarray, events: np.ndarray, threshold: float) -> np.ndarray:
    """Steps from each clip's event to its first alarm at or after it; ``-1`` when never.

    ``scores (N, T-1)`` per-transition surprise, ``events (N,)`` first perturbed transition.
    """
    scores = np.asarray(scores, np.float64)
    out = np.full(scores.shape[0], -1, dtype=np.int64)
    for i, (row, e) in enumerate(zip(scores, np.asarray(events, np.int64))):
        hits = np.flatnonzero(row[e:] > threshold)
        if hits.size:
            out[i] = hits[0]
    return out
