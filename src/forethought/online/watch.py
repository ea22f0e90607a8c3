"""What the online agent watches: per-frame calibrated surprise, accumulated by a CUSUM detector.

:class:`SurpriseWatch` plugs into the MPC agent as its ``FrameMonitor``: every model frame goes to
a :class:`~forethought.surprise.SurpriseMonitor` (the model's prediction of the frame against its
encoding, normalized by the calibration) and each score to a
:class:`~forethought.surprise.cusum.CusumDetector`, which fires when surprise has *stayed* high.
It never asks the agent to replan: an alarm is a reason to update the model, not to drop a plan.

:func:`calibrate_watch` fits both on in-distribution episodes (by default the held-out episodes of
the model's training run), cut into clips as long as the online episodes, so that the detector is
calibrated on streams that restart as often as the agent's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from forethought.models import WorldModel
from forethought.surprise.calibration import SurpriseCalibration, UncalibratedError, clip_scores, fit_calibration
from forethought.surprise.clips import Clip
from forethought.surprise.cusum import CusumCalibration, CusumDetector, calibrate_cusum
from forethought.surprise.monitor import SurpriseMonitor


class SurpriseWatch:
    """A ``FrameMonitor`` for :class:`~forethought.agent.MPCAgent`: scores frames, feeds the detector.

    ``scores`` and ``alarms`` collect what happened since :meth:`take` last emptied them. While
    ``active`` is False (the warm-up) frames are scored but the detector is not fed.
    """

    def __init__(self, model: WorldModel, calibration: SurpriseCalibration, detector: CusumDetector, *,
                 steps: int = 1, kind: str = "whitened") -> None:
        self.monitor = SurpriseMonitor(model, calibration, steps=steps, kind=kind, on_alarm=None)
        self.detector = detector
        self.scores: list[float] = []
        self.alarms: list[int] = []  # detector frames that fired
        self.active = True

    def reset(self) -> None:
        self.monitor.reset()

    def observe(self, z: Tensor, action: Tensor | None) -> str:
        scored = len(self.monitor.scores)
        self.monitor.observe(z, action)
        if len(self.monitor.scores) > scored:  # the first frame of an episode has nothing to predict it from
            score = float(self.monitor.scores[-1][0])
            self.scores.append(score)
            if self.active and self.detector.update(score, position=len(self.monitor.scores) - 1):
                self.alarms.append(self.detector.frames - 1)
        return "continue"

    def take(self) -> tuple[list[float], list[int]]:
        """The scores and alarms since the last call, and start collecting anew."""
        out = (self.scores, self.alarms)
        self.scores, self.alarms = [], []
        return out


def split_clip(clip: Clip, frames: int) -> list[Clip]:
    """Non-overlapping pieces of ``frames`` frames (the rest dropped), each a clip of its own."""
    if frames < 2:
        raise ValueError(f"clips need >= 2 frames, got {frames}")
    return [Clip(clip.obs[s : s + frames], clip.actions[s : s + frames - 1],
                 None if clip.states is None else clip.states[s : s + frames], info=dict(clip.info))
            for s in range(0, len(clip) - frames + 1, frames)]


@dataclass
class WatchCalibration:
    """The per-frame calibration, the detector's, and sentences saying where they come from."""

    per_frame: SurpriseCalibration
    cusum: CusumCalibration
    notes: list[str]


def calibrate_watch(model: WorldModel, clips: Sequence[Clip], frames: int, *, model_dir: Any = None,
                    target_rate: float = 1e-3, ratio: float = 2.0, steps: int = 1, kind: str = "whitened",
                    seed: int = 0, source: str = "") -> WatchCalibration:
    """Fit the watch on in-distribution ``clips``, each cut into pieces of ``frames`` frames.

    The per-frame calibration is the model folder's (``surprise.safetensors``, when ``model_dir``
    has one) or fitted here on half of the pieces; the detector is calibrated on the scores of the
    other half (all pieces when the model's own calibration is used: it may have seen them, which
    the notes say).
    """
    if model.normalization is None:
        raise ValueError("the model carries no normalization statistics; it was not saved by `forethought train`")
    from forethought.data.normalization import Normalizer

    normalizer = Normalizer.from_dict(model.normalization)
    pieces = [p for c in clips for p in split_clip(c, frames)]
    if len(pieces) < 4:
        raise ValueError(f"{len(pieces)} in-distribution clips of {frames} frames are too few to calibrate the "
                         "surprise detector; give it more held-out episodes")
    notes = []
    per_frame = None
    if model_dir is not None:
        try:
            per_frame = SurpriseCalibration.load(model_dir)
            per_frame.threshold(steps, kind)  # calibrated for this horizon?
            notes.append(f"per-frame surprise calibration: {model_dir}/surprise.safetensors ({per_frame.source}); the "
                         "detector's in-distribution clips may overlap it")
            detector_pieces = pieces
        except UncalibratedError:
            per_frame = None
    if per_frame is None:
        order = np.random.default_rng(seed).permutation(len(pieces))
        half = len(pieces) // 2
        fit = [pieces[i] for i in order[:half]]
        detector_pieces = [pieces[i] for i in order[half:]]
        # fit_calibration keeps half of its clips for its own check; its quantile needs 5 / target_fpr frames.
        fit_frames = (len(fit) - min(len(fit) - 1, max(1, round(len(fit) * 0.5)))) * (frames - 1)
        per_frame = fit_calibration(model, fit, normalizer, steps=(steps,), target_fpr=max(0.01, 5.05 / max(fit_frames, 1)),
                                    seed=seed, source=f"{len(fit)} clips of {frames} frames: {source}")
        notes.append(f"per-frame surprise calibration fitted on {len(fit)} clips of {frames} frames ({source}); the "
                     f"detector on the other {len(detector_pieces)}")
    scores = clip_scores(model, detector_pieces, normalizer, per_frame, steps, kind)  # (N, frames - 1)
    cusum = calibrate_cusum(list(scores), target_rate=target_rate, ratio=ratio, seed=seed,
                            source=f"{len(detector_pieces)} clips of {frames} frames: {source}")
    notes.append(f"surprise detector: CUSUM for a {ratio:g}x sustained rise, {cusum.target_rate:g} false alarms per "
                 f"frame targeted, {cusum.measured_rate:.2g} measured on held-out clips")
    return WatchCalibration(per_frame, cusum, notes)
