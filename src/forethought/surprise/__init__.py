"""forethought.surprise: calibrated prediction-error monitoring, OOD detection, violation of expectation.

>>> from forethought.surprise import SurpriseCalibration, SurpriseMonitor, surprise_scores
>>> cal = SurpriseCalibration.load("runs/tworoom/model")      # written by `forethought surprise-calibrate`
>>> scores = surprise_scores(model, obs, actions, cal)        # (B, T-1) whitened 1-step surprise
>>> alarms = scores > cal.threshold(steps=1)
>>> agent = MPCAgent(model, planner, action_space=space, monitor=SurpriseMonitor(model, cal))
>>> detector = CusumDetector(calibrate_cusum(in_distribution_score_streams, target_rate=1e-3))
>>> changed = detector.update(score)                           # True when surprise has stayed high

Layering: scoring, clips and calibration use only models/data/envs; the monitor plugs into the
agent through its ``FrameMonitor`` protocol (the agent never imports this package); the OOD and
violation-of-expectation evaluations sit at the evaluation level. Names are imported on first use,
so ``forethought.surprise.arguments`` (CLI options) stays free of torch.
"""

from __future__ import annotations

from forethought._lazy import lazy_exports

_EXPORTS = {
    "surprise_scores": "forethought.surprise.score",
    "embedding_scale": "forethought.surprise.score",
    "k_step_predictions": "forethought.surprise.score",
    "prediction_residuals": "forethought.surprise.score",
    "Clip": "forethought.surprise.clips",
    "store_clip": "forethought.surprise.clips",
    "SurpriseCalibration": "forethought.surprise.calibration",
    "UncalibratedError": "forethought.surprise.calibration",
    "fit_calibration": "forethought.surprise.calibration",
    "clip_scores": "forethought.surprise.calibration",
    "SurpriseMonitor": "forethought.surprise.monitor",
    "SurpriseEvent": "forethought.surprise.monitor",
    "SurpriseStop": "forethought.surprise.monitor",
    "stop_on_alarm": "forethought.surprise.monitor",
    "log_and_replan": "forethought.surprise.monitor",
    "CusumCalibration": "forethought.surprise.cusum",
    "CusumDetector": "forethought.surprise.cusum",
    "calibrate_cusum": "forethought.surprise.cusum",
    "make_perturbation": "forethought.surprise.perturbations",
    "paired_clips": "forethought.surprise.perturbations",
    "OODConfig": "forethought.surprise.ood",
    "ood_evaluation": "forethought.surprise.ood",
    "VoEConfig": "forethought.surprise.voe",
    "voe_evaluation": "forethought.surprise.voe",
    "auroc": "forethought.surprise.metrics",
    "fpr_at_tpr": "forethought.surprise.metrics",
    "plot_timeline": "forethought.surprise.timeline",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
