"""Data-collection policies: random, temporally smooth, and two scripted PushT pushers.

`pusht` pushes the block's centre toward random points; `pusht-expert`
(:mod:`forethought.data.pusht_expert`) pushes the T toward random target poses, as an expert would.

A policy is built once per worker from the env's action space, seeded only through
`reset(rng)` at the start of each episode, and asked for one action per step from the env's
`(obs, info)`. Policies are plain picklable objects (they are shipped to worker processes).

>>> policy = make_policy("smooth", env.action_space)
>>> policy.reset(np.random.default_rng(0))
>>> action = policy.act(obs, info)     # float32 (A,), inside env.action_space
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from forethought.data.pusht_expert import PushTExpertPolicy

__all__ = ["Policy", "RandomPolicy", "SmoothPolicy", "PushTPolicy", "PushTExpertPolicy", "make_policy", "policy_names"]


@runtime_checkable
class Policy(Protocol):
    """Chooses actions for data collection."""

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode; all randomness of the episode comes from `rng`."""
        ...

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """An action inside the env's action space, float32 `(A,)`."""
        ...


def _check_box(action_space: Any, name: str) -> spaces.Box:
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise TypeError(f"policy {name!r} needs a 1-D gymnasium Box action space, got {action_space}")
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"policy {name!r} needs finite action bounds, got {action_space}")
    return action_space


class _BoxPolicy:
    """Shared: bounds, the per-episode rng, and mapping from [-1, 1]^A to the action box."""

    name = "base"

    def __init__(self, action_space: spaces.Box) -> None:
        box = _check_box(action_space, self.name)
        self.low = box.low.astype(np.float64)
        self.high = box.high.astype(np.float64)
        self.dim = box.shape[0]
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            raise RuntimeError(f"{type(self).__name__}: call reset(rng) before act()")
        return self._rng

    def reset(self, rng: np.random.Generator) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"reset needs a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
        self._rng = rng

    def _to_box(self, u: np.ndarray) -> np.ndarray:
        """Map `u` in [-1, 1]^A to the action box (clipping first), float32."""
        u = np.clip(u, -1.0, 1.0)
        a = self.low + (u + 1.0) * 0.5 * (self.high - self.low)
        return np.clip(a, self.low, self.high).astype(np.float32)


class RandomPolicy(_BoxPolicy):
    """Independent uniform actions in the box."""

    name = "random"

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return self._to_box(self.rng.uniform(-1.0, 1.0, size=self.dim))


class SmoothPolicy(_BoxPolicy):
    """Ornstein-Uhlenbeck actions: temporally correlated, so the agent travels far.

    In normalized units `u in [-1, 1]^A`: `u <- u + theta (0 - u) + sigma sqrt(2 theta) eps`,
    `eps ~ N(0, I)`; the stationary standard deviation is `sigma` and the correlation time
    `1 / theta` steps. Independent random actions make a point agent jitter in place; PLDM's
    TwoRoom data comes from such persistent headings that carry it across rooms.

    Args:
        action_space: a bounded Box.
        theta: mean-reversion rate per step, in (0, 1] (default 0.05: about 20 steps of memory).
        sigma: stationary standard deviation in normalized units (default 0.7).
    """

    name = "smooth"

    def __init__(self, action_space: spaces.Box, theta: float = 0.05, sigma: float = 0.7) -> None:
        super().__init__(action_space)
        if not 0.0 < theta <= 1.0:
            raise ValueError(f"smooth policy: theta must be in (0, 1], got {theta}")
        if not sigma > 0:
            raise ValueError(f"smooth policy: sigma must be > 0, got {sigma}")
        self.theta, self.sigma = float(theta), float(sigma)
        self._u = np.zeros(self.dim)

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self._u = rng.normal(0.0, self.sigma, size=self.dim)  # start from the stationary law

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        noise = self.rng.normal(size=self.dim)
        self._u = (1.0 - self.theta) * self._u + self.sigma * np.sqrt(2.0 * self.theta) * noise
        # Keep the internal state in the box too, so the walk does not stick to a bound.
        self._u = np.clip(self._u, -1.0, 1.0)
        return self._to_box(self._u)


