"""CUSUM over calibrated surprise: an alarm when surprise *stays* high, at a calibrated false-alarm rate.

A single surprising frame is common (a wall contact, an unusual action); a world that changed makes
every frame a little more surprising for as long as it stays changed. Page's cumulative sum
(Page 1954) accumulates that evidence. With ``s_t`` the calibrated per-frame surprise
(:meth:`~forethought.surprise.calibration.SurpriseCalibration.score`) of the frame at position
``j`` of its episode, and ``m_j = m * profile_j`` the in-distribution median there::

    x_t = clip(log(s_t / m_j), -FLOOR_X, CLIP)   log-surprise relative to normal: 0 is a typical frame
    S_t = max(0, S_{t-1} + x_t - drift)           the accumulated excess
    alarm when S_t > threshold; then S_t = 0      (and the detector starts over)

``drift = mean_ID(x) + log(ratio) / 2``: the classic choice for detecting a shift of the mean of
``x`` by ``log(ratio)``, i.e. a sustained rise of surprise by a factor ``ratio``. The
``threshold`` is the smallest one whose false-alarm rate on in-distribution score streams (episodes
concatenated in random order, as an online agent sees them) is at most ``target_rate`` alarms per
frame, measured again on held-out streams never used to choose it (both by a smoothed bootstrap). The frame after the last time
``S`` was 0 before an alarm estimates when the change happened (``change_point``).

The log and the clip make the statistic robust to the heavy upper tail of squared errors: one frame
100 times more surprising than normal adds ``CLIP``, not 100; a frame far *less* surprising than
normal takes off at most ``FLOOR_X`` (a change can make some frames easier to predict, e.g. a weak
motor when the agent barely moves, and those should not cancel the evidence of the others). The
position profile removes the
structure every episode has (the first frames, predicted from a short history, are several times
more surprising than later ones), which would otherwise fill ``S`` with normal variation.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from forethought._atomic import atomic_write_json
from forethought._files import read_json
from forethought._schema import from_json_dict

CLIP = 3.0  # log(s / m) cap: one frame counts at most e^3 = 20 times normal
FLOOR_X = 1.0  # and at least e^-1 = 0.37 times normal
FLOOR = 1e-12  # scores are >= 0; a zero score is floored before the log
MIN_FRAMES = 200  # in-distribution frames needed to calibrate anything


def log_ratio(scores: np.ndarray | Sequence[float] | float, reference: float | np.ndarray) -> np.ndarray:
    """``clip(log(s / reference), -FLOOR_X, CLIP)`` elementwise (float64)."""
    s = np.maximum(np.asarray(scores, dtype=np.float64), FLOOR)
    return np.clip(np.log(s / reference), -FLOOR_X, CLIP)


def _profile_at(profile: Sequence[float], positions: np.ndarray) -> np.ndarray:
    """Profile factors at ``positions`` (episode frame indices; past the end: the last factor; none: 1)."""
    if not len(profile):
        return np.ones(len(positions))
    return np.asarray(profile, dtype=np.float64)[np.minimum(positions, len(profile) - 1)]


@dataclass(frozen=True)
class CusumCalibration:
    """What a :class:`CusumDetector` needs, and how it was chosen (saved as JSON).

    Attributes:
        reference: median in-distribution score ``m``.
        profile: ``m_j / m``, the median at each position of an episode's score stream relative to
            ``m`` (positions past the end take the last; empty: 1 everywhere).
        drift: ``k``, subtracted from every ``x_t``.
        threshold: ``h``, the alarm level of ``S``.
        ratio: the sustained rise of surprise the drift is tuned to.
        target_rate: false alarms per frame the threshold was chosen for.
        measured_rate: false alarms per frame on held-out in-distribution streams (check half).
        fit_frames / check_frames: in-distribution frames in each half (before resampling).
        source: where the in-distribution scores came from.
    """

    reference: float
    profile: tuple[float, ...]
    drift: float
    threshold: float
    ratio: float
    target_rate: float
    measured_rate: float
    fit_frames: int
    check_frames: int
    source: str = ""

    def __post_init__(self) -> None:
        if not (self.reference > 0 and math.isfinite(self.drift) and self.threshold > 0):
            raise ValueError(f"CusumCalibration needs reference > 0, a finite drift and threshold > 0, got "
                             f"{self.reference}, {self.drift}, {self.threshold}")
        object.__setattr__(self, "profile", tuple(float(p) for p in self.profile))
        if not all(p > 0 and math.isfinite(p) for p in self.profile):
            raise ValueError(f"CusumCalibration.profile must be positive factors, got {self.profile}")

    def log_ratios(self, scores: np.ndarray | Sequence[float], first: int = 0) -> np.ndarray:
        """``x`` of consecutive frames of one episode, the first at position ``first``: ``(T,) -> (T,)``."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        return log_ratio(s, self.reference * _profile_at(self.profile, first + np.arange(s.size)))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration as JSON, atomically."""
        path = Path(path)
        atomic_write_json(path, {"format": "forethought.cusum", **asdict(self)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CusumCalibration:
        """Read a calibration written by :meth:`save`, every field checked."""
        fix = "Delete it to calibrate the detector again"
        data = read_json(path, what="a CUSUM surprise-detector calibration", fix=fix)
        if data.pop("format", None) != "forethought.cusum":
            raise ValueError(f"{path}: not a CUSUM calibration (no \"format\": \"forethought.cusum\"). {fix}")
        return from_json_dict(cls, data, source=str(path), fix=fix)


class CusumDetector:
    """Page's CUSUM over one stream of per-frame surprise scores (module docstring).

    Feed every scored frame with :meth:`update`; the stream runs on across episodes (a change of
    the world persists), and :meth:`reset` starts it over (after the model was updated).
    """

    def __init__(self, calibration: CusumCalibration) -> None:
        self.calibration = calibration
        self.statistic = 0.0
        self.frames = 0  # frames seen since construction
        self.excursion_start: int | None = None  # first frame of the current run of S > 0
        self.alarms: list[int] = []  # frames at which it fired
        self.change_points: list[int] = []  # the estimated change frame of each alarm

    def update(self, score: float, position: int | None = None) -> bool:
        """Add one frame's score (``position``: its index in the episode's score stream, for the
        profile; ``None``: no profile); True when this frame raises an alarm (then ``S`` starts over)."""
        cal = self.calibration
        x = float(log_ratio(score, cal.reference) if position is None else cal.log_ratios([score], position)[0])
        frame, self.frames = self.frames, self.frames + 1
        if not math.isfinite(x):
            raise ValueError(f"surprise score {score!r} at frame {frame} is not a finite number")
        s = max(0.0, self.statistic + x - cal.drift)
        if s > 0 and self.statistic == 0:
            self.excursion_start = frame
        elif s == 0:
            self.excursion_start = None
        self.statistic = s
        if s <= cal.threshold:
            return False
        self.alarms.append(frame)
        self.change_points.append(frame if self.excursion_start is None else self.excursion_start)
        self.statistic, self.excursion_start = 0.0, None
        return True

    def reset(self) -> None:
        """Start the accumulation over (``frames`` and the alarm history keep counting)."""
        self.statistic, self.excursion_start = 0.0, None

    def state(self) -> dict[str, Any]:
        """JSON-ready state, to continue a stream after a restart (:meth:`load_state`)."""
        return {"statistic": self.statistic, "frames": self.frames, "excursion_start": self.excursion_start,
                "alarms": list(self.alarms), "change_points": list(self.change_points)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.statistic = float(state["statistic"])
        self.frames = int(state["frames"])
        start = state.get("excursion_start")
        self.excursion_start = None if start is None else int(start)
        self.alarms = [int(a) for a in state.get("alarms", [])]
        self.change_points = [int(c) for c in state.get("change_points", [])]


def alarm_count(x: np.ndarray, drift: float, threshold: float) -> int:
    """Alarms of CUSUM (restarting after each) over the log-ratios ``x (T,)``."""
    s, n = 0.0, 0
    for v in (x - drift).tolist():  # python floats: ~50 ns per frame
        s = s + v
        if s < 0.0:
            s = 0.0
        elif s > threshold:
            n += 1
            s = 0.0
    return n


def _resample(x_streams: list[np.ndarray], frames: int, rng: np.random.Generator) -> np.ndarray:
    """Log-ratio streams drawn whole with replacement and concatenated until ``frames`` frames, each
    frame jittered by Gaussian noise of Silverman's bandwidth (a smoothed bootstrap: a rate of 1e-3
    lives in the tail, which a few thousand frames sample coarsely; the jitter extends it)."""
    out, total = [], 0
    while total < frames:
        s = x_streams[int(rng.integers(len(x_streams)))]
        out.append(s)
        total += len(s)
    x = np.concatenate(out)
    pool = np.concatenate(x_streams)
    bandwidth = 1.06 * float(pool.std()) * len(pool) ** -0.2
    return np.clip(x + bandwidth * rng.standard_normal(x.shape), -FLOOR_X, CLIP)


def position_profile(streams: Sequence[np.ndarray], reference: float, min_count: int = 10) -> tuple[float, ...]:
    """Median score at each position of the streams relative to ``reference``, for the positions
    at least ``min_count`` streams reach (later positions take the last factor)."""
    longest = max(len(s) for s in streams)
    out = []
    for j in range(longest):
        at = [s[j] for s in streams if len(s) > j]
        if len(at) < min_count:
            break
        out.append(max(float(np.median(at)), FLOOR) / reference)
    return tuple(out)


def calibrate_cusum(streams: Sequence[np.ndarray], *, target_rate: float = 1e-3, ratio: float = 2.0,
                    check_fraction: float = 0.5, by_position: bool = True, seed: int = 0,
                    source: str = "") -> CusumCalibration:
    """Choose the baseline, ``drift`` and ``threshold`` on in-distribution score streams, one per
    episode ``(T_i,)`` starting at the episode's first scored frame.

    The streams are split (seeded) into a fit and a check part. On the fit part: the median score,
    the position profile (``by_position``), the drift; then the threshold, by bisection, as the
    smallest with at most ``target_rate`` alarms per frame over ``40 / target_rate`` frames of fit
    streams resampled in random order. On the check part the rate that threshold really gives is
    measured the same way.
    """
    if not 0 < target_rate < 0.5:
        raise ValueError(f"target_rate must be in (0, 0.5) false alarms per frame, e.g. 0.001, got {target_rate}")
    if not ratio > 1:
        raise ValueError(f"ratio must be > 1 (the rise of surprise to detect, e.g. 2), got {ratio}")
    streams = [np.asarray(s, dtype=np.float64).reshape(-1) for s in streams if len(s)]
    frames = sum(len(s) for s in streams)
    if len(streams) < 2 or frames < MIN_FRAMES:
        raise ValueError(f"calibrating the surprise detector needs at least 2 in-distribution episodes and "
                         f"{MIN_FRAMES} scored frames, got {len(streams)} and {frames}; give it more held-out episodes")
    if not all(np.isfinite(s).all() and (s >= 0).all() for s in streams):
        raise ValueError("in-distribution surprise scores must be finite and >= 0")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(streams))
    n_check = min(len(streams) - 1, max(1, int(round(len(streams) * check_fraction))))
    check, fit = [streams[i] for i in order[:n_check]], [streams[i] for i in order[n_check:]]
    reference = float(np.median(np.concatenate(fit)))
    if not reference > 0:
        raise ValueError("the median in-distribution surprise score is 0; the scores carry no information")
    shape = CusumCalibration(reference, position_profile(fit, reference) if by_position else (), 0.0, 1.0, ratio,
                             target_rate, 0.0, 0, 0)
    x_fit_streams = [shape.log_ratios(s) for s in fit]
    drift = float(np.concatenate(x_fit_streams).mean() + math.log(ratio) / 2)
    length = int(math.ceil(40 / target_rate))
    x_fit = _resample(x_fit_streams, length, rng)
    lo, hi = 0.0, 2 * CLIP * 64
    while alarm_count(x_fit, drift, hi) / len(x_fit) > target_rate:  # the in-distribution walk can be long
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        if alarm_count(x_fit, drift, mid) / len(x_fit) > target_rate:
            lo = mid
        else:
            hi = mid
    x_check = _resample([shape.log_ratios(s) for s in check], length, rng)
    return CusumCalibration(reference=reference, profile=shape.profile, drift=drift, threshold=hi, ratio=float(ratio),
                            target_rate=float(target_rate),
                            measured_rate=alarm_count(x_check, drift, hi) / len(x_check),
                            fit_frames=int(sum(len(s) for s in fit)), check_frames=int(sum(len(s) for s in check)),
                            source=source)
