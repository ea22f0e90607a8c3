"""`forethought/PushT-v0`: gym-pusht's physics with relative actions and a cheap renderer.

What is kept from `gym_pusht` (pymunk): the scene (walls, kinematic disc agent of radius 15, the
T block, 512x512 world units), the PD controller (`k_p`, `k_v`) and the 10 physics sub-steps
per env step. What changes, and why:

- Actions are relative, as in DINO-WM: `a in [-1, 1]^2` moves the agent's PD target to
  `agent_pos + a * max_delta` (default 50 world units, i.e. about 10% of the arena), clipped to
  the world `[0, 512]^2`. Relative actions are translation-invariant, which a world model learns
  far more easily than gym-pusht's absolute targets.
- The state is 7-D: `[agent_x, agent_y, block_x, block_y, block_angle, agent_vx, agent_vy]`.
  The agent's velocity is part of it because the PD controller carries it from one step to the
  next (without it `set_state` could not reproduce a trajectory). The block's velocity is not:
  gym-pusht sets the space's damping to 0, which zeroes body velocities every sub-step (the
  block is quasi-static). `block_angle` is wrapped to `[0, 2 pi)`, as gym-pusht does.
- Pixels are drawn directly at `image_size` with OpenCV (anti-aliased polygons and a disc),
  about 20x cheaper than gym-pusht's 512x512 pygame canvas resized down. They show the agent and
  the block only: no action cross (gym-pusht draws one in `render()`), and no green goal T,
  because the observation must depend on the physical state alone; a fixed T unrelated to the
  sampled goal would only add a constant, and drawing the sampled goal would leak it into every
  observation. The goal is given to planners as an image by `render_goal()`.
- Success (evaluation only) follows DINO-WM: the block's position within `20` units and its
  angle within `pi / 9` of the goal's. The agent's position in the goal state is ignored.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.envs.base import PixelGoalEnv, check_image_size

WORLD = 512.0  # gym-pusht's world (and canvas) size
_WALL_COLOR = (211, 211, 211)  # LightGray, as gym-pusht
_BLOCK_COLOR = (119, 136, 153)  # LightSlateGray
_AGENT_COLOR = (65, 105, 225)  # RoyalBlue
_SHIFT = 4  # OpenCV fixed-point bits: coordinates in 1/16 pixel, so sub-pixel motion shows
_ONE = 1 << _SHIFT


def _import_pusht():
    """Import gym-pusht without opening a window or printing pygame's banner."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import cv2
        from gym_pusht.envs.pusht import PushTEnv as _GymPushT
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(f'forethought/PushT-v0 needs gym-pusht: pip install "forethought[pusht]" ({e})') from e
    return cv2, _GymPushT


