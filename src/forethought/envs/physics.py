"""Changed-physics variants of the built-in envs: env kwargs that change the dynamics, not the look.

The factorized agent of DMPC (Zhou et al. 2025, arXiv 2410.05364) adapts to a changed body by
fine-tuning its dynamics model on a little play data from the changed system (`forethought adapt`).
These kwargs give that changed system. Every one defaults to the unchanged env, is stored in a
dataset's `meta.json` by `forethought collect --env-kwargs '{...}'` (so `eval` runs the same
variant), and leaves observations, states, goals and success tests as they were:

| env | kwarg | what changes | weak / broken example |
|---|---|---|---|
| `forethought/Reacher-v0` | `joint_gain=(shoulder, wrist)` | each motor's gear (torque per unit of action) | `[1.0, 0.3]` weak wrist, `[1.0, 0.0]` dead wrist |
| `forethought/PointMaze-v0` | `mass_scale` | the ball's mass and inertia (a payload) | `3.0` |
| `forethought/PointMaze-v0` | `damping_scale` | the slide joints' viscous damping (more friction; with no gravity the floor's contact friction plays no part) | `10.0` |
| `forethought/TwoRoom-v0` | `motor_gain=(x, y)` | displacement per unit of action along each axis | `[0.3, 0.3]` weak motor, `[0.0, 1.0]` dead x motor |

`VARIANTS` names these examples; the surprise perturbations `action_scale` and `broken_actuator`
(`forethought.surprise.perturbations`) switch on the same change mid-episode through
:func:`scale_action`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "reacher-weak-wrist": ("forethought/Reacher-v0", {"joint_gain": [1.0, 0.3]}),
    "reacher-dead-wrist": ("forethought/Reacher-v0", {"joint_gain": [1.0, 0.0]}),
    "reacher-weak-shoulder": ("forethought/Reacher-v0", {"joint_gain": [0.3, 1.0]}),
    "pointmaze-heavy": ("forethought/PointMaze-v0", {"mass_scale": 3.0}),
    "pointmaze-friction": ("forethought/PointMaze-v0", {"damping_scale": 10.0}),
    "tworoom-weak-motor": ("forethought/TwoRoom-v0", {"motor_gain": [0.3, 0.3]}),
    "tworoom-dead-x": ("forethought/TwoRoom-v0", {"motor_gain": [0.0, 1.0]}),
}
"""Named changed-physics variants: ``name -> (env id, env kwargs)`` (the table above)."""


def check_gains(value: Any, n: int, name: str, env: str) -> np.ndarray:
    """``value`` (a number for all ``n`` or ``n`` numbers) as a float64 ``(n,)`` array of finite gains
    (1 = unchanged, 0.3 = weak, 0 = dead, -1 = a motor wired in reverse)."""
    if isinstance(value, (bool, str)) or value is None:
        raise ValueError(f"{env}: {name} must be {n} numbers (or one for all), got {value!r}")
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.full(n, float(arr[0]))
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{env}: {name} must be {n} finite numbers (1 = unchanged, 0 = dead, -1 = wired in reverse), "
                         f"got {value!r}")
    return arr


def check_scale(value: Any, name: str, env: str) -> float:
    """A finite factor > 0 (1 = unchanged)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{env}: {name} must be a number > 0 (1 = unchanged), got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{env}: {name} must be a finite number > 0 (1 = unchanged), got {value!r}")
    return float(value)


def scale_action(action: np.ndarray, gain: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """``action * gain`` per action dimension, in the action's dtype (a weak or dead motor)."""
    a = np.asarray(action)
    return (a * np.asarray(gain, dtype=np.float64)).astype(a.dtype)


def variant(name: str) -> tuple[str, dict[str, Any]]:
    """``(env id, env kwargs)`` of a named variant of :data:`VARIANTS`."""
    if name not in VARIANTS:
        raise ValueError(f"unknown physics variant {name!r}; available: {', '.join(VARIANTS)}")
    env_id, kwargs = VARIANTS[name]
    return env_id, dict(kwargs)
