"""CUSUM surprise detector: calibrated false-alarm rate on fresh in-distribution streams, fast
detection of a sustained rise, and on a real trained model: fires after the motor changes, rarely
without."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.envs import make
from forethought.surprise import clip_scores, fit_calibration
from forethought.surprise.cusum import CusumCalibration, CusumDetector, alarm_count, calibrate_cusum, log_ratio
from forethought.surprise.perturbations import ActionScale, run_clip

from .conftest import ENV_ID, ENV_KWARGS, FRAMESKIP
from .test_calibration import _normal_clips

D = 32


def _id_scores(rng: np.random.Generator, episodes: int, frames: int = 10) -> list[np.ndarray]:
    """Whitened surprise in distribution is chi^2_D / D: one stream per episode."""
    return [rng.chisquare(D, frames) / D for _ in range(episodes)]


def _run(det: CusumDetector, scores: np.ndarray) -> list[int]:
    """Feed a stream without episode positions; the frames that fired."""
    return [t for t, s in enumerate(scores) if det.update(float(s))]


def _run_episodes(det: CusumDetector, scores: np.ndarray) -> list[int]:
    """Feed ``(episodes, T)`` scores episode after episode, with positions; the frames that fired."""
    T = scores.shape[1]
    return [e * T + j for e, row in enumerate(scores) for j, s in enumerate(row) if det.update(float(s), j)]


def test_calibrated_rate_holds_on_fresh_streams_and_a_doubling_is_caught_fast() -> None:
    rng = np.random.default_rng(0)
    cal = calibrate_cusum(_id_scores(rng, 1000), target_rate=1e-3, ratio=2.0, seed=0)
    assert cal.measured_rate <= 3e-3  # on the held-out half
    fresh = np.concatenate(_id_scores(np.random.default_rng(1), 5000))  # 50k frames never seen
    rate = alarm_count(log_ratio(fresh, cal.reference), cal.drift, cal.threshold) / fresh.size
    assert rate <= 3e-3, rate  # target 1e-3: a few times that is the resampling noise at 40 expected alarms
    # Surprise doubles from frame 200 on: the detector fires soon after, not before.
    delays = []
    for seed in range(20):
        r = np.random.default_rng(100 + seed)
        stream = np.concatenate([r.chisquare(D, 200) / D, 2.0 * r.chisquare(D, 200) / D])
        det = CusumDetector(cal)
        alarms = _run(det, stream)
        late = [a for a in alarms if a >= 200]
        assert late, f"seed {seed}: no alarm after the change"
        delays.append(late[0] - 200)
        assert det.change_points[alarms.index(late[0])] >= 190  # the change point is estimated near 200
    assert np.median(delays) <= 15, delays  # a 2x rise of a chi^2_32 / 32 score: ~1 unit of x per frame


def test_the_position_profile_catches_a_change_that_episode_structure_hides() -> None:
    """Episodes whose first frames are normally 6x and 3x as surprising as the rest (a short
    history): with the profile a 1.5x rise is caught within a few frames; without it the start of
    every episode looks like evidence, and the same false-alarm rate needs a far higher threshold."""
    profile = np.array([6, 3, 1.5, 1, 1, 1, 1, 1, 1.0])

    def episodes(rng, n, k=1.0):
        return [k * profile * rng.chisquare(D, 9) / D for _ in range(n)]

    cal = calibrate_cusum(episodes(np.random.default_rng(0), 400), target_rate=1e-3)
    flat = calibrate_cusum(episodes(np.random.default_rng(0), 400), target_rate=1e-3, by_position=False)
    np.testing.assert_allclose(np.array(cal.profile) / cal.profile[-1], profile, rtol=0.15)
    assert flat.threshold > 3 * cal.threshold
    delays = {"profile": [], "flat": []}
    false_alarms = {"profile": 0, "flat": 0}
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        stream = episodes(rng, 20) + episodes(rng, 20, 1.5)  # the change at frame 180
        for name, c, positions in (("profile", cal, True), ("flat", flat, False)):
            det = CusumDetector(c)
            alarms = [e * 9 + j for e, row in enumerate(stream) for j, x in enumerate(row)
                      if det.update(float(x), j if positions else None)]
            false_alarms[name] += sum(a < 180 for a in alarms)
            delays[name].append(next((a - 180 for a in alarms if a >= 180), 999))
    assert np.median(delays["profile"]) <= 6 and np.median(delays["profile"]) < np.median(delays["flat"]), delays
    assert false_alarms["profile"] <= 15  # 5400 normal frames at 1e-3: ~5 expected


def test_detector_state_round_trips_and_reset_starts_over(tmp_path) -> None:
    rng = np.random.default_rng(2)
    cal = calibrate_cusum(_id_scores(rng, 60), target_rate=1e-2, seed=1, source="test")
    path = cal.save(tmp_path / "cusum.json")
    assert CusumCalibration.load(path) == cal
    scores = 3.0 * rng.chisquare(D, 100) / D
    a, b = CusumDetector(cal), CusumDetector(cal)
    _run(a, scores[:37])
    b.load_state(a.state())
    assert _run(a, scores[37:]) == _run(b, scores[37:]) and a.state() == b.state()
    assert len(cal.profile) == 10 and np.allclose(cal.profile, 1.0, atol=0.3)  # iid streams: a flat profile
    a.update(5.0)
    a.reset()
    assert a.statistic == 0.0 and a.frames == 101


def test_errors_say_what_is_wrong(tmp_path) -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="at least 2 in-distribution episodes and 200"):
        calibrate_cusum(_id_scores(rng, 5))
    with pytest.raises(ValueError, match="target_rate"):
        calibrate_cusum(_id_scores(rng, 50), target_rate=0.7)
    (tmp_path / "bad.json").write_text('{"reference": 1}')
    with pytest.raises(ValueError, match="not a CUSUM calibration"):
        CusumCalibration.load(tmp_path / "bad.json")


def test_fires_when_the_motor_changes_and_rarely_without(trained) -> None:
    """The real thing: a trained TwoRoom model, calibrated on normal episodes; then a stream of
    normal episodes (few alarms) and one where the motor runs backwards from episode 10 on.

    (A reversed motor, not a weak one: this 200-step test model predicts little motion, so a motor
    at 0.3 makes its predictions *better*; a well-trained model is needed to see that change.)"""
    normal_id = _normal_clips(120, 30_000)
    per_frame = fit_calibration(trained.model, normal_id[:60], trained.normalizer, target_fpr=0.02)
    id_scores = clip_scores(trained.model, normal_id[60:], trained.normalizer, per_frame)
    cal = calibrate_cusum(list(id_scores), target_rate=2e-3, ratio=2.0)
    env = make(ENV_ID, **ENV_KWARGS)
    normal = _normal_clips(40, 40_000)
    weak = [run_clip(env, 40_000 + i, c.actions.reshape(-1, 2), FRAMESKIP, ActionScale(factor=-1.0), 1)
            for i, c in enumerate(normal)]
    scores_n = clip_scores(trained.model, normal, trained.normalizer, per_frame)  # (40, 11)
    scores_w = clip_scores(trained.model, weak, trained.normalizer, per_frame)
    assert len(cal.profile) == id_scores.shape[1] and cal.profile[0] > cal.profile[-1]  # the first frames: more surprise
    det = CusumDetector(cal)
    quiet = _run_episodes(det, scores_n)
    assert len(quiet) <= 2, quiet  # 440 normal frames at 2e-3: ~1 expected
    det = CusumDetector(cal)
    alarms = _run_episodes(det, np.concatenate([scores_n[:10], scores_w[10:]]))  # the change at frame 110
    assert [a for a in alarms if a >= 110], alarms
    first = next(a for a in alarms if a >= 110)
    assert first - 110 <= 33, (first, alarms)  # within three episodes of the change

