"""Out-of-distribution evaluation: does surprise separate perturbed episodes from normal ones?

For each perturbation, ``pairs`` episodes are generated with the environment itself, each twice
from the same seed with the same commanded actions: once normal, once perturbed at
``event_frame`` (:func:`~forethought.surprise.perturbations.paired_clips`). Per perturbation:

* **AUROC** and **FPR at 95% TPR** of the episode statistic "largest surprise in the ``window``
  transitions from the event on" (normal clips: the same transitions), so a detector is judged
  where the event happened, not on the whole episode; and the AUROC of the mean surprise from the
  event to the end of the clip (evidence accumulated over time);
* **detection delay**: model steps from the event to the first alarm (score above the calibrated
  threshold), ``0`` meaning the first affected frame raised it; the fraction detected within the
  window and at all;
* **false alarms**: the per-frame alarm rate on the normal clips (the calibration's target) and the
  fraction of perturbed clips that alarmed *before* their event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from forethought.models.protocols import LatentWorldModel
from forethought.surprise.calibration import SurpriseCalibration, clip_scores
from forethought.surprise.clips import Clip
from forethought.surprise.metrics import auroc, detection_delays, fpr_at_tpr
from forethought.surprise.perturbations import PERTURBATIONS, NotApplicable, eval_seed, make_perturbation, paired_clips


@dataclass(frozen=True)
class OODConfig:
    """Settings of :func:`ood_evaluation` (model steps, not env steps, unless said)."""

    perturbations: tuple[str, ...] = tuple(PERTURBATIONS)
    pairs: int = 50
    frames: int = 20  # model frames per clip (the training episodes' length at frameskip 5 for TwoRoom)
    event_frame: int = 8  # first perturbed frame
    window: int = 3  # transitions from the event on that count for AUROC and "detected in time"
    steps: int = 1  # surprise horizon k
    kind: str = "whitened"  # residual normalization (forethought.surprise.score)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [p for p in self.perturbations if p not in PERTURBATIONS]
        if unknown:
            raise ValueError(f"unknown perturbations {unknown}; available: {', '.join(PERTURBATIONS)}")
        if self.pairs < 2:
            raise ValueError(f"need at least 2 pairs per perturbation for an AUROC, got {self.pairs}")
        if not 1 <= self.event_frame < self.frames - 1:
            raise ValueError(f"event_frame must be in [1, frames - 1) = [1, {self.frames - 1}), got {self.event_frame}")
        if not 1 <= self.window <= self.frames - self.event_frame:
            raise ValueError(f"window must be in [1, frames - event_frame] = [1, {self.frames - self.event_frame}], "
                             f"got {self.window}")


def generate_pairs(env: Any, policy: Any, name: str, cfg: OODConfig, frameskip: int,
                   progress: Any = None) -> tuple[list[Clip], list[Clip], int]:
    """``cfg.pairs`` (normal, perturbed) clips for perturbation ``name``, and how many seeds were skipped.

    Seeds ``eval_seed(cfg.seed, i)`` (never collection seeds) are tried in order; an episode where
    the perturbation cannot happen (e.g. the agent stands in the doorway when the door closes) is
    skipped, not forced.
    """
    normal, perturbed, skipped, i = [], [], 0, 0
    while len(normal) < cfg.pairs:
        if skipped > 10 * cfg.pairs:
            raise RuntimeError(f"perturbation {name!r} could not be applied in {skipped} episodes")
        try:
            a, b = paired_clips(env, policy, make_perturbation(name), eval_seed(cfg.seed, i), cfg.frames,
                                frameskip, cfg.event_frame)
            normal.append(a)
            perturbed.append(b)
            if progress is not None:
                progress.update(1)
        except NotApplicable:
            skipped += 1
        i += 1
    return normal, perturbed, skipped


def detection_summary(normal: np.ndarray, perturbed: np.ndarray, event: int, window: int,
                      threshold: float | None) -> dict[str, Any]:
    """Metrics of one perturbation from per-transition scores ``(N, T-1)`` of normal / perturbed clips."""
    sl = slice(event, event + window)
    neg, pos = normal[:, sl].max(1), perturbed[:, sl].max(1)
    out: dict[str, Any] = {
        "pairs": int(normal.shape[0]),
        "auroc": auroc(neg, pos),
        "fpr_at_95tpr": fpr_at_tpr(neg, pos, 0.95),
        # Evidence accumulated over the rest of the episode (mean score from the event on): slower,
        # but persistent changes (weaker motors) that single frames barely show add up.
        "auroc_rest_mean": auroc(normal[:, event:].mean(1), perturbed[:, event:].mean(1)),
        "median_score_normal": float(np.median(neg)),
        "median_score_perturbed": float(np.median(pos)),
    }
    if threshold is not None:
        delays = detection_delays(perturbed, np.full(len(perturbed), event), threshold)
        found = delays >= 0
        out.update({
            "threshold": threshold,
            "detected_in_window": float((found & (delays < window)).mean()),
            "detected_at_all": float(found.mean()),
            "median_delay": float(np.median(delays[found])) if found.any() else None,
            "mean_delay": float(delays[found].mean()) if found.any() else None,
            "false_alarm_rate_normal": float((normal > threshold).mean()),
            "alarm_before_event": float((perturbed[:, :event] > threshold).any(1).mean()) if event > 0 else 0.0,
        })
    return out


@torch.no_grad()
def ood_evaluation(model: LatentWorldModel, calibration: SurpriseCalibration, env: Any, policy: Any,
                   normalizer: Any, frameskip: int, cfg: OODConfig = OODConfig(),
                   progress: bool = True) -> dict[str, Any]:
    """Run every perturbation of ``cfg``; returns ``{"config", "results": {name: metrics}, "examples"}``.

    ``examples[name]`` holds the first pair's clips and scores, for pictures.
    """
    from forethought._progress import progress as progress_bar

    threshold = calibration.threshold(cfg.steps, cfg.kind)
    results: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    bar = progress_bar(total=cfg.pairs * len(cfg.perturbations), desc="surprise-eval", unit="pair",
                       disable=not progress)
    for name in cfg.perturbations:
        bar.set_postfix_str(name)
        normal, perturbed, skipped = generate_pairs(env, policy, name, cfg, frameskip, bar)
        s_norm = clip_scores(model, normal, normalizer, calibration, cfg.steps, cfg.kind)
        s_pert = clip_scores(model, perturbed, normalizer, calibration, cfg.steps, cfg.kind)
        event = perturbed[0].event
        results[name] = {"kind": make_perturbation(name).kind, "skipped_seeds": skipped,
                         **detection_summary(s_norm, s_pert, event, cfg.window, threshold)}
        examples[name] = {"normal": normal[0], "perturbed": perturbed[0], "scores_normal": s_norm[0],
                          "scores_perturbed": s_pert[0]}
    bar.close()
    return {"config": asdict(cfg), "results": results, "examples": examples}


def markdown_table(results: dict[str, Any], window: int) -> str:
    """One row per perturbation."""
    head = (f"| perturbation | kind | pairs | AUROC (max over {window} frames) | FPR@95%TPR | AUROC (mean to the end) "
            f"| detected within {window} frames | median delay | false alarms / frame (normal) |\n"
            "|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, r in results.items():
        def pct(key: str) -> str:
            v = r.get(key)
            return "-" if v is None else f"{100 * v:.1f}%" if 0 < v < 0.1 else f"{100 * v:.0f}%"

        delay = "-" if r.get("median_delay") is None else f"{r['median_delay']:.0f}"
        rows.append(f"| {name} | {r['kind']} | {r['pairs']} | {r['auroc']:.3f} | {pct('fpr_at_95tpr')} | {r['auroc_rest_mean']:.3f} | "
                    f"{pct('detected_in_window')} | {delay} | {pct('false_alarm_rate_normal')} |")
    return "\n".join([head, *rows])
