"""An expert-like scripted PushT policy: push the T toward random target poses (position and angle).

The block in `forethought/PushT-v0` is quasi-static (gym-pusht zeroes body velocities every
physics sub-step) and the agent-block contact is frictionless (pymunk's default friction 0), so
a push at a boundary point with inward normal `n` and lever arm `l = (p - com) x n` moves the
block's centre of gravity along `n` and turns it: per unit of push depth, the centre moves
`1 / (1 + l^2 / k^2)` along `n` and the angle changes by `(l / k^2) / (1 + l^2 / k^2)`, with `k^2`
the block's moment of inertia per unit mass (measured in the env: within 15%, the agent sliding
along the edge as the block turns). Every step the policy:

1. scores every candidate contact on the T's edges (every 5 units) by the rate at which it
   would reduce the pose error (position and angle, `_ANGLE_SCALE` units per radian): the error
   its best push removes, over the steps it takes to get there and push;
2. pushes if the agent is already at a contact nearly as good as the best one (on its approach
   line or touching it), aiming the PD target inside the block by the depth that removes most
   error (small near the target pose);
3. otherwise heads for the best contact (kept unless another becomes clearly better): sliding
   along the T in light contact if it touches it and that is quicker, else around the T clear of
   it (never through it) to a pre-contact point on the contact's normal
   (:class:`~forethought.data.pusht_geometry.TeeRoutes`).

A new random target pose (drawn as the env draws goals) starts when the block is within
`pos_tol` and `angle_tol` of the current one, or after `segment_steps` steps. Gaussian noise on
the normalized action makes the data noisy like replayed demonstrations. Measured by
bench/pusht_expert.py (docs/results.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.data.pusht_geometry import (
    AGENT_RANGE,
    COM_LOCAL,
    GYRATION2,
    TeeRoutes,
    contact_candidates,
    rot,
    wrap,
)

__all__ = ["PushTExpertPolicy"]

_ANGLE_SCALE = 60.0  # world units per radian when comparing position and angle errors
_STANDOFF = 10.0  # a pre-contact point is this far beyond the contact position
_GO_SPEED = 20.0  # world units per step the agent travels around the T (about; PD at full action)
_SLIDE_SPEED = 20.0  # world units per step the agent slides along the T
_PUSH_SPEED = 15.0  # world units per step the agent advances while pushing
_APPROACH_STEPS = 3.0  # steps lost to stop at a pre-contact point and start the push
_KEEP = 0.8  # keep heading for the current contact while its rate is at least this share of the best
_KEEP_PUSHING = 0.6  # keep pushing while this contact's rate is at least this share of the chosen one
_MAX_PUSH = 60.0  # deepest PD target inside the block (beyond it the action saturates anyway)


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    """A block pose (x, y, angle) drawn as the env draws its goals."""
    return np.array([rng.uniform(100, 400), rng.uniform(100, 400), rng.uniform(0, 2 * np.pi)])


class PushTExpertPolicy:
    """Expert-like scripted pusher for `forethought/PushT-v0`, reading `info["state"]`.

    Pushes the T toward a random target pose per segment (see the module docstring): picks the
    contact whose push best reduces the pose error, goes to it (along or around the T), pushes,
    and re-plans every step. Collection may read the true state; the agent being trained never does.

    Args:
        action_space: the env's action space, `Box(-1, 1, (2,))`.
        max_delta: the env's `max_delta` (world units per unit action; PushT's default 50).
        noise: standard deviation of Gaussian noise added to the normalized action.
        speed: largest normalized action before noise, in (0, 1]: the PD target moves at most
            `speed * max_delta` per step. 1 pushes as fast as the env allows (the block moves a
            median 80-100 units in 25 steps); 0.3 paces it like replayed human demonstrations
            (docs/results.md, "The scripted PushT expert").
        segment_steps: steps before a new target pose is drawn if the block has not reached it.
        pos_tol, angle_tol: the block (origin) within these of the target pose ends a segment
            (world units, radians; tighter than the env's success test, 20 and pi / 9).
    """

    name = "pusht-expert"

    def __init__(self, action_space: spaces.Box, max_delta: float = 50.0, noise: float = 0.1,
                 speed: float = 1.0, segment_steps: int = 200, pos_tol: float = 15.0, angle_tol: float = np.pi / 12) -> None:
        if not isinstance(action_space, spaces.Box) or action_space.shape != (2,):
            raise ValueError(f"policy 'pusht-expert' needs PushT's Box(-1, 1, (2,)) action space, got {action_space}")
        if not (max_delta > 0 and noise >= 0 and 0 < speed <= 1 and segment_steps >= 1 and pos_tol > 0 and angle_tol > 0):
            raise ValueError("policy 'pusht-expert': need max_delta > 0, noise >= 0, 0 < speed <= 1, segment_steps >= 1, "
                             f"pos_tol > 0 and angle_tol > 0; got {max_delta}, {noise}, {speed}, {segment_steps}, "
                             f"{pos_tol}, {angle_tol}")
        self.low, self.high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
        self.max_delta, self.noise, self.segment_steps = float(max_delta), float(noise), int(segment_steps)
        self.speed = float(speed)
        self.pos_tol, self.angle_tol = float(pos_tol), float(angle_tol)
        c = contact_candidates(standoff=_STANDOFF)
        gain = 1.0 / (1.0 + c["lever"] ** 2 / GYRATION2)  # motion per unit push: (centre (2), scaled angle)
        turn = _ANGLE_SCALE * c["lever"] / GYRATION2 * gain
        self._motion = np.concatenate([-c["normal"] * gain[:, None], turn[:, None]], 1)
        self._cand = c
        self._routes = TeeRoutes(c["agent"], c["pre"])
        self._rng: np.random.Generator | None = None
        self.target = np.zeros(3)  # block origin x, y, angle
        self._steps = 0
        self._contact: int | None = None
        self.mode = ""  # what the last action did: "push", "slide" (along the T), "go" (around it), "back" (off it)

    # --- episodes and segments -------------------------------------------------------------------
    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            raise RuntimeError("PushTExpertPolicy: call reset(rng) before act()")
        return self._rng

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: all its randomness (targets, noise) comes from `rng`."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"reset needs a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
        self._rng = rng
        self.set_target(_random_pose(rng))

    def set_target(self, pose: np.ndarray) -> None:
        """Push the block toward `pose` = (x, y, angle) of its origin, as the env's `state[2:5]`."""
        self.target = np.asarray(pose, dtype=np.float64).reshape(3).copy()
        self._steps, self._contact = 0, None

    def reached(self, state: np.ndarray) -> bool:
        """Whether the block in `state` is within this policy's tolerance of its target."""
        d_pos = float(np.hypot(*(state[2:4] - self.target[:2])))
        return d_pos < self.pos_tol and abs(wrap(state[4] - self.target[2])) < self.angle_tol

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        state = np.asarray(info["state"], dtype=np.float64)
        if state.shape[0] < 5:
            raise ValueError("pusht-expert policy needs PushT's info['state'] (agent xy, block xy, angle), "
                             f"got shape {state.shape}; use it with forethought/PushT-v0")
        self._steps += 1
        if self.reached(state) or self._steps > self.segment_steps:
            self.set_target(_random_pose(self.rng))
        a = (self._plan(state) - state[:2]) / self.max_delta
        a = a * min(1.0, self.speed / max(float(np.abs(a).max()), 1e-12))  # keep the direction when the step is too long
        a = np.clip(a + self.noise * self.rng.normal(size=2), -1.0, 1.0)
        return np.clip(self.low + (a + 1.0) * 0.5 * (self.high - self.low), self.low, self.high).astype(np.float32)

    # --- planning -----------------------------------------------------------------------------
    def _plan(self, state: np.ndarray) -> np.ndarray:
        """Where to put the PD target this step (world coordinates)."""
        agent, block, angle = state[:2], state[2:4], state[4]
        r = rot(angle)
        com, goal_com = block + r @ COM_LOCAL, self.target[:2] + rot(self.target[2]) @ COM_LOCAL
        err = np.concatenate([r.T @ (goal_com - com), [_ANGLE_SCALE * wrap(self.target[2] - angle)]])
        c, m, a = self._cand, self._motion, r.T @ (agent - block)  # a: the agent in the block frame
        # Each contact's best push: its depth along the motion, the error it removes, that per step.
        e_norm = float(np.linalg.norm(err))
        gm, mm = np.maximum(m @ err, 0.0), np.einsum("ij,ij->i", m, m)
        depth = gm / mm
        gain = e_norm - np.sqrt(np.maximum(e_norm**2 - gm**2 / mm, 0.0))
        # Engaged: on a contact's approach line (a cone behind it, or touching near it).
        rel = a - c["agent"]
        along = np.einsum("ij,ij->i", rel, c["normal"])
        lateral = np.abs(rel[:, 0] * c["normal"][:, 1] - rel[:, 1] * c["normal"][:, 0])
        engaged = (along >= -6.0) & (along <= _STANDOFF + 6.0) & (lateral <= np.maximum(10.0, 3.0 + 0.5 * along))
        around = self._routes.around(a) / _GO_SPEED + _APPROACH_STEPS
        slide = self._routes.along(a) / _SLIDE_SPEED
        steps = np.where(engaged, 0.0, np.minimum(around, slide)) + depth / _PUSH_SPEED + 1.0
        rate = gain / steps
        pre = block + c["pre"] @ r.T
        rate = np.where(np.all((pre > AGENT_RANGE[0]) & (pre < AGENT_RANGE[1]), axis=1), rate, -1.0)  # off the walls
        best, k = int(np.argmax(rate)), self._contact
        if k is None or rate[k] < _KEEP * rate[best]:
            k = best
        if engaged.any():  # push here if it is nearly as good as going to the chosen contact
            e = int(np.argmax(np.where(engaged, rate, -np.inf)))
            if gm[e] > 0 and rate[e] >= _KEEP_PUSHING * rate[k]:
                self._contact, self.mode = e, "push"
                push = float(np.clip(depth[e], 2.0, _MAX_PUSH)) + max(float(along[e]), 0.0)
                return block + r @ (c["agent"][e] - push * c["normal"][e])
        self._contact = k
        if slide[k] < around[k]:
            self.mode = "slide"
            return block + r @ self._routes.along_waypoint(a, k)
        waypoint, self.mode = self._routes.around_waypoint(a, k)
        return block + r @ waypoint
