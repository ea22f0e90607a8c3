"""Collection policies: determinism from rng, actions in bounds, smoothness, errors, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium import spaces

from forethought.data.policies import Policy, make_policy, policy_names

BOX = spaces.Box(np.array([-1.0, 0.0, -3.0], np.float32), np.array([1.0, 2.0, 5.0], np.float32))
PUSHT_BOX = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


def _pusht_info(rng: np.random.Generator) -> dict:
    return {"state": np.concatenate([rng.uniform(50, 450, 2), rng.uniform(100, 400, 2), rng.uniform(0, 6, 1), [0, 0]])}


def _run(name: str, space: spaces.Box, seed: int, steps: int = 200) -> np.ndarray:
    policy = make_policy(name, space)
    policy.reset(np.random.default_rng(seed))
    info_rng = np.random.default_rng(123)
    obs = np.zeros((8, 8, 3), np.uint8)
    return np.stack([policy.act(obs, _pusht_info(info_rng)) for _ in range(steps)])


CASES = [("random", BOX), ("smooth", BOX), ("pusht", PUSHT_BOX), ("pusht-expert", PUSHT_BOX)]


@pytest.mark.parametrize("name,space", CASES)
def test_deterministic_given_rng(name, space):
    a, b, c = _run(name, space, 0), _run(name, space, 0), _run(name, space, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name,space", CASES)
def test_actions_inside_bounds(name, space):
    acts = _run(name, space, 0, steps=2000)
    assert acts.dtype == np.float32 and acts.shape == (2000, space.shape[0])
    assert all(space.contains(a) for a in acts)
    # And they use the box: not stuck in a corner or at the centre.
    span = (acts.max(0) - acts.min(0)) / (space.high - space.low)
    assert np.all(span > 0.5), span


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


def test_smooth_policy_is_temporally_correlated_and_random_is_not():
    smooth = _run("smooth", BOX, 0, steps=3000)
    rand = _run("random", BOX, 0, steps=3000)
    for d in range(3):
        assert _lag1(smooth[:, d]) > 0.8
        assert abs(_lag1(rand[:, d])) < 0.1


def test_reset_restarts_the_episode_stream():
    policy = make_policy("smooth", BOX)
    obs, info = np.zeros(1), {}
    policy.reset(np.random.default_rng(5))
    first = [policy.act(obs, info) for _ in range(10)]
    policy.reset(np.random.default_rng(5))
    again = [policy.act(obs, info) for _ in range(10)]
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name,space", CASES)
def test_picklable_and_protocol(name, space):
    policy = make_policy(name, space)
    assert isinstance(policy, Policy)
    policy.reset(np.random.default_rng(0))
    clone = pickle.loads(pickle.dumps(policy))
    info = _pusht_info(np.random.default_rng(9))
    np.testing.assert_array_equal(policy.act(None, info), clone.act(None, info))


def test_act_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        make_policy("random", BOX).act(None, {})


def test_unknown_name_lists_names():
    with pytest.raises(ValueError) as err:
        make_policy("smoth", BOX)
    for name in policy_names():
        assert name in str(err.value)


def test_pusht_policy_checks_env():
    with pytest.raises(ValueError, match="PushT"):
        make_policy("pusht", PUSHT_BOX, env_id="forethought/TwoRoom-v0")
    make_policy("pusht", PUSHT_BOX, env_id="forethought/PushT-v0")


def test_bad_spaces_and_args():
    with pytest.raises(TypeError):
        make_policy("random", spaces.Discrete(3))
    with pytest.raises(ValueError, match="finite"):
        make_policy("random", spaces.Box(-np.inf, np.inf, shape=(2,)))
    with pytest.raises(ValueError, match="theta"):
        make_policy("smooth", BOX, theta=0.0)


def test_unknown_policy_argument_lists_the_accepted_ones():
    with pytest.raises(ValueError) as err:
        make_policy("pusht-expert", PUSHT_BOX, nois=0.3)
    assert "'nois'" in str(err.value) and "noise" in str(err.value) and "--policy-kwargs" in str(err.value)
    with pytest.raises(ValueError, match="theta, sigma"):
        make_policy("smooth", BOX, sigm=0.3)
