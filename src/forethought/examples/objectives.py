"""Test-time objectives over states for TwoRoom and Reacher: examples of `forethought eval --objective`.

None of them was seen in training; each is planned for on the model's state readout and judged by
its own ``success`` function from the *true* states and the executed env actions (docs/adaptation.md).
Each example is a factory (to change its numbers) and a ready instance::

    forethought eval --model runs/tworoom_readout --objective forethought.examples.objectives:tworoom_avoid_zone ...

| instance | task | success (true states) |
|---|---|---|
| `tworoom_avoid_zone` | reach the goal, never entering a square in the left room | goal reached at the end, zone never entered |
| `tworoom_waypoint` | pass the door's centre (within 6 units) on the way to the goal | passed it, then the goal reached at the end |
| `tworoom_low_energy` | reach the goal spending little action energy | goal reached, mean squared action <= 0.3 |
| `reacher_avoid_zone` | reach the goal pose, the fingertip never inside a disc | goal reached, fingertip never in the disc |
| `reacher_low_energy` | reach the goal pose with little torque | goal reached, mean squared action <= 0.3 |

``baseline_<instance>`` is the same task planned with the goal-image cost alone (run it with
``--latent-weight 1``) and judged by the same test: the comparison the novel-reward table needs.

Costs get ``states (B, N, H, S)`` and ``actions (B, N, H, A)`` in env units (``A`` = frameskip x env
action dim), the readout of the goal image ``goal (B, S)`` and of the frames seen so far
``past (B, L, S)`` when they ask for them, and return ``(B, N)``. Success functions get
``states (T+1, S)``, ``actions (T, env_A)``, ``goal_state (S,)`` and the unwrapped env.
This module imports nothing from forethought: a user's objective module looks the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

# TwoRoom (forethought/TwoRoom-v0 defaults): a 64 x 64 arena, the wall at x in [30, 34], the door y in [24, 40].
TWOROOM_ZONE = ((8.0, 24.0), (24.0, 40.0))  # (lo, hi) corners of a square in the middle of the left room
TWOROOM_DOOR = (32.0, 32.0)
# Reacher (dm_control): two links of 0.12 m; the fingertip is at 0.12 (cos a + cos(a + b), sin a + sin(a + b)).
REACHER_LINK = 0.12
REACHER_ZONE = ((0.0, 0.15), 0.06)  # (centre, radius) of a disc the fingertip must avoid, metres


def _with_success(cost: Callable[..., Tensor], success: Callable[..., bool], name: str) -> Callable[..., Tensor]:
    cost.success = success  # type: ignore[attr-defined]
    cost.__qualname__ = cost.__name__ = name
    success.__qualname__ = success.__name__ = f"{name}.success"
    return cost


def tworoom_position(states: Tensor) -> Tensor:
    """TwoRoom's state is the agent's ``(x, y)``."""
    return states[..., :2]


def reacher_fingertip(states: Tensor | np.ndarray) -> Tensor:
    """Reacher's fingertip ``(..., 2)`` in metres from joint angles ``states[..., :2]`` (forward kinematics)."""
    s = torch.as_tensor(states, dtype=torch.float32)
    a, b = s[..., 0], s[..., 0] + s[..., 1]
    return REACHER_LINK * torch.stack([a.cos() + b.cos(), a.sin() + b.sin()], dim=-1)


def _goal_distance(where: Callable[[Tensor], Tensor], states: Tensor, goal: Tensor) -> Tensor:
    """``(B, N, H)`` distance of each imagined state to the goal, in ``where``'s space."""
    return (where(states) - where(goal)[:, None, None]).norm(dim=-1)


def _box_depth(p: Tensor, lo: Tensor, hi: Tensor, margin: float) -> Tensor:
    """How deep ``p (..., 2)`` is inside the box grown by ``margin`` (0 outside)."""
    inside = torch.minimum(p - lo + margin, hi + margin - p).min(dim=-1).values
    return inside.clamp_min(0.0)


