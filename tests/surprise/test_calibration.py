"""Calibration: the threshold gives its target false-alarm rate on fresh in-distribution clips;
save / load; clear errors when a model is not calibrated."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.evaluation.stats import wilson_interval
from forethought.surprise import SurpriseCalibration, UncalibratedError, clip_scores, fit_calibration
from forethought.surprise.perturbations import policy_clip

from .conftest import ENV_ID, ENV_KWARGS, FRAMESKIP


def _normal_clips(n: int, first_seed: int, frames: int = 12) -> list:
    env = make(ENV_ID, **ENV_KWARGS)
    policy = make_policy("smooth", env.action_space)
    return [policy_clip(env, policy, s, frames, FRAMESKIP) for s in range(first_seed, first_seed + n)]


@pytest.fixture(scope="module")
def calibration(trained) -> SurpriseCalibration:
    return fit_calibration(trained.model, _normal_clips(120, 10_000), trained.normalizer, steps=(1, 2),
                           target_fpr=0.05, seed=0)


def test_threshold_hits_the_target_false_alarm_rate_on_fresh_clips(trained, calibration) -> None:
    target = 0.05
    fresh_clips = _normal_clips(80, 50_000)
    for kind, k in [("whitened", 1), ("whitened", 2), ("diag", 1)]:
        t = calibration.thresholds[(kind, k)]
        assert t.fit_scores == 60 * 11 and t.check_scores == 60 * 11
        # Scores of 80 clips never seen by the calibration: the alarm rate is the target within
        # sampling error (frames of one clip are correlated, so allow 4 binomial sigmas).
        fresh = clip_scores(trained.model, fresh_clips, trained.normalizer, calibration, k, kind).ravel()
        rate = float((fresh > t.threshold).mean())
        sigma = math.sqrt(target * (1 - target) / fresh.size)
        assert abs(rate - target) < 4 * sigma, (kind, k, rate)
        assert abs(t.check_fpr - target) < 4 * math.sqrt(target * (1 - target) / t.check_scores)
        # The reported interval is the Wilson interval of the check clips' alarm count.
        alarms = round(t.check_fpr * t.check_scores)
        assert alarms == pytest.approx(t.check_fpr * t.check_scores, abs=1e-6)
        assert t.check_ci95 == pytest.approx(wilson_interval(alarms, t.check_scores), abs=1e-12)
        assert t.check_ci95[1] - t.check_ci95[0] < 0.06  # 660 frames: a usefully narrow interval
    assert calibration.thresholds[("diag", 2)].threshold > calibration.thresholds[("diag", 1)].threshold  # grows with k


def test_scale_is_the_spread_of_held_out_embeddings(trained, calibration) -> None:
    scale = calibration.scale.numpy()
    assert scale.shape == (trained.model.latent_dim,) and np.all(scale > 0)
    assert 0.1 < np.median(scale) < 10  # SIGReg keeps embeddings near unit spread


def test_save_load_round_trip_and_clear_errors(tmp_path, calibration) -> None:
    with pytest.raises(UncalibratedError, match="surprise-calibrate"):
        SurpriseCalibration.load(tmp_path)
    path = calibration.save(tmp_path)
    back = SurpriseCalibration.load(tmp_path)
    assert back.thresholds == calibration.thresholds and back.source == calibration.source
    for k in (1, 2):
        torch.testing.assert_close(back.whitener[k], calibration.whitener[k], rtol=0, atol=0)
    torch.testing.assert_close(back.scale, calibration.scale, rtol=0, atol=0)
    with pytest.raises(UncalibratedError, match="--steps 1 2 5"):
        back.threshold(5)
    with pytest.raises(ValueError, match="unknown surprise score kind"):
        back.threshold(1, "cosine")
    good = path.read_bytes()
    path.write_bytes(good[:100])  # truncated
    with pytest.raises(ValueError, match=r"surprise.safetensors: truncated: .*surprise-calibrate --model"):
        SurpriseCalibration.load(tmp_path)
    from safetensors.torch import save

    path.write_bytes(save({"scale": torch.ones(3)}, metadata={"forethought.surprise": json.dumps({"format_version": 99})}))
    with pytest.raises(ValueError, match="format"):
        SurpriseCalibration.load(tmp_path)
    path.write_bytes(save({"weight": torch.ones(3)}))  # a foreign safetensors file
    with pytest.raises(ValueError, match="no 'forethought.surprise' entry, expected a surprise calibration"):
        SurpriseCalibration.load(tmp_path)


def test_whitened_score_is_the_mahalanobis_distance_of_the_residual(calibration) -> None:
    k, D = 1, calibration.latent_dim
    r = torch.randn(5, D)
    m, W = calibration.residual_mean[k], calibration.whitener[k]
    precision = W @ W.T  # W is the Cholesky factor of the inverse covariance
    d = (r - m).double()
    want = torch.einsum("nd,de,ne->n", d, precision.double(), d) / D
    torch.testing.assert_close(calibration.score(r, k, "whitened").double(), want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(calibration.score(r, k, "diag"), (r / calibration.scale).pow(2).mean(-1))


def test_fit_rejects_bad_settings(trained) -> None:
    clips = _normal_clips(4, 0)
    with pytest.raises(ValueError, match="target_fpr"):
        fit_calibration(trained.model, clips, trained.normalizer, target_fpr=0.7)
    with pytest.raises(ValueError, match="too few"):
        fit_calibration(trained.model, clips, trained.normalizer, target_fpr=0.001)
