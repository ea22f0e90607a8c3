"""Violation of expectation: possible and impossible clips from the same start (IntPhys style).

Each pair shares its start state and commanded actions. The *possible* clip is what the
environment does. The *impossible* one breaks physics in a way the environment never would:

* ``teleport``: mid-clip the agent jumps ``jump`` arena units (then moves on normally);
* ``through_wall`` (TwoRoom): the agent starts beside the wall, away from the door, and is pushed
  at it; it passes through the wall (the motion is simulated without the wall and drawn with it),
  where the possible clip is stopped and slides along it.

Pairwise accuracy is the fraction of pairs whose impossible clip has the larger surprise
(the clip's largest per-frame score), the measure used for V-JEPA and LeWM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from forethought.models.protocols import LatentWorldModel
from forethought.surprise.calibration import SurpriseCalibration, clip_scores
from forethought.surprise.clips import Clip
from forethought.surprise.perturbations import NotApplicable, eval_seed, policy_clip

VOE_KINDS = ("teleport", "through_wall")


@dataclass(frozen=True)
class VoEConfig:
    kinds: tuple[str, ...] = VOE_KINDS
    pairs: int = 50
    frames: int = 10  # model frames per clip
    jump: float = 12.0  # teleport distance, arena units (3 agent radii)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in VOE_KINDS]
        if bad:
            raise ValueError(f"unknown violation kinds {bad}; available: {', '.join(VOE_KINDS)}")
        if self.pairs < 1 or self.frames < 4:
            raise ValueError(f"need pairs >= 1 and frames >= 4, got {self.pairs}, {self.frames}")


def _render_clip(env: Any, states: np.ndarray, actions: np.ndarray, event: int, kind: str) -> Clip:
    obs = np.stack([env.render_state(s) for s in states])
    return Clip(obs, actions, states, event=event, info={"source": "voe", "kind": kind})


def teleport_pair(env: Any, policy: Any, seed: int, frames: int, frameskip: int, jump: float) -> tuple[Clip, Clip]:
    """Possible: the env's own clip. Impossible: from the middle frame on, positions shifted by ``jump``."""
    base = env.unwrapped
    possible = policy_clip(env, policy, seed, frames, frameskip)
    mid = frames // 2
    rng = np.random.default_rng([seed, 11])
    for _ in range(100):  # a jump direction that lands in free space for the rest of the clip
        ang = rng.uniform(0, 2 * np.pi)
        shift = jump * np.array([np.cos(ang), np.sin(ang)])
        states = possible.states.copy()
        states[mid:, :2] += shift
        if all(base.in_free_space(s[:2]) for s in states[mid:]):
            return possible, _render_clip(base, states, possible.actions, mid - 1, "teleport")
    raise NotApplicable("no free landing spot for the jump")


def through_wall_pair(env: Any, seed: int, frames: int, frameskip: int) -> tuple[Clip, Clip]:
    """Start left of the wall, away from the door, and push right; the impossible clip ignores the wall.

    The push lasts until the wall-free agent is past the wall, then the agent rests, so both clips
    stay inside the arena and differ only in whether the wall stopped the agent.
    """
    base = env.unwrapped
    if not hasattr(base, "set_layout"):
        raise ValueError("through_wall needs forethought/TwoRoom-v0 (an env with set_layout)")
    rng = np.random.default_rng([seed, 13])
    L, r, dc, dw = base.arena_size, base.agent_radius, base.door_center, base.door_width
    x_wall = L / 2 - base.wall_thickness / 2 - r  # the agent's centre touches the wall here
    for _ in range(100):
        y = rng.uniform(r + 1, L - r - 1)
        if abs(y - dc) > dw / 2 + 2 * r:
            break
    else:
        raise NotApplicable("no start beside the wall away from the door")
    start = np.array([x_wall - rng.uniform(10.0, 20.0), y])
    x_far = L / 2 + base.wall_thickness / 2 + r + 4.0  # well past the wall on the other side
    steps = (frames - 1) * frameskip
    env_actions = np.zeros((steps, 2), np.float32)  # push right at half speed until past the wall, then rest
    base.reset(seed=seed)
    base.set_state(start)
    possible_states, free_states, p, q = [start.copy()], [start.copy()], start.copy(), start.copy()
    for t in range(steps):
        if q[0] < x_far:
            env_actions[t] = (0.5, rng.normal(0.0, 0.05))
        d = env_actions[t].astype(np.float64) * base.max_step
        p = base._move(p, d)  # with the wall: stopped by it
        q = q + d  # without it
        if (t + 1) % frameskip == 0:
            possible_states.append(p.copy())
            free_states.append(q.copy())
    model_actions = env_actions.reshape(frames - 1, -1)
    free = np.stack(free_states)
    crossed = int(np.argmax(free[:, 0] > x_wall)) - 1  # first transition that enters the wall
    return (_render_clip(base, np.stack(possible_states), model_actions, crossed, "through_wall_possible"),
            _render_clip(base, free, model_actions, crossed, "through_wall"))


@torch.no_grad()
def voe_evaluation(model: LatentWorldModel, env: Any, policy: Any, normalizer: Any, frameskip: int,
                   calibration: SurpriseCalibration | None, cfg: VoEConfig = VoEConfig(), steps: int = 1,
                   score: str = "whitened") -> dict[str, Any]:
    """Pairwise accuracy per violation: ``{kind: {"pairs", "accuracy", "median_possible", "median_impossible"}}``.

    ``score`` is the residual normalization; without a calibration, raw mean squared errors.
    """
    out: dict[str, Any] = {}
    for kind in cfg.kinds:
        possible, impossible, i = [], [], 0
        while len(possible) < cfg.pairs:
            seed = eval_seed(cfg.seed, i)
            i += 1
            try:
                a, b = (teleport_pair(env, policy, seed, cfg.frames, frameskip, cfg.jump) if kind == "teleport"
                        else through_wall_pair(env, seed, cfg.frames, frameskip))
            except NotApplicable:
                continue
            possible.append(a)
            impossible.append(b)
        sp = clip_scores(model, possible, normalizer, calibration, steps, score).max(1)
        si = clip_scores(model, impossible, normalizer, calibration, steps, score).max(1)
        out[kind] = {"pairs": cfg.pairs, "accuracy": float((si > sp).mean()),
                     "median_possible": float(np.median(sp)), "median_impossible": float(np.median(si))}
    return out