class PushTPolicy(_BoxPolicy):
    """Noisy scripted pusher for `forethought/PushT-v0`, reading `info["state"]`.

    Each segment picks a random target point for the block; the agent goes to a point behind
    the block's centre of mass (opposite the target), going around the block if it is in the
    way, then pushes through the centre toward the target. A new target is drawn when the block
    gets close to it or after `segment_steps` steps. Gaussian action noise (`noise`, in
    normalized units) and the pushes' off-centre contacts make the block turn as well as slide.

    Args:
        action_space: the env's action space, `Box(-1, 1, (2,))`.
        max_delta: the env's `max_delta` (world units per unit action; PushT's default 50).
        noise: standard deviation of Gaussian noise added to the normalized action.
        segment_steps: steps before a new block target is drawn.
    """

    name = "pusht"
    _COM_LOCAL = np.array([0.0, 45.0])  # the T's centre of gravity in block coordinates (gym-pusht)
    _BEHIND = 75.0  # distance behind the centre of mass where a push starts
    _CLEAR = 85.0  # go around the block if the straight path passes closer than this

    def __init__(self, action_space: spaces.Box, max_delta: float = 50.0, noise: float = 0.3,
                 segment_steps: int = 40) -> None:
        super().__init__(action_space)
        if self.dim != 2:
            raise ValueError(f"pusht policy needs a 2-D action space, got {self.dim}-D")
        if not (max_delta > 0 and noise >= 0 and segment_steps >= 1):
            raise ValueError("pusht policy: need max_delta > 0, noise >= 0, segment_steps >= 1")
        self.max_delta, self.noise, self.segment_steps = float(max_delta), float(noise), int(segment_steps)
        self._target = np.zeros(2)
        self._steps = 0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self._new_target()

    def _new_target(self) -> None:
        self._target = self.rng.uniform(120.0, 392.0, size=2)
        self._steps = 0

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        state = np.asarray(info["state"], dtype=np.float64)
        if state.shape[0] < 5:
            raise ValueError(f"pusht policy needs PushT's info['state'] (agent xy, block xy, angle), got {state.shape}")
        agent, block, angle = state[:2], state[2:4], state[4]
        c, s = np.cos(angle), np.sin(angle)
        com = block + np.array([[c, -s], [s, c]]) @ self._COM_LOCAL
        to_target = self._target - com
        dist = float(np.linalg.norm(to_target))
        self._steps += 1
        if dist < 30.0 or self._steps > self.segment_steps:
            self._new_target()
            to_target = self._target - com
            dist = float(np.linalg.norm(to_target))
        u = to_target / max(dist, 1e-6)
        start = com - self._BEHIND * u
        if np.linalg.norm(agent - start) > 25.0:
            goal = self._detour(agent, start, com)
        else:
            goal = com + 40.0 * u  # push through the centre of mass
        a = (goal - agent) / self.max_delta
        a = a + self.noise * self.rng.normal(size=2)
        return self._to_box(a)

    def _detour(self, agent: np.ndarray, start: np.ndarray, com: np.ndarray) -> np.ndarray:
        """Where to head for `start`: straight there, or around the block if it is in the way."""
        seg = start - agent
        length2 = float(seg @ seg)
        t = float(np.clip((com - agent) @ seg / max(length2, 1e-9), 0.0, 1.0))
        closest = agent + t * seg
        gap = com - closest
        if np.linalg.norm(gap) >= self._CLEAR or t in (0.0, 1.0):
            return start
        side = -gap / max(float(np.linalg.norm(gap)), 1e-6)  # away from the block, on the agent's side
        return com + self._CLEAR * 1.3 * side


_POLICIES: dict[str, Callable[..., Policy]] = {
    "random": RandomPolicy,
    "smooth": SmoothPolicy,
    "pusht": PushTPolicy,
    "pusht-expert": PushTExpertPolicy,
}
_ENV_SPECIFIC = {"pusht": "forethought/PushT-v0", "pusht-expert": "forethought/PushT-v0"}


def policy_names() -> list[str]:
    """Names accepted by `make_policy`."""
    return list(_POLICIES)


def make_policy(name: str, action_space: spaces.Box, env_id: str | None = None, **kwargs: Any) -> Policy:
    """Build a collection policy by name (`random`, `smooth`, `pusht`, `pusht-expert`).

    Args:
        name: policy name.
        action_space: the env's action space (a bounded 1-D Box).
        env_id: the env the policy will drive; env-specific policies check it.
        **kwargs: the policy class's own arguments (e.g. `theta`, `sigma` for `smooth`).
    """
    if name not in _POLICIES:
        raise ValueError(f"Unknown policy {name!r}; available: {', '.join(_POLICIES)}")
    needs = _ENV_SPECIFIC.get(name)
    if needs is not None and env_id is not None and env_id != needs:
        raise ValueError(f"policy {name!r} drives {needs} only (it reads that env's info['state']), "
                         f"not {env_id!r}; use 'smooth' or 'random' instead")
    cls = _POLICIES[name]
    accepted = [p for p in inspect.signature(cls).parameters if p != "action_space"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"--policy-kwargs: policy {name!r} has no argument {', '.join(map(repr, unknown))}. "
                         f"Use its arguments: {', '.join(accepted) or 'none'}")
    return cls(action_space, **kwargs)