def segment_distance(a: Tensor, b: Tensor, point: Tensor) -> Tensor:
    """Distance from ``point (2,)`` to each segment ``a -> b`` (``(..., 2)`` each): ``(...)``."""
    d = b - a
    t = (((point - a) * d).sum(-1) / d.pow(2).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
    return (a + t[..., None] * d - point).norm(dim=-1)


def avoid_zone(lo: tuple[float, float] = TWOROOM_ZONE[0], hi: tuple[float, float] = TWOROOM_ZONE[1],
               penalty: float = 50.0, margin: float = 3.0) -> Callable[..., Tensor]:
    """TwoRoom: the summed distance to the goal plus ``penalty`` x how deep each step is in the box ``[lo, hi]``
    (grown by ``margin``: the plan sees one state per model step, the agent moves between them)."""
    lo_t, hi_t = torch.tensor(lo), torch.tensor(hi)

    def cost(states: Tensor, actions: Tensor, goal: Tensor) -> Tensor:
        depth = _box_depth(tworoom_position(states), lo_t.to(states), hi_t.to(states), margin)  # (B, N, H)
        return _goal_distance(tworoom_position, states, goal).sum(-1) + penalty * depth.sum(-1)

    def success(states: np.ndarray, actions: np.ndarray, goal_state: np.ndarray, env: Any) -> bool:
        inside = np.all((states[:, :2] > lo) & (states[:, :2] < hi), axis=1).any()
        return bool(env.success(states[-1], goal_state)) and not bool(inside)

    return _with_success(cost, success, "avoid_zone")


def pass_waypoint(point: tuple[float, float] = TWOROOM_DOOR, radius: float = 6.0) -> Callable[..., Tensor]:
    """TwoRoom: pass within ``radius`` of ``point`` first, then reach the goal.

    The cost of each step is the path still to go: (distance to the waypoint + waypoint to goal)
    until the waypoint is passed, the distance to the goal after. "Passed" counts the frames seen so
    far (``past``) and the plan, segment by segment (the agent moves up to 20 units between frames).
    """
    w = torch.tensor(point)

    def cost(states: Tensor, actions: Tensor, goal: Tensor, past: Tensor) -> Tensor:
        pos, wp = tworoom_position(states), w.to(states)
        B, N, H, _ = pos.shape
        seen = past[:, :, :2]
        passed = torch.zeros(B, dtype=torch.bool, device=pos.device)
        if seen.shape[1] > 1:
            passed = (segment_distance(seen[:, :-1], seen[:, 1:], wp) < radius).any(dim=1)
        path = torch.cat([seen[:, -1, None, None].expand(B, N, 1, 2), pos], dim=2)  # (B, N, H+1, 2)
        near = segment_distance(path[:, :, :-1], path[:, :, 1:], wp) < radius  # (B, N, H)
        visited = passed[:, None, None] | (near.int().cummax(dim=-1).values > 0)
        g = tworoom_position(goal)[:, None, None]
        before = (pos - wp).norm(dim=-1) + (wp - g).norm(dim=-1)
        return torch.where(visited, (pos - g).norm(dim=-1), before).sum(-1)

    def success(states: np.ndarray, actions: np.ndarray, goal_state: np.ndarray, env: Any) -> bool:
        p = torch.as_tensor(states[:, :2], dtype=torch.float32)
        passed = bool((segment_distance(p[:-1], p[1:], w) < radius).any()) if len(p) > 1 else False
        return passed and bool(env.success(states[-1], goal_state))

    return _with_success(cost, success, "pass_waypoint")


def low_energy(where: Callable[[Tensor], Tensor] = tworoom_position, weight: float = 10.0,
               max_energy: float = 0.3) -> Callable[..., Tensor]:
    """Reach the goal (summed distance in ``where``'s space) plus ``weight`` x the summed mean squared
    action; success: the goal reached at the end with a mean squared executed action <= ``max_energy``
    (uniformly random actions in [-1, 1] spend 1/3)."""

    def cost(states: Tensor, actions: Tensor, goal: Tensor) -> Tensor:
        return _goal_distance(where, states, goal).sum(-1) + weight * actions.pow(2).mean(-1).sum(-1)

    def success(states: np.ndarray, actions: np.ndarray, goal_state: np.ndarray, env: Any) -> bool:
        energy = float(np.mean(np.square(actions))) if len(actions) else 0.0
        return bool(env.success(states[-1], goal_state)) and energy <= max_energy

    return _with_success(cost, success, "low_energy")


def fingertip_avoid_zone(centre: tuple[float, float] = REACHER_ZONE[0], radius: float = REACHER_ZONE[1],
                       penalty: float = 20.0, margin: float = 0.02) -> Callable[..., Tensor]:
    """Reacher: reach the goal pose (summed fingertip distance) with the fingertip out of a disc."""
    c = torch.tensor(centre)

    def cost(states: Tensor, actions: Tensor, goal: Tensor) -> Tensor:
        tip = reacher_fingertip(states)
        depth = (radius + margin - (tip - c.to(tip)).norm(dim=-1)).clamp_min(0.0)  # (B, N, H)
        return _goal_distance(reacher_fingertip, states, goal).sum(-1) + penalty * depth.sum(-1)

    def success(states: np.ndarray, actions: np.ndarray, goal_state: np.ndarray, env: Any) -> bool:
        inside = bool(((reacher_fingertip(states) - c).norm(dim=-1) < radius).any())
        return bool(env.success(states[-1], goal_state)) and not inside

    return _with_success(cost, success, "reacher_avoid_zone")


def goal_image_only(objective: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The baseline of a test-time objective: no state cost at all (run it with ``--latent-weight 1``, so the
    plan follows the latent distance to the goal image alone), judged by ``objective``'s success test."""

    def cost(states: Tensor, actions: Tensor) -> Tensor:
        return states.new_zeros(states.shape[:2])

    def success(states: np.ndarray, actions: np.ndarray, goal_state: np.ndarray, env: Any) -> bool:
        return objective.success(states, actions, goal_state, env)  # type: ignore[attr-defined]

    return _with_success(cost, success, f"goal_image_only_{objective.__name__}")


tworoom_avoid_zone = avoid_zone()
tworoom_waypoint = pass_waypoint()
tworoom_low_energy = low_energy()
reacher_avoid_zone = fingertip_avoid_zone()
reacher_low_energy = low_energy(reacher_fingertip, weight=0.05)
# Baselines: the goal-image cost alone (with --latent-weight 1), judged by each objective's test.
baseline_tworoom_avoid_zone = goal_image_only(tworoom_avoid_zone)
baseline_tworoom_waypoint = goal_image_only(tworoom_waypoint)
baseline_tworoom_low_energy = goal_image_only(tworoom_low_energy)
baseline_reacher_avoid_zone = goal_image_only(reacher_avoid_zone)
baseline_reacher_low_energy = goal_image_only(reacher_low_energy)
