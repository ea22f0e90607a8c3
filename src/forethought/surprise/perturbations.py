"""Perturbations that make the world stop behaving as in training, and paired clips around them.

A perturbation acts at one moment of an episode (the *event*) and changes, from then on, one of:

| kind | names | what changes |
|---|---|---|
| state | ``teleport`` | the agent jumps to a random free position at least ``min_distance`` away |
| layout | ``door_closed``, ``door_moved``, ``wall_removed`` | the walls (TwoRoom only: ``set_layout``) |
| dynamics | ``action_scale``, ``broken_actuator`` | the env receives scaled / partly zeroed actions (a weak or
  broken motor; on TwoRoom, more friction looks the same as a smaller action scale). The same change
  from the start of an episode is a changed-physics env variant (``forethought.envs.physics``:
  TwoRoom's ``motor_gain``, Reacher's ``joint_gain``) |
| visual | ``colour_shift``, ``occluder`` | what the agent sees: colour channels rotated / a grey square |

:func:`paired_clips` runs two copies of an episode from the same seed with the same commanded
actions (drawn by a data-collection policy), one normal and one perturbed at ``event_frame``, and
returns both at the model's rate. The model is always told the *commanded* actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from forethought.envs.physics import scale_action
from forethought.surprise.clips import Clip


EVAL_SEED_BASE = 1_000_000_000
"""Episodes generated for surprise evaluation use seeds from here on, far from collection seeds
(``collect --seed S`` uses ``S + i``), so that no "normal" test episode is a training episode."""


def eval_seed(seed: int, i: int) -> int:
    """The ``i``-th evaluation episode seed of run ``seed``."""
    return EVAL_SEED_BASE + seed * 1_000_003 + i


class NotApplicable(ValueError):
    """The perturbation cannot happen in this state (e.g. the agent stands where a wall would go)."""


@dataclass
class Perturbation:
    """Base: no change. Subclasses override :meth:`start`, :meth:`action` or :meth:`observe`."""

    name: str = "none"
    kind: str = "none"

    def start(self, env: Any, rng: np.random.Generator) -> None:
        """Called once at the event, before the env step that the event affects."""

    def action(self, a: np.ndarray) -> np.ndarray:
        """The env action actually applied after the event (``a`` is the commanded one)."""
        return a

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """What the agent sees after the event."""
        return obs


def _two_room(env: Any, name: str) -> Any:
    if not hasattr(env, "set_layout"):
        raise ValueError(f"perturbation {name!r} changes walls and needs forethought/TwoRoom-v0 "
                         f"(an env with set_layout), not {type(env).__name__}")
    return env


def _relayout(env: Any, name: str, **layout: Any) -> None:
    """``env.set_layout(**layout)``; :class:`NotApplicable` when the agent stands where a wall would go."""
    env = _two_room(env, name)  # another env: a plain ValueError, the perturbation is wrong for it
    try:
        env.set_layout(**layout)
    except ValueError as e:
        raise NotApplicable(str(e)) from e


@dataclass
class Teleport(Perturbation):
    name: str = "teleport"
    kind: str = "state"
    min_distance: float = 16.0

    def start(self, env: Any, rng: np.random.Generator) -> None:
        here = env.get_state()
        for _ in range(1000):
            to = env.sample_goal_state(rng)
            if np.linalg.norm(to[:2] - here[:2]) >= self.min_distance:
                env.set_state(to)
                return
        raise NotApplicable(f"no free position {self.min_distance} away from {here}")


@dataclass
class DoorClosed(Perturbation):
    name: str = "door_closed"
    kind: str = "layout"

    def start(self, env: Any, rng: np.random.Generator) -> None:
        _relayout(env, self.name, door_width=0)


@dataclass
class DoorMoved(Perturbation):
    """The door jumps to the far half of the wall (``shift`` arena units, mirrored if needed)."""

    name: str = "door_moved"
    kind: str = "layout"
    shift: float = 24.0

    def start(self, env: Any, rng: np.random.Generator) -> None:
        env = _two_room(env, self.name)
        centre = env.door_center + self.shift
        if centre + env.door_width / 2 > env.arena_size:
            centre = env.door_center - self.shift
        _relayout(env, self.name, door_center=centre)


@dataclass
class WallRemoved(Perturbation):
    name: str = "wall_removed"
    kind: str = "layout"

    def start(self, env: Any, rng: np.random.Generator) -> None:
        _relayout(env, self.name, wall=False)


@dataclass
class ActionScale(Perturbation):
    name: str = "action_scale"
    kind: str = "dynamics"
    factor: float = 0.3

    def action(self, a: np.ndarray) -> np.ndarray:
        return scale_action(a, self.factor)  # TwoRoom's motor_gain=[f, f] from the start


@dataclass
class BrokenActuator(Perturbation):
    """Action dimension ``dim`` stops working (always 0)."""

    name: str = "broken_actuator"
    kind: str = "dynamics"
    dim: int = 0

    def action(self, a: np.ndarray) -> np.ndarray:
        gain = np.ones(np.shape(a)[-1])
        gain[self.dim] = 0.0  # TwoRoom's motor_gain / Reacher's joint_gain with a 0 from the start
        return scale_action(a, gain)


@dataclass
class ColourShift(Perturbation):
    """The colour channels rotate (R, G, B) -> (G, B, R): the red agent turns blue, grey stays grey."""

    name: str = "colour_shift"
    kind: str = "visual"

    def observe(self, obs: np.ndarray) -> np.ndarray:
        return obs[..., [1, 2, 0]] if obs.ndim == 3 else obs


@dataclass
class Occluder(Perturbation):
    """A grey square of ``size`` (fraction of the image side) at a random place, fixed at the event."""

    name: str = "occluder"
    kind: str = "visual"
    size: float = 0.25
    _box: tuple[int, int, int] | None = None

    def start(self, env: Any, rng: np.random.Generator) -> None:
        n = int(env.image_size)
        s = max(1, int(round(self.size * n)))
        self._box = (int(rng.integers(0, n - s + 1)), int(rng.integers(0, n - s + 1)), s)

    def observe(self, obs: np.ndarray) -> np.ndarray:
        if self._box is None or obs.ndim != 3:
            return obs
        i, j, s = self._box
        obs = obs.copy()
        obs[i : i + s, j : j + s] = 128
        return obs


PERTURBATIONS: dict[str, Callable[[], Perturbation]] = {
    "teleport": Teleport, "door_closed": DoorClosed, "door_moved": DoorMoved, "wall_removed": WallRemoved,
    "action_scale": ActionScale, "broken_actuator": BrokenActuator, "colour_shift": ColourShift,
    "occluder": Occluder,
}


def make_perturbation(name: str) -> Perturbation:
    """A fresh perturbation by name (see :data:`PERTURBATIONS`)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; available: {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name]()


