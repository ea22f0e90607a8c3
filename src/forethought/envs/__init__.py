"""Environments: a registry over gymnasium plus five built-in pixel envs with a goal API.

>>> from forethought.envs import make
>>> env = make("forethought/TwoRoom-v0", image_size=64)
>>> obs, info = env.reset(seed=0)          # obs: uint8 (64, 64, 3); info["state"]: float64 (2,)
>>> env.unwrapped.render_goal().shape
(64, 64, 3)

Built-ins are registered with gymnasium on first use, with entry points given as strings, so
importing this package imports neither pymunk nor mujoco. Any other registered gymnasium id is
passed to `gymnasium.make` unchanged (including the `"module:EnvName-v0"` form).
"""

from __future__ import annotations

from typing import Any

import gymnasium

from forethought.envs.protocols import GoalEnv

__all__ = ["GoalEnv", "UnknownEnvError", "builtin_env_ids", "make"]

# id -> (entry point, default max_episode_steps, what the id needs)
_BUILTINS: dict[str, tuple[str, int, str]] = {
    "forethought/TwoRoom-v0": ("forethought.envs.two_room:TwoRoomEnv", 100, "numpy only"),
    "forethought/MultiRoom-v0": ("forethought.envs.multi_room:MultiRoomEnv", 200, "numpy only"),
    "forethought/PushT-v0": ("forethought.envs.pusht:PushTEnv", 300, "the [pusht] extra"),
    "forethought/PointMaze-v0": ("forethought.envs.point_maze:PointMazeEnv", 200, "the [mujoco] extra"),
    "forethought/Reacher-v0": ("forethought.envs.reacher:ReacherEnv", 200, "the [mujoco] extra"),
}


class UnknownEnvError(ValueError):
    """An env id that is neither built in nor registered with gymnasium."""


def builtin_env_ids() -> list[str]:
    """The ids of Forethought's built-in environments."""
    return list(_BUILTINS)


def _register_builtins() -> None:
    for env_id, (entry_point, max_steps, _) in _BUILTINS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


def _unknown(env_id: str, why: str = "") -> UnknownEnvError:
    ids = "\n".join(f"  {i}  ({need})" for i, (_, _, need) in _BUILTINS.items())
    why = f" ({why})" if why else ""
    return UnknownEnvError(
        f"Unknown env id {env_id!r}{why}. Built-in ids:\n{ids}\n"
        "Any id registered with gymnasium also works (see gymnasium.pprint_registry()), "
        "as does 'some_module:EnvName-v0' to import the module that registers it."
    )


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """Create an environment by id.

    Built-in ids get kwargs such as `image_size` (see each env class); `max_episode_steps` and
    `render_mode` are understood by `gymnasium.make` for every id.
    """
    if not isinstance(env_id, str) or not env_id:
        raise TypeError(f"env_id must be a non-empty string, got {env_id!r}")
    _register_builtins()
    if env_id in _BUILTINS:
        return gymnasium.make(env_id, **kwargs)
    try:
        return gymnasium.make(env_id, **kwargs)
    except gymnasium.error.UnregisteredEnv as e:
        raise _unknown(env_id, str(e).splitlines()[0]) from e
    except ModuleNotFoundError as e:
        if ":" in env_id:  # the 'module:EnvName-v0' form, and the module did not import
            raise _unknown(env_id, str(e).splitlines()[0]) from e
        raise