class PushTEnv(PixelGoalEnv):
    """Push a T-shaped block with a disc agent (relative actions, pixels, 7-D state).

    Args:
        image_size: side of the square observation in pixels.
        max_delta: largest displacement of the PD target per step, in world units (of 512).
        success_pos: block position tolerance for success, world units (DINO-WM: 20).
        success_angle: block angle tolerance for success, radians (DINO-WM: pi / 9).
        render_mode: `"rgb_array"` or None.
    """

    state_dim = 7

    def __init__(
        self,
        image_size: int = 64,
        max_delta: float = 50.0,
        success_pos: float = 20.0,
        success_angle: float = np.pi / 9,
        render_mode: str | None = None,
    ) -> None:
        self.image_size = check_image_size(image_size)
        for name, value in [("max_delta", max_delta), ("success_pos", success_pos), ("success_angle", success_angle)]:
            if not value > 0:
                raise ValueError(f"PushT: {name} must be > 0, got {value}")
        self._init_render_mode(render_mode)
        self._cv2, gym_pusht_cls = _import_pusht()
        self.max_delta, self.success_pos, self.success_angle = float(max_delta), float(success_pos), float(success_angle)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = self._pixel_space()
        # The gym-pusht env is used as a scene builder and for its constants, never stepped.
        self._sim = gym_pusht_cls(obs_type="state", render_mode="rgb_array")
        self._substeps = int(1 / (self._sim.dt * self._sim.control_hz))
        local = [np.array([tuple(v) for v in shape.get_vertices()]) for shape in self._tee_shapes_template()]
        # `body.shapes` is a set whose order varies between instances; a fixed drawing order keeps
        # anti-aliased pixels on the shared edge identical (bar first, then stem).
        self._tee_local = sorted(local, key=lambda v: float(v[:, 1].mean()))  # two (4, 2) rectangles
        self._background = self._draw_background()
        self._sim._setup()
        self._goal = np.array([256.0, 400.0, 256.0, 256.0, np.pi / 4, 0.0, 0.0])

    def _tee_shapes_template(self) -> list:
        self._sim._setup()
        return list(self._sim.block.shapes)

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Random agent and block pose (gym-pusht's ranges); one physics sub-step separates overlaps.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal.
        """
        super().reset(seed=seed)
        self.set_state(self._sample_state(self.np_random))
        self._sim.space.step(self._sim.dt)  # as gym-pusht: push the block out of the agent if they overlap
        self._goal = self._sample_state(self.np_random)
        return self._finish_reset(options)

    def step(self, action: np.ndarray):
        a = self._as_action(action)
        agent, sim = self._sim.agent, self._sim
        target = np.clip(np.array(agent.position) + a * self.max_delta, 0.0, WORLD)
        tx, ty = float(target[0]), float(target[1])
        for _ in range(self._substeps):  # gym-pusht's PD control loop, unchanged
            px, py = agent.position
            vx, vy = agent.velocity
            ax = sim.k_p * (tx - px) - sim.k_v * vx
            ay = sim.k_p * (ty - py) - sim.k_v * vy
            agent.velocity = (vx + ax * sim.dt, vy + ay * sim.dt)
            sim.space.step(sim.dt)
        state = self.get_state()
        reward = float(self.success(state, self._goal))
        return self.render_state(state), reward, False, False, {"state": state}

    # --- GoalEnv ------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        agent, block = self._sim.agent, self._sim.block
        return np.array([*agent.position, *block.position, block.angle % (2 * np.pi), *agent.velocity])

    def set_state(self, state: np.ndarray) -> None:
        """Rebuild the scene in `state` (fresh pymunk space, so the result does not depend on history)."""
        s = self._as_state(state)
        sim = self._sim
        sim._setup()
        sim.agent.position = (s[0], s[1])
        sim.agent.velocity = (s[5], s[6])
        # Angle first: pymunk rotates about the centre of gravity, which is not the T's origin,
        # so setting the position last makes get_state() return exactly `state`.
        sim.block.angle = s[4]
        sim.block.position = (s[2], s[3])
        sim.space.reindex_shapes_for_body(sim.block)

    def _sample_state(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([
            rng.uniform(50, 450), rng.uniform(50, 450),  # agent (gym-pusht's reset ranges)
            rng.uniform(100, 400), rng.uniform(100, 400), rng.uniform(0, 2 * np.pi),  # block
            0.0, 0.0,
        ])

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """Block pose and agent position drawn from gym-pusht's reset ranges, agent at rest."""
        return self._sample_state(rng)

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        d_pos = float(np.hypot(s[2] - g[2], s[3] - g[3]))
        d_ang = abs((s[4] - g[4] + np.pi) % (2 * np.pi) - np.pi)  # wrapped to [0, pi]
        return bool(d_pos < self.success_pos and d_ang < self.success_angle)

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """The block's position error in world units (the agent's position is not part of success)."""
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return float(np.hypot(s[2] - g[2], s[3] - g[3]))

    # --- datasets -------------------------------------------------------------------------------
    @staticmethod
    def dataset_metrics(states: np.ndarray, same_episode: np.ndarray) -> dict[str, float]:
        """`block_moving_fraction`: the fraction of transitions in which the block moves.

        A dataset where the block rarely moves cannot teach a model to push it. `states` are the
        stored states `(N, 7)` in row order, `same_episode` the `(N-1,)` mask of row pairs `t -> t+1`
        inside one episode (`forethought collect` reports the result in its summary).
        """
        moved = np.linalg.norm(np.diff(states[:, 2:4], axis=0), axis=-1) > 1e-6  # block_x, block_y
        return {"block_moving_fraction": float(moved[same_episode].mean())}

    # --- rendering ------------------------------------------------------------------------------
    def _draw_background(self) -> np.ndarray:
        cv2, n = self._cv2, self.image_size
        img = np.full((n, n, 3), 255, dtype=np.uint8)
        s = n / WORLD * _ONE
        thick = max(1, round(4 * n / WORLD))  # gym-pusht's walls: segments of radius 2 at 5 and 506
        corners = [(5, 5), (506, 5), (506, 506), (5, 506)]
        pts = np.round(np.array(corners) * s).astype(np.int32)
        cv2.polylines(img, [pts], True, _WALL_COLOR, thick, cv2.LINE_AA, _SHIFT)
        return img

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Agent and block drawn at `image_size` (no goal T, no action cross): uint8 `(n, n, 3)`."""
        cv2, n = self._cv2, self.image_size
        s = n / WORLD * _ONE
        img = self._background.copy()
        c, si = np.cos(state[4]), np.sin(state[4])
        rot = np.array([[c, -si], [si, c]])
        polys = [np.round((v @ rot.T + state[2:4]) * s).astype(np.int32) for v in self._tee_local]
        cv2.fillPoly(img, polys, _BLOCK_COLOR, cv2.LINE_AA, _SHIFT)
        centre = (int(round(state[0] * s)), int(round(state[1] * s)))
        cv2.circle(img, centre, int(round(15 * s)), _AGENT_COLOR, -1, cv2.LINE_AA, _SHIFT)
        return img
