"""The registry: built-in ids, gymnasium pass-through, clear errors, lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import pytest

from forethought.envs import GoalEnv, UnknownEnvError, builtin_env_ids, make


def test_builtin_ids_are_the_documented_five():
    assert builtin_env_ids() == [
        "forethought/TwoRoom-v0", "forethought/MultiRoom-v0", "forethought/PushT-v0", "forethought/PointMaze-v0",
        "forethought/Reacher-v0",
    ]


@pytest.mark.parametrize("bad", ["forethought/TwoRoom-v9", "NoSuchEnv-v0", "nosuchns/Env-v0", "no_such_module:Env-v0"])
def test_unknown_id_error_lists_builtin_ids(bad):
    with pytest.raises(UnknownEnvError) as err:
        make(bad)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert bad in msg
    for env_id in builtin_env_ids():
        assert env_id in msg
    assert "gymnasium" in msg


def test_other_gymnasium_ids_pass_through():
    env = make("CartPole-v1", max_episode_steps=7)
    assert env.spec.id == "CartPole-v1" and env.spec.max_episode_steps == 7
    env.reset(seed=0)


def test_builtin_is_a_goal_env_with_time_limit():
    env = make("forethought/TwoRoom-v0")
    assert isinstance(env.unwrapped, GoalEnv)
    assert isinstance(env, gymnasium.wrappers.TimeLimit) and env.spec.max_episode_steps == 100


def test_importing_envs_imports_no_simulator():
    code = ("import sys, forethought.envs as e; e.make('forethought/TwoRoom-v0');"
            "bad = [m for m in ('pymunk', 'pygame', 'mujoco', 'dm_control', 'gym_pusht') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_env_id_type():
    with pytest.raises(TypeError):
        make(None)  # type: ignore[arg-type]
