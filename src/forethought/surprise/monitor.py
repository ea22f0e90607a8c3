"""SurpriseMonitor: stream surprise scores while an agent acts, and react to alarms.

Every model frame the agent sees, the monitor predicts it from the frames before (one step, or
``steps`` steps with the actions actually taken) and scores the prediction against the frame's
encoding, normalized and thresholded with the model's calibration. An alarm (any episode above the
threshold) calls ``on_alarm(event)``, which returns what the agent should do:

* ``"replan"`` (the default callback, after logging a warning): drop the queued actions and plan
  again from this frame;
* ``"continue"`` (or ``None``): carry on;
* to stop or hand over, raise from the callback, e.g. :class:`SurpriseStop` via :func:`stop_on_alarm`.

Attach it with ``MPCAgent(..., monitor=SurpriseMonitor(model, calibration))`` or
``agent.monitor = monitor``; the agent resets it on ``reset`` and feeds it every model frame. It
can also be driven by hand: ``monitor.reset(); monitor.observe(z, a)`` per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from forethought.models.protocols import LatentWorldModel
from forethought.surprise.calibration import SurpriseCalibration

log = logging.getLogger("forethought.surprise")

DECISIONS = ("continue", "replan")


@dataclass(frozen=True)
class SurpriseEvent:
    """An alarm: ``frame`` is the model frame index since ``reset`` (0 = the first frame)."""

    frame: int
    scores: np.ndarray  # (B,) surprise of this frame per episode
    alarms: np.ndarray  # (B,) bool, scores > threshold
    threshold: float
    steps: int


class SurpriseStop(RuntimeError):
    """Raised by :func:`stop_on_alarm` to stop the agent loop; carries the event."""

    def __init__(self, event: SurpriseEvent) -> None:
        super().__init__(f"surprise alarm at model frame {event.frame}: scores {np.round(event.scores, 4).tolist()} "
                         f"> threshold {event.threshold:.4g} in episodes {np.flatnonzero(event.alarms).tolist()}")
        self.event = event


def log_and_replan(event: SurpriseEvent) -> str:
    """The default reaction: a warning in the log, then plan again from the surprising frame."""
    log.warning("surprise alarm at model frame %d in episodes %s (score %.4g > %.4g): replanning", event.frame,
                np.flatnonzero(event.alarms).tolist(), float(event.scores.max()), event.threshold)
    return "replan"


def stop_on_alarm(event: SurpriseEvent) -> str:
    """Stop the loop: raises :class:`SurpriseStop` (catch it where the agent is driven)."""
    raise SurpriseStop(event)


class SurpriseMonitor:
    """Per-frame surprise of ``B`` episodes at once, with alarms from a calibration.

    Args:
        model: the agent's :class:`~forethought.models.WorldModel` (eval mode).
        calibration: from ``forethought surprise-calibrate`` (``SurpriseCalibration.load(model_dir)``).
        steps: surprise horizon ``k`` (needs a threshold calibrated for it).
        kind: ``"whitened"`` (default) or ``"diag"`` residual normalization (``forethought.surprise.score``).
        on_alarm: ``callback(event) -> "replan" | "continue" | None``; default :func:`log_and_replan`.
    """

    def __init__(self, model: LatentWorldModel, calibration: SurpriseCalibration, *, steps: int = 1,
                 kind: str = "whitened", on_alarm: Callable[[SurpriseEvent], str | None] | None = log_and_replan) -> None:
        if not isinstance(calibration, SurpriseCalibration):
            raise TypeError(f"calibration must be a SurpriseCalibration (SurpriseCalibration.load(model_dir)), "
                            f"got {type(calibration).__name__}")
        if calibration.latent_dim != model.latent_dim:
            raise ValueError(f"the calibration has {calibration.latent_dim} latent dims, the model {model.latent_dim}: "
                             "it belongs to another model; recalibrate")
        self.model, self.calibration, self.steps, self.kind, self.on_alarm = model, calibration, int(steps), kind, on_alarm
        self.threshold = calibration.threshold(self.steps, kind)  # a clear error if this horizon is uncalibrated
        self._archive: list[np.ndarray] = []  # scores of finished episodes, for summary()
        self.scores: list[np.ndarray] = []
        self.reset()

    def reset(self) -> None:
        """Start new episodes (the agent calls it from its ``reset``); :meth:`summary` keeps counting."""
        if self.scores:
            self._archive.append(np.stack(self.scores))  # (frames, B) of the episodes that just ended
        self._z: list[Tensor] = []  # the last h + steps frames, each (B, D)
        self._a: list[Tensor] = []  # the model actions between them, each (B, A)
        self.frame = -1
        self.scores: list[np.ndarray] = []  # per frame from frame 1 on, each (B,)
        self.events: list[SurpriseEvent] = []

    @torch.no_grad()
    def observe(self, z: Tensor, action: Tensor | None) -> str:
        """Feed the latent ``z (B, D)`` of a new frame and the model action ``(B, A)`` that led to it
        (``None`` for the first frame). Returns the decision: ``"continue"`` or ``"replan"``."""
        self.frame += 1
        if action is None:
            if self._z:
                raise ValueError("observe(z, None) is only for the first frame; pass the action that led here")
        else:
            if not self._z:
                raise ValueError("the first frame after reset() has no action: call observe(z, None)")
            self._a.append(action.float())
        self._z.append(z.float())
        h, k = self.model.history, min(self.steps, len(self._z) - 1)
        keep = h + self.steps
        if len(self._z) > keep:
            self._z, self._a = self._z[-keep:], self._a[-(keep - 1):]
        if k == 0:
            return "continue"
        n = len(self._z)
        s = n - 1 - k  # the frame the prediction starts from
        lo = max(0, s - h + 1)
        hist = torch.stack(self._z[lo : s + 1], 1)  # (B, <=h, D)
        past = torch.stack(self._a[lo:s], 1) if s > lo else None
        future = torch.stack(self._a[s : s + k], 1)  # (B, k, A)
        pred = self.model.rollout(hist, future, past)[:, -1]
        scores = self.calibration.score((pred - self._z[-1]).cpu(), self.steps, self.kind).numpy()
        self.scores.append(scores)
        alarms = scores > self.threshold
        if not alarms.any() or self.on_alarm is None:
            return "continue"
        event = SurpriseEvent(self.frame, scores, alarms, self.threshold, self.steps)
        self.events.append(event)
        decision = self.on_alarm(event) or "continue"
        if decision not in DECISIONS:
            raise ValueError(f"on_alarm returned {decision!r}; return one of {DECISIONS} or None, or raise to stop")
        return decision

    def summary(self) -> dict[str, float | int]:
        """Alarm statistics over every frame scored since construction (all resets included)."""
        runs = self._archive + ([np.stack(self.scores)] if self.scores else [])
        if not runs:
            return {"frames": 0, "alarm_rate": 0.0, "alarm_rate_first_frame": 0.0, "threshold": self.threshold,
                    "steps": self.steps, "kind": self.kind}
        alarms = [r > self.threshold for r in runs]  # each (frames, B)
        frames = sum(a.size for a in alarms)
        return {"frames": int(frames), "alarm_rate": float(sum(a.sum() for a in alarms) / frames),
                "alarm_rate_first_frame": float(np.concatenate([a[0] for a in alarms]).mean()),
                "threshold": self.threshold, "steps": self.steps, "kind": self.kind}
