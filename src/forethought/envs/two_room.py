"""`forethought/TwoRoom-v0`: a point agent in a square arena split by a wall with one door.

The navigation task of PLDM (Sobal et al., 2025) and LeWM's TwoRoom, in pure numpy so that
collection runs at tens of thousands of steps per second on one core.

Geometry (arena units; with the defaults one unit is one pixel of the 64x64 image)::

    (0,0) ───────────── x ─────────────▶ (L,0)
      │            ┃      ┃
      │   left     ┃ wall ┃    right       wall: x in [L/2 - t/2, L/2 + t/2]
      y   room         door                door: y in [door_center - w/2, door_center + w/2]
      │            ┃      ┃
      ▼            ┃      ┃

The agent is a disc of radius `r`. Collisions are computed for its centre in configuration
space: walls grown by `r` (with square corners, slightly conservative near the door posts),
the door shrunk by `r`, the arena shrunk by `r`. A step moves the centre along the segment
`p -> p + delta`; the segment is clipped at the first obstacle face it enters and the rest of
the motion slides along that face (swept test, so no step size can tunnel through the wall).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.envs.base import PixelGoalEnv, check_image_size
from forethought.envs.physics import check_gains, scale_action

_BIG = 1e9  # stands in for infinity in obstacle boxes (inf * 0 would give NaN in the slab test)
_FLOOR = np.array([0, 0, 0], dtype=np.float32)
_WALL = np.array([170, 170, 170], dtype=np.float32)
_AGENT = np.array([255, 70, 70], dtype=np.float32)


class TwoRoomEnv(PixelGoalEnv):
    """Point navigation between two rooms joined by a door.

    Action: float32 `Box(-1, 1, (2,))`; the displacement is `action * motor_gain * max_step`, its norm
    capped at `max_step` (so the reachable set per step is a disc). State: float64 `(x, y)` of the agent's
    centre. Observation: uint8 `(image_size, image_size, 3)`, black floor, grey wall, red disc.
    Success: Euclidean distance to the goal below `success_radius` (default `arena_size / 16`,
    i.e. 4 px at 64x64, about the agent's diameter: PLDM/LeWM count a goal as reached when the
    agent overlaps it).

    Args:
        image_size: side of the square observation in pixels.
        arena_size: side `L` of the square arena, in arena units.
        wall_thickness: thickness `t` of the dividing wall.
        door_width: width `w` of the door; must exceed the agent's diameter.
        door_center: y of the door's centre (default `L / 2`).
        max_step: largest displacement per step.
        agent_radius: radius `r` of the agent disc.
        success_radius: goal distance that counts as success (default `L / 16`).
        motor_gain: `(x, y)` multipliers of the displacement per unit of action (changed physics,
            forethought.envs.physics: 0.3 = a weak motor, 0 = a dead one), or one number for both.
        render_mode: `"rgb_array"` or None.
    """

    state_dim = 2

    def __init__(
        self,
        image_size: int = 64,
        arena_size: float = 64.0,
        wall_thickness: float = 4.0,
        door_width: float = 16.0,
        door_center: float | None = None,
        max_step: float = 4.0,
        agent_radius: float = 3.0,
        success_radius: float | None = None,
        motor_gain: float | tuple[float, float] = (1.0, 1.0),
        render_mode: str | None = None,
    ) -> None:
        self.image_size = check_image_size(image_size)
        L = float(arena_size)
        door_center = L / 2 if door_center is None else float(door_center)
        success_radius = L / 16 if success_radius is None else float(success_radius)
        for name, value in [("arena_size", L), ("wall_thickness", wall_thickness), ("max_step", max_step),
                            ("agent_radius", agent_radius), ("success_radius", success_radius)]:
            if not value > 0:
                raise ValueError(f"TwoRoom: {name} must be > 0, got {value}")
        if not door_width > 2 * agent_radius:
            raise ValueError(f"TwoRoom: door_width ({door_width}) must exceed the agent's diameter "
                             f"(2 * agent_radius = {2 * agent_radius}) or the rooms are not connected")
        if not (door_width / 2 <= door_center <= L - door_width / 2):
            raise ValueError(f"TwoRoom: the door [{door_center - door_width / 2}, {door_center + door_width / 2}] "
                             f"must lie inside the arena [0, {L}]; change door_center or door_width")
        if not wall_thickness + 4 * agent_radius < L:
            raise ValueError("TwoRoom: the arena is too small for the wall and the agent; increase arena_size")
        self._init_render_mode(render_mode)
        self.arena_size, self.wall_thickness, self.door_width = L, float(wall_thickness), float(door_width)
        self.door_center, self.max_step = door_center, float(max_step)
        self.agent_radius, self.success_radius = float(agent_radius), success_radius
        self.wall = True
        self.set_physics(motor_gain=motor_gain)
        self._default_layout = (self.door_center, self.door_width, self.wall)  # reset() restores it

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = self._pixel_space()
        self._build_layout()
        # Pixel centres in arena units, for the vectorised disc.
        self._scale = self.image_size / L
        self._centres = (np.arange(self.image_size, dtype=np.float64) + 0.5) / self._scale
        self._pos = np.full(2, L / 4)
        self._goal = np.full(2, 3 * L / 4)

    def set_physics(self, *, motor_gain: float | tuple[float, float] | None = None) -> None:
        """Change the motor (also mid-episode): displacement per unit of action times `motor_gain` per axis."""
        if motor_gain is not None:
            self.motor_gain = check_gains(motor_gain, 2, "motor_gain", "TwoRoom")

    # --- geometry -----------------------------------------------------------------------------
    def set_layout(self, *, door_center: float | None = None, door_width: float | None = None,
                   wall: bool | None = None) -> None:
        """Change the walls mid-episode (surprise evaluation: a door moved or closed, the wall removed).

        `door_width=0` closes the door; `wall=False` removes the dividing wall. Arguments left as
        None keep their current value. Raises ValueError if the agent would end up inside a wall
        (the layout is then unchanged).
        """
        old = (self.door_center, self.door_width, self.wall)
        dc = self.door_center if door_center is None else float(door_center)
        dw = self.door_width if door_width is None else float(door_width)
        if dw != 0 and not (dw > 2 * self.agent_radius and dw / 2 <= dc <= self.arena_size - dw / 2):
            raise ValueError(f"TwoRoom.set_layout: a door of width {dw} at y={dc} must be wider than the agent "
                             f"and inside the arena; door_width=0 closes the door")
        self.door_center, self.door_width = dc, dw
        self.wall = self.wall if wall is None else bool(wall)
        self._boxes = self._config_space_obstacles()
        if not self.in_free_space(self._pos):
            self.door_center, self.door_width, self.wall = old
            self._boxes = self._config_space_obstacles()
            raise ValueError(f"TwoRoom.set_layout: the agent at {self._pos} would be inside the new wall")
        self._build_layout()

    def _build_layout(self) -> None:
        self._boxes = self._config_space_obstacles()
        self._background = self._draw_background()  # float32, for blending
        self._background_u8 = (self._background + 0.5).astype(np.uint8)

    def _config_space_obstacles(self) -> np.ndarray:
        """Obstacles for the agent's centre as open boxes `(K, 2, 2)`: `[k, 0] = lo`, `[k, 1] = hi`."""
        L, r, c = self.arena_size, self.agent_radius, self.arena_size / 2
        h = self.wall_thickness / 2 + r
        door_lo = self.door_center - self.door_width / 2 + r
        door_hi = self.door_center + self.door_width / 2 - r
        if self.door_width == 0:  # closed: two overlapping pieces, one solid wall (open boxes leave no seam)
            door_lo, door_hi = self.door_center + 1.0, self.door_center - 1.0
        boxes = [
            [[c - h, -_BIG], [c + h, door_lo]],  # wall piece on the y < door side
            [[c - h, door_hi], [c + h, _BIG]],  # wall piece on the y > door side
        ] if self.wall else []
        boxes += [
            [[-_BIG, -_BIG], [r, _BIG]],  # arena edges
            [[L - r, -_BIG], [_BIG, _BIG]],
            [[-_BIG, -_BIG], [_BIG, r]],
            [[-_BIG, L - r], [_BIG, _BIG]],
        ]
        return np.array(boxes, dtype=np.float64)

    def in_free_space(self, pos: np.ndarray) -> bool:
        """Whether the agent's centre may be at `pos` (boundaries included)."""
        lo, hi = self._boxes[:, 0], self._boxes[:, 1]
        inside = np.all((lo < pos) & (pos < hi), axis=1)
        return not bool(inside.any())

    def _first_hit(self, p: np.ndarray, d: np.ndarray) -> tuple[float, int, int] | None:
        """Earliest `(t, axis, box)` at which `p + t d`, t in [0, 1], enters an obstacle box."""
        lo, hi = self._boxes[:, 0], self._boxes[:, 1]  # (K, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - p) / d, (hi - p) / d
        t_in, t_out = np.minimum(t1, t2), np.maximum(t1, t2)
        still = d == 0  # motion parallel to a slab: inside it for all t, or never
        inside_slab = (lo < p) & (p < hi)
        t_in = np.where(still, np.where(inside_slab, -np.inf, np.inf), t_in)
        t_out = np.where(still, np.where(inside_slab, np.inf, -np.inf), t_out)
        enter, leave = t_in.max(axis=1), t_out.min(axis=1)
        hits = (enter < leave) & (leave > 0) & (enter >= 0) & (enter <= 1)
        if not hits.any():
            return None
        k = int(np.argmin(np.where(hits, enter, np.inf)))
        return float(enter[k]), int(np.argmax(t_in[k])), k

    def _move(self, p: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Move `p` by `d`, stopping at the first face hit and sliding along it."""
        p = p.copy()
        for _ in range(4):  # each bounce removes one axis of motion; 2 suffice, 4 is a safety margin
            if not d.any():
                break
            hit = self._first_hit(p, d)
            if hit is None:
                return p + d
            t, axis, k = hit
            p = p + t * d
            # Snap exactly onto the face so later open-box tests see "outside" despite rounding.
            p[axis] = self._boxes[k, 0, axis] if d[axis] > 0 else self._boxes[k, 1, axis]
            d = (1.0 - t) * d
            d[axis] = 0.0
        return p

    def _sample_free(self, rng: np.random.Generator) -> np.ndarray:
        r, L = self.agent_radius, self.arena_size
        while True:  # rejection sampling: the wall covers a small fraction of the arena
            pos = rng.uniform(r, L - r, size=2)
            if self.in_free_space(pos):
                return pos

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start uniform in free space (either room); a goal is drawn too, so `render_goal` works.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal.
        """
        super().reset(seed=seed)
        if (self.door_center, self.door_width, self.wall) != self._default_layout:  # undo set_layout
            self.door_center, self.door_width, self.wall = self._default_layout
            self._build_layout()
        self._pos = self._sample_free(self.np_random)
        self._goal = self._sample_free(self.np_random)
        return self._finish_reset(options)

    def step(self, action: np.ndarray):
        a = self._as_action(action)
        delta = scale_action(a, self.motor_gain) * self.max_step
        norm = float(np.hypot(delta[0], delta[1]))
        if norm > self.max_step:  # cap the norm: the corners of the box are not longer steps
            delta *= self.max_step / norm
        self._pos = self._move(self._pos, delta)
        reward = float(self.success(self._pos, self._goal))
        return self.render_state(self._pos), reward, False, False, {"state": self._pos.copy()}

    # --- GoalEnv ------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        return self._pos.copy()

    def set_state(self, state: np.ndarray) -> None:
        pos = self._as_state(state)
        if not self.in_free_space(pos):
            raise ValueError(f"TwoRoom: state {pos} is inside a wall or outside the arena "
                             f"(the agent's centre must keep {self.agent_radius} from walls and edges)")
        self._pos = pos

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform over free space (either room)."""
        return self._sample_free(rng)

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.success_radius

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return float(np.hypot(*(s - g)))

    # --- rendering ------------------------------------------------------------------------------
    def _draw_background(self) -> np.ndarray:
        n, L = self.image_size, self.arena_size
        c = (np.arange(n) + 0.5) * L / n  # pixel centres in arena units
        x, y = c[None, :], c[:, None]  # image column = x, image row = y
        half = self.wall_thickness / 2
        in_band = np.abs(x - L / 2) <= half
        in_door = np.abs(y - self.door_center) < self.door_width / 2
        wall = in_band & ~in_door & self.wall
        img = np.where(wall[..., None], _WALL, _FLOOR)
        return img.astype(np.float32)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Background plus an anti-aliased disc at `state`: uint8 `(image_size, image_size, 3)`."""
        x, y = float(state[0]), float(state[1])
        r, s, n = self.agent_radius, self._scale, self.image_size
        img = self._background_u8.copy()
        # Only the disc's bounding box is touched: a few dozen pixels, not the whole image.
        j0, j1 = max(int((x - r) * s) - 1, 0), min(int((x + r) * s) + 2, n)
        i0, i1 = max(int((y - r) * s) - 1, 0), min(int((y + r) * s) + 2, n)
        if j0 < j1 and i0 < i1:
            dx = self._centres[j0:j1][None, :] - x
            dy = self._centres[i0:i1][:, None] - y
            dist = np.sqrt(dx * dx + dy * dy)
            # Coverage ramps over one pixel at the rim, so sub-pixel moves change the image.
            alpha = np.clip((r - dist) * s + 0.5, 0.0, 1.0)[..., None]
            patch = self._background[i0:i1, j0:j1]
            img[i0:i1, j0:j1] = (patch + alpha * (_AGENT - patch) + 0.5).astype(np.uint8)
        return img
