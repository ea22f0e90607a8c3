"""Calibration: normalizations of the residual and an alarm threshold per score kind and horizon.

Fitted on held-out in-distribution clips (episodes the model was not trained on), split by clip
into a *fit* half and a *check* half:

1. on the fit half: ``scale (D,)``, the per-dimension standard deviation of the embeddings, and
   for each horizon ``k`` (``steps``) the mean and whitening matrix of the ``k``-step residuals
   (:mod:`forethought.surprise.score`);
2. for each score kind and horizon, the threshold is the ``1 - target_fpr`` quantile of the fit
   half's per-frame scores, so an in-distribution frame raises an alarm with that probability;
3. on the check half, clips never used to choose anything, the false-alarm rate each threshold
   really gives is measured and stored with its 95% interval.

Saved as one file, ``surprise.safetensors`` next to the model's weights (tensors, with everything
else as JSON in the header), written atomically. Never pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from forethought import __version__
from forethought._atomic import atomic_write_bytes
from forethought._files import CorruptFileError, check_safetensors, read_safetensors, written_by
from forethought._schema import from_json_dict
from forethought._stats import wilson_interval
from forethought.models.protocols import LatentWorldModel
from forethought.surprise.clips import Clip, clip_batch
from forethought.surprise.score import (SCORE_KINDS, embedding_scale, fit_whitener, latent_residuals,
                                        normalized_error, whitened_error)

CALIBRATION_FILE = "surprise.safetensors"
FORMAT_VERSION = 1


class UncalibratedError(FileNotFoundError):
    """The model folder has no surprise calibration (or none for the asked horizon)."""


def _check_kind(kind: str) -> None:
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown surprise score kind {kind!r}; available: {', '.join(SCORE_KINDS)}")


@dataclass(frozen=True)
class Threshold:
    """The alarm threshold of one score kind and horizon, with the false-alarm rate it achieved."""

    kind: str
    steps: int
    threshold: float
    target_fpr: float
    fit_scores: int  # frames the quantile was taken over
    check_fpr: float  # false-alarm rate on the held-out check clips
    check_ci95: tuple[float, float]
    check_scores: int
    median_score: float  # of in-distribution frames (fit half), for reference


@dataclass(frozen=True, eq=False)
class SurpriseCalibration:
    """Everything needed to turn residuals into scores and scores into alarms (module docstring)."""

    scale: Tensor  # (D,)
    residual_mean: dict[int, Tensor]  # steps -> (D,)
    whitener: dict[int, Tensor]  # steps -> (D, D)
    thresholds: dict[tuple[str, int], Threshold]  # (kind, steps) -> threshold
    source: str = ""  # where the in-distribution clips came from
    clips: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale.ndim != 1 or not bool(torch.all(self.scale > 0)):
            raise ValueError("SurpriseCalibration.scale must be positive per-dimension spreads (D,)")
        if set(self.residual_mean) != set(self.whitener) or not self.whitener:
            raise ValueError("SurpriseCalibration needs a residual mean and a whitener per calibrated horizon")

    @property
    def latent_dim(self) -> int:
        return int(self.scale.shape[0])

    @property
    def steps(self) -> list[int]:
        return sorted(self.residual_mean)

    def _uncalibrated(self, steps: int) -> UncalibratedError:
        return UncalibratedError(
            f"no calibration for {steps}-step surprise (calibrated: {self.steps}); rerun "
            f"`forethought surprise-calibrate --model MODEL --steps {' '.join(map(str, sorted({*self.steps, steps})))}`")

    def threshold(self, steps: int = 1, kind: str = "whitened") -> float:
        """The alarm threshold; a clear error when this horizon was not calibrated."""
        _check_kind(kind)
        if (kind, steps) not in self.thresholds:
            raise self._uncalibrated(steps)
        return self.thresholds[(kind, steps)].threshold

    def score(self, residual: Tensor, steps: int = 1, kind: str = "whitened") -> Tensor:
        """Residuals ``pred - z`` ``(..., D)`` -> scores ``(...)``."""
        _check_kind(kind)
        if kind == "diag":
            return normalized_error(residual, torch.zeros_like(residual), self.scale)
        if steps not in self.whitener:
            raise self._uncalibrated(steps)
        return whitened_error(residual, self.residual_mean[steps], self.whitener[steps])

    # ------------------------------------------------------------------ save / load
    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        from safetensors.torch import save

        tensors = {"scale": self.scale.contiguous()}
        for k in self.steps:
            tensors[f"residual_mean.{k}"] = self.residual_mean[k].contiguous()
            tensors[f"whitener.{k}"] = self.whitener[k].contiguous()
        meta = {"format_version": FORMAT_VERSION, "forethought_version": __version__, "source": self.source,
                "clips": self.clips, "extra": self.extra,
                "thresholds": [asdict(t) for t in self.thresholds.values()]}
        path = Path(model_dir) / CALIBRATION_FILE
        atomic_write_bytes(path, save(tensors, metadata={"forethought.surprise": json.dumps(meta)}))
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> SurpriseCalibration:
        """Read ``surprise.safetensors`` from a model folder, every part checked.

        Raises:
            UncalibratedError: there is none (the message says how to calibrate).
            CorruptFileError: the file is damaged, truncated or a pickle (``forethought._files``).
            ConfigFileError: its header's fields have wrong types, are missing or unknown.
        """
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            raise UncalibratedError(
                f"{model_dir} has no {CALIBRATION_FILE}: the model is not calibrated for surprise alarms. Run "
                f"`forethought surprise-calibrate --model {model_dir}` (fits on the run's held-out episodes)")
        fix = f"Calibrate again with `forethought surprise-calibrate --model {model_dir}`"
        header = check_safetensors(path, fix=fix)
        meta = header.json_entry("forethought.surprise", what="a surprise calibration", fix=fix)
        if meta.get("format_version") != FORMAT_VERSION:
            raise CorruptFileError(path, f"calibration format {meta.get('format_version')!r}, this version reads "
                                         f"{FORMAT_VERSION} (written by {written_by(meta)})", fix)
        header_fields = from_json_dict(_Header, {k: v for k, v in meta.items() if k not in _UNCHECKED},
                                       source=str(path), written_by=written_by(meta), fix=fix)
        tensors = read_safetensors(path, fix=fix)
        try:
            steps = sorted(int(k.split(".")[1]) for k in tensors if k.startswith("whitener."))
            return cls(scale=tensors["scale"], residual_mean={k: tensors[f"residual_mean.{k}"] for k in steps},
                       whitener={k: tensors[f"whitener.{k}"] for k in steps},
                       thresholds={(t.kind, t.steps): t for t in header_fields.thresholds},
                       source=header_fields.source, clips=header_fields.clips, extra=dict(header_fields.extra))
        except (KeyError, ValueError) as e:
            raise CorruptFileError(path, f"not a complete surprise calibration ({e})", fix) from None


@dataclass(frozen=True)
class _Header:
    """The JSON header of ``surprise.safetensors`` (besides the versions), checked field by field."""

    source: str
    clips: int
    extra: dict[str, Any]
    thresholds: tuple[Threshold, ...]


_UNCHECKED = ("format_version", "forethought_version")


@torch.no_grad()
def clip_latents(model: LatentWorldModel, clips: Sequence[Clip], normalizer: Any,
                 batch: int = 32) -> tuple[Tensor, Tensor]:
    """Encoded frames ``(N, T, D)`` and normalized actions ``(N, T-1, A)`` of equal-length clips,
    encoded ``batch`` clips at a time (encoding is the expensive part: do it once per clip)."""
    device = next(model.parameters()).device
    zs, acts = [], []
    for i in range(0, len(clips), batch):
        obs, actions = clip_batch(clips[i : i + batch], normalizer, device)
        zs.append(model.encode(obs))
        acts.append(actions)
    z, actions = torch.cat(zs), torch.cat(acts)
    if not torch.isfinite(actions).all():
        raise ValueError("clip actions contain NaN or inf")
    return z, actions


@torch.no_grad()
def _residuals(model: LatentWorldModel, latents: tuple[Tensor, Tensor], steps: int) -> Tensor:
    return latent_residuals(model, *latents, steps).float().cpu()


def clip_residuals(model: LatentWorldModel, clips: Sequence[Clip], normalizer: Any, steps: int = 1) -> Tensor:
    """``k``-step residuals ``pred - z`` of equal-length clips: ``(len(clips), T-1, D)`` float32 (CPU)."""
    return _residuals(model, clip_latents(model, clips, normalizer), steps)


def clip_scores(model: LatentWorldModel, clips: Sequence[Clip], normalizer: Any,
                calibration: SurpriseCalibration | None = None, steps: int = 1, kind: str = "whitened") -> np.ndarray:
    """Per-frame scores ``(len(clips), T-1)`` float64; without a calibration, raw mean squared errors."""
    res = clip_residuals(model, clips, normalizer, steps)
    scores = res.pow(2).mean(-1) if calibration is None else calibration.score(res, steps, kind)
    return scores.double().numpy()


@torch.no_grad()
def fit_calibration(model: LatentWorldModel, clips: Sequence[Clip], normalizer: Any, *, steps: Sequence[int] = (1,),
                    target_fpr: float = 0.01, check_fraction: float = 0.5, seed: int = 0,
                    source: str = "") -> SurpriseCalibration:
    """Fit normalizations and a threshold per score kind and horizon in ``steps`` on ``clips``.

    The clips are split (seeded, by clip) into a fit part and a check part of ``check_fraction``.
    Needs enough fit frames for the quantile (``5 / target_fpr``) and the whitening (``2 D``).
    """
    if not 0 < target_fpr < 0.5:
        raise ValueError(f"target_fpr must be in (0, 0.5), e.g. 0.01 for one false alarm per 100 frames, got {target_fpr}")
    if not 0 < check_fraction < 1:
        raise ValueError(f"check_fraction must be in (0, 1), got {check_fraction}")
    if len(clips) < 2:
        raise ValueError(f"calibration needs at least 2 in-distribution clips, got {len(clips)}")
    model.eval()
    order = np.random.default_rng(seed).permutation(len(clips))
    n_check = min(len(clips) - 1, max(1, int(round(len(clips) * check_fraction))))
    check, fit = [clips[i] for i in order[:n_check]], [clips[i] for i in order[n_check:]]
    fit_lat, check_lat = clip_latents(model, fit, normalizer), clip_latents(model, check, normalizer)  # encoded once
    scale = embedding_scale(fit_lat[0]).cpu()
    ks = sorted(set(int(s) for s in steps))
    fit_res = {k: _residuals(model, fit_lat, k) for k in ks}
    if fit_res[ks[0]].shape[:2].numel() < 5 / target_fpr:
        raise ValueError(f"{fit_res[ks[0]].shape[:2].numel()} in-distribution frames are too few for a {target_fpr} "
                         f"false-alarm quantile (need >= {int(5 / target_fpr)}); use more held-out episodes "
                         "(or --generate) or a larger target_fpr")
    whiten = {k: fit_whitener(fit_res[k]) for k in ks}
    cal = SurpriseCalibration(scale, {k: w[0] for k, w in whiten.items()}, {k: w[1] for k, w in whiten.items()},
                              thresholds={}, source=source, clips=len(clips))
    for k in ks:
        check_res = _residuals(model, check_lat, k)
        for kind in SCORE_KINDS:
            fit_s = _out_of_fold_scores(cal, fit_res[k], k, kind)
            thr = float(np.quantile(fit_s, 1.0 - target_fpr))
            check_s = cal.score(check_res, k, kind).double().numpy().ravel()
            alarms = int((check_s > thr).sum())
            cal.thresholds[(kind, k)] = Threshold(kind=kind, steps=k, threshold=thr, target_fpr=target_fpr,
                                                  fit_scores=int(fit_s.size), check_fpr=alarms / check_s.size,
                                                  check_ci95=wilson_interval(alarms, check_s.size),
                                                  check_scores=int(check_s.size), median_score=float(np.median(fit_s)))
    return cal


def _out_of_fold_scores(cal: SurpriseCalibration, residuals: Tensor, steps: int, kind: str,
                        folds: int = 5) -> np.ndarray:
    """Fit-half scores for the quantile, each clip scored by a whitener fitted without it.

    A Mahalanobis distance is smaller on the very residuals its covariance was fitted to (with
    1,000 frames in 128 dimensions an in-sample threshold doubled the false-alarm rate), so the
    whitened scores are cross-fitted over ``folds`` folds of clips; with fewer folds each fold's
    whitener, fitted on less data, is noisier than the final one and the threshold too high.
    ``diag`` fits nothing to residuals.
    """
    if kind == "diag":
        return cal.score(residuals, steps, kind).double().numpy().ravel()
    fold_of = np.arange(residuals.shape[0]) % folds
    out = []
    for f in range(min(folds, residuals.shape[0])):
        mean, w = fit_whitener(residuals[torch.from_numpy(fold_of != f)])
        out.append(whitened_error(residuals[torch.from_numpy(fold_of == f)], mean, w).double().numpy().ravel())
    return np.concatenate(out)
