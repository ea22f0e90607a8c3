"""SurpriseMonitor: streamed scores equal offline ones; the callback fires on a planted event and
not before it; it drives a real MPCAgent to replan; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.agent import MPCAgent
from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.planning import make_planner
from forethought.surprise import (SurpriseCalibration, SurpriseMonitor, SurpriseStop, UncalibratedError, clip_scores,
                                  fit_calibration, make_perturbation, paired_clips, stop_on_alarm)
from forethought.surprise.clips import clip_batch

from .conftest import ENV_ID, ENV_KWARGS, FRAMESKIP
from .test_calibration import _normal_clips

EVENT = 6


@pytest.fixture(scope="module")
def calibration(trained) -> SurpriseCalibration:
    return fit_calibration(trained.model, _normal_clips(120, 20_000), trained.normalizer, steps=(1, 2),
                           target_fpr=0.01)


def _teleport_pair(seed: int = 7):
    env = make(ENV_ID, **ENV_KWARGS)
    return paired_clips(env, make_policy("smooth", env.action_space), make_perturbation("teleport"), seed, 12,
                        FRAMESKIP, EVENT)


def _stream(monitor: SurpriseMonitor, clip, normalizer) -> list[str]:
    obs, actions = clip_batch([clip], normalizer)
    with torch.no_grad():
        z = monitor.model.encode(obs)[0]
    monitor.reset()
    return [monitor.observe(z[t : t + 1], actions[:, t - 1] if t else None) for t in range(len(clip))]


@pytest.mark.parametrize("steps", [1, 2])
def test_streamed_scores_equal_offline_scores(trained, calibration, steps) -> None:
    normal, perturbed = _teleport_pair()
    monitor = SurpriseMonitor(trained.model, calibration, steps=steps, on_alarm=None)
    for clip in (normal, perturbed):
        _stream(monitor, clip, trained.normalizer)
        offline = clip_scores(trained.model, [clip], trained.normalizer, calibration, steps)[0]
        np.testing.assert_allclose(np.concatenate(monitor.scores), offline, rtol=1e-4, atol=1e-7)


def test_callback_fires_at_the_planted_event_and_not_before(trained, calibration) -> None:
    calls: list[int] = []

    def on_alarm(event) -> str:
        calls.append(event.frame)
        assert event.alarms.all() and event.scores[0] > event.threshold
        return "replan"

    monitor = SurpriseMonitor(trained.model, calibration, on_alarm=on_alarm)
    false_alarms: dict[int, list[int]] = {}
    for seed in range(4):
        normal, perturbed = _teleport_pair(seed)
        calls.clear()
        _stream(monitor, normal, trained.normalizer)
        false_alarms[seed] = list(calls)
        calls.clear()
        decisions = _stream(monitor, perturbed, trained.normalizer)
        assert all(f >= EVENT for f in calls), f"alarm before the event (seed {seed}): {calls}"
        assert calls and calls[0] == EVENT, f"seed {seed}: alarms at {calls}, event at frame {EVENT}"
        assert decisions[EVENT] == "replan" and set(decisions[:EVENT]) == {"continue"}
    # The normal twins: at a 1% per-frame target over 4 x 11 scored frames about 0.4 false alarms
    # are expected in all; more than 2 (P < 1% for Poisson(0.44)) means the threshold is off.
    assert sum(map(len, false_alarms.values())) <= 2, false_alarms


def test_stop_on_alarm_raises_with_the_event(trained, calibration) -> None:
    _, perturbed = _teleport_pair()
    monitor = SurpriseMonitor(trained.model, calibration, on_alarm=stop_on_alarm)
    with pytest.raises(SurpriseStop, match=f"frame {EVENT}") as info:
        _stream(monitor, perturbed, trained.normalizer)
    assert info.value.event.frame == EVENT


def test_agent_replans_at_once_on_an_alarm(trained, calibration) -> None:
    """A teleport in the middle of a planned segment makes the agent drop its queue and plan."""
    env = make(ENV_ID, **ENV_KWARGS)
    planner = make_planner("cem", samples=8, iterations=1, seed=0)
    monitor = SurpriseMonitor(trained.model, calibration)
    agent = MPCAgent(trained.model, planner, action_space=env.action_space, horizon=4, receding=4, monitor=monitor)
    obs, _ = env.reset(seed=3)
    goal = env.unwrapped.render_state(np.array([10.0, 10.0]))
    agent.reset(goal)
    decided_at = []
    for t in range(8 * FRAMESKIP):
        if t == 5 * FRAMESKIP - 1:  # the frame at step 5 * FRAMESKIP shows the agent in the far corner
            here = env.unwrapped.get_state()
            env.unwrapped.set_state(np.where(here < 32, 54.0, 10.0))
        n = len(agent.decision_times)
        obs, *_ = env.step(agent.act(obs))
        if len(agent.decision_times) > n:
            decided_at.append(t)
    # Cadence without alarms: a decision every receding * frameskip = 12 env steps (0, 12, ...);
    # the alarm at env step 15 (model frame 5) forces one there.
    assert 0 in decided_at and 12 in decided_at
    assert [e.frame for e in monitor.events] == [5]
    assert 15 in decided_at
    agent.reset(goal)  # resets the monitor too
    assert monitor.frame == -1 and monitor.events == []


def test_monitor_errors(trained, calibration) -> None:
    with pytest.raises(UncalibratedError, match="surprise-calibrate"):
        SurpriseMonitor(trained.model, calibration, steps=4)
    with pytest.raises(TypeError, match="SurpriseCalibration"):
        SurpriseMonitor(trained.model, {"scale": [1.0]})
    wrong = SurpriseCalibration(torch.ones(3), {1: torch.zeros(3)}, {1: torch.eye(3)}, calibration.thresholds)
    with pytest.raises(ValueError, match="another model"):
        SurpriseMonitor(trained.model, wrong)
    monitor = SurpriseMonitor(trained.model, calibration)
    z = torch.zeros(1, trained.model.latent_dim)
    with pytest.raises(ValueError, match="first frame"):
        monitor.observe(z, torch.zeros(1, trained.model.action_dim))
    monitor.observe(z, None)
    with pytest.raises(ValueError, match="only for the first frame"):
        monitor.observe(z, None)
