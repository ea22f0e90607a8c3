"""Violation of expectation: the impossible clips really break physics, and a trained model
finds them more surprising than their possible twins."""

from __future__ import annotations

import numpy as np

from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.surprise import VoEConfig, voe_evaluation
from forethought.surprise.voe import teleport_pair, through_wall_pair

from .conftest import ENV_ID, ENV_KWARGS, FRAMESKIP


def test_through_wall_clip_crosses_where_the_possible_one_is_stopped() -> None:
    env = make(ENV_ID)
    possible, impossible = through_wall_pair(env, 0, 10, FRAMESKIP)
    np.testing.assert_array_equal(possible.actions, impossible.actions)
    assert possible.states[:, 0].max() < 32 - 2  # stopped left of the wall (centre keeps its radius away)
    assert impossible.states[-1, 0] > 32 + 2  # ended on the other side
    assert 0 <= impossible.event < len(impossible.actions)


def test_teleport_clip_jumps_once() -> None:
    env = make(ENV_ID)
    possible, impossible = teleport_pair(env, make_policy("smooth", env.action_space), 0, 10, FRAMESKIP, 12.0)
    jump = np.linalg.norm(impossible.states - possible.states, axis=1)
    mid = 5
    np.testing.assert_allclose(jump[:mid], 0.0)
    np.testing.assert_allclose(jump[mid:], 12.0)


def test_trained_model_prefers_possible_clips(trained) -> None:
    env = make(ENV_ID, **ENV_KWARGS)
    res = voe_evaluation(trained.model, env, make_policy("smooth", env.action_space), trained.normalizer, FRAMESKIP,
                         None, VoEConfig(pairs=12, frames=8, jump=20.0))  # tiny model, 32 px: a bigger jump
    for kind, r in res.items():
        assert r["accuracy"] >= 0.9, (kind, r)
        assert r["median_impossible"] > r["median_possible"]