def run_clip(env: Any, seed: int, env_actions: np.ndarray, frameskip: int, perturbation: Perturbation | None = None,
             event_frame: int | None = None) -> Clip:
    """Replay ``env_actions (steps, A)`` from ``env.reset(seed=seed)``; frames every ``frameskip`` steps.

    With a perturbation, it starts right after frame ``event_frame - 1`` is observed, so frame
    ``event_frame`` is the first affected and transition ``event_frame - 1`` is the clip's event.
    """
    steps = len(env_actions)
    if steps % frameskip:
        raise ValueError(f"{steps} env steps is not a whole number of model steps of {frameskip}")
    frames = steps // frameskip + 1
    if perturbation is not None and not (event_frame is not None and 1 <= event_frame < frames):
        raise ValueError(f"event_frame must be in [1, {frames}), got {event_frame}")
    return _record(env, seed, frames, frameskip, lambda t, obs, info: env_actions[t], perturbation, event_frame)


def policy_clip(env: Any, policy: Any, seed: int, frames: int, frameskip: int) -> Clip:
    """A normal clip of ``frames`` model frames in which a data-collection policy acts from
    ``env.reset(seed=seed)`` (its rng seeded with ``seed``, as collection does)."""
    policy.reset(np.random.default_rng(seed))
    return _record(env, seed, frames, frameskip, lambda t, obs, info: np.asarray(policy.act(obs, info), np.float32))


def _record(env: Any, seed: int, frames: int, frameskip: int, choose: Callable[[int, Any, dict], np.ndarray],
            perturbation: Perturbation | None = None, event_frame: int | None = None) -> Clip:
    """Run ``(frames - 1) * frameskip`` env steps, the ``t``-th action ``choose(t, obs, info)``."""
    base = env.unwrapped
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng([seed, 7])  # the perturbation's own randomness
    active = False
    seen, states, taken = [obs], [info["state"]], []
    for t in range((frames - 1) * frameskip):
        a = choose(t, obs, info)
        taken.append(a)
        if perturbation is not None and t == (event_frame - 1) * frameskip:
            perturbation.start(base, rng)
            active = True
        obs, _, _, _, info = env.step(perturbation.action(a) if active else a)
        if (t + 1) % frameskip == 0:
            seen.append(perturbation.observe(obs) if active else obs)
            states.append(info["state"])
    model_actions = np.stack(taken).reshape(frames - 1, -1).astype(np.float32)
    return Clip(np.stack(seen), model_actions, np.stack(states), event=None if perturbation is None else event_frame - 1,
                info={"source": "env", "seed": int(seed), "perturbation": perturbation.name if perturbation else None})


def paired_clips(env: Any, policy: Any, perturbation: Perturbation, seed: int, frames: int, frameskip: int,
                 event_frame: int) -> tuple[Clip, Clip]:
    """A normal clip and the same episode perturbed at ``event_frame`` (same seed, same actions).

    Raises :class:`NotApplicable` when the perturbation cannot happen in that episode's state.
    """
    normal = policy_clip(env, policy, seed, frames, frameskip)
    env_actions = normal.actions.reshape((frames - 1) * frameskip, -1)
    return normal, run_clip(env, seed, env_actions, frameskip, perturbation, event_frame)
