"""`forethought/MultiRoom-v0`: a point agent in a maze of rooms joined by doors (TwoRoom is one layout).

The benchmark of long-horizon goals (issue 19): with the default `three_rooms` layout the path
between the outer rooms is S-shaped and crosses two doors, so a planner whose horizon cannot see
the next door must choose subgoals. Same observation (64x64 pixels: black floor, grey walls, red
disc), action space and dynamics as `forethought/TwoRoom-v0`; the walls come from a
`forethought.envs.rooms.RoomGrid`.

Motion: the agent is a disc of radius `r`. Collisions are computed for its centre in
configuration space (walls grown by `r`, with square corners, slightly conservative near the
door posts; doors shrunk by `r`; the arena shrunk by `r`). A step moves the centre along the
segment `p -> p + delta`; the segment is clipped at the first obstacle face it enters and the rest
of the motion slides along that face (swept test, so no step size can tunnel through a wall).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.envs.base import PixelGoalEnv, check_image_size
from forethought.envs.physics import check_gains, scale_action
from forethought.envs.rooms import PRESETS, RoomGrid, parse_layout

_FLOOR = np.array([0, 0, 0], dtype=np.float32)
_WALL = np.array([170, 170, 170], dtype=np.float32)
_AGENT = np.array([255, 70, 70], dtype=np.float32)
_MAX_DRAWS = 100_000  # rejection sampling of positions and goals gives up (with an error) after this many


class MultiRoomEnv(PixelGoalEnv):
    """Point navigation through a grid of rooms joined by doors.

    Action: float32 `Box(-1, 1, (2,))`; the displacement is `action * motor_gain * max_step`, its norm
    capped at `max_step`. State: float64 `(x, y)` of the agent's centre. Observation: uint8
    `(image_size, image_size, 3)`. Success: Euclidean distance to the goal below `success_radius`
    (default `arena_size / 16`, 4 px at 64x64). `reset` draws start and goal uniformly over free
    space (any room), or as `options={"state": ..., "goal_state": ...}` say.

    Args:
        image_size: side of the square observation in pixels.
        layout: a preset name (`three_rooms`, `four_rooms`, `nine_rooms`; see
            `forethought.envs.rooms.PRESETS`) or `{"grid": [rows, cols], "doors": [[a, b, f], ...]}`
            with rooms numbered row-major and `f` in `[0, 1]` the door's place along the shared wall.
        arena_size: side `L` of the square arena, in arena units.
        wall_thickness: thickness `t` of the walls.
        door_width: width of the doors (a door may set its own); must exceed the agent's diameter.
        max_step: largest displacement per step.
        agent_radius: radius `r` of the agent disc.
        success_radius: goal distance that counts as success (default `L / 16`).
        motor_gain: displacement per unit of action along x and y (1 = unchanged; `[0.3, 0.3]` a weak
            motor, `[0, 1]` a dead x motor: `forethought.envs.physics`); `set_physics` changes it mid-run.
        goal_min_doors: goals that `reset` and `sample_goal_state` draw are at least this many doors
            from the agent (along the shortest path); `reset` then starts the agent in a room from
            which such goals exist. 0 (default): uniform. For benchmarks of far goals, e.g. 2.
        render_mode: `"rgb_array"` or None.
    """

    state_dim = 2
    _name = "MultiRoom"

    def __init__(
        self,
        image_size: int = 64,
        layout: str | dict[str, Any] = "three_rooms",
        arena_size: float = 64.0,
        wall_thickness: float = 4.0,
        door_width: float = 16.0,
        max_step: float = 4.0,
        agent_radius: float = 3.0,
        success_radius: float | None = None,
        goal_min_doors: int = 0,
        motor_gain: float | tuple[float, float] = (1.0, 1.0),
        render_mode: str | None = None,
    ) -> None:
        rooms = parse_layout(layout, float(arena_size), float(wall_thickness), float(door_width))
        self._setup(image_size, rooms, arena_size, wall_thickness, max_step, agent_radius, success_radius,
                    goal_min_doors, render_mode)
        self.set_physics(motor_gain=motor_gain)
        self.layout = layout if isinstance(layout, str) else dict(layout)

    def _setup(self, image_size: int, rooms: RoomGrid, arena_size: float, wall_thickness: float, max_step: float,
               agent_radius: float, success_radius: float | None, goal_min_doors: int, render_mode: str | None) -> None:
        """Validate the shared kwargs and build spaces, walls and pixel grid (subclasses call it too)."""
        self.image_size = check_image_size(image_size)
        L = float(arena_size)
        success_radius = L / 16 if success_radius is None else float(success_radius)
        for name, value in [("arena_size", L), ("wall_thickness", wall_thickness), ("max_step", max_step),
                            ("agent_radius", agent_radius), ("success_radius", success_radius)]:
            if not value > 0:
                raise ValueError(f"{self._name}: {name} must be > 0, got {value}")
        if not wall_thickness + 4 * agent_radius < L / max(rooms.rows, rooms.cols):
            raise ValueError(f"{self._name}: the rooms are too small for the walls and the agent; increase arena_size")
        for d in rooms.doors:
            if d.width != 0 and not d.width > 2 * agent_radius:
                raise ValueError(f"{self._name}: door_width ({d.width}) must exceed the agent's diameter "
                                 f"(2 * agent_radius = {2 * agent_radius}) or the rooms are not connected")
        if isinstance(goal_min_doors, bool) or not isinstance(goal_min_doors, (int, np.integer)) or goal_min_doors < 0:
            raise ValueError(f"{self._name}: goal_min_doors must be an integer >= 0, got {goal_min_doors!r}")
        most = int(rooms.door_distances().max())
        if goal_min_doors > most:
            raise ValueError(f"{self._name}: goal_min_doors={goal_min_doors} but no two rooms of this layout are "
                             f"more than {most} doors apart")
        self._init_render_mode(render_mode)
        self.arena_size, self.wall_thickness, self.max_step = L, float(wall_thickness), float(max_step)
        self.agent_radius, self.success_radius = float(agent_radius), success_radius
        self.goal_min_doors = int(goal_min_doors)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = self._pixel_space()
        self._scale = self.image_size / L
        self._centres = (np.arange(self.image_size, dtype=np.float64) + 0.5) / self._scale  # pixel centres
        self._set_rooms(rooms)
        self._pos = np.full(2, L / 4)
        self._goal = np.full(2, 3 * L / 4)

    def set_physics(self, *, motor_gain: float | tuple[float, float] | None = None) -> None:
        """Change the motor (also mid-episode): displacement per unit of action times `motor_gain` per axis."""
        if motor_gain is not None:
            self.motor_gain = check_gains(motor_gain, 2, "motor_gain", self._name)

    # --- geometry -----------------------------------------------------------------------------
    def _set_rooms(self, rooms: RoomGrid) -> None:
        self.rooms = rooms
        self._boxes = rooms.boxes(self.agent_radius)
        mask = rooms.wall_mask(self.image_size)
        self._background = np.where(mask[..., None], _WALL, _FLOOR).astype(np.float32)  # float32, for blending
        self._background_u8 = (self._background + 0.5).astype(np.uint8)
        far = rooms.door_distances() >= self.goal_min_doors  # (rooms, rooms): far enough apart
        self._start_rooms = np.nonzero(far.any(axis=1))[0]

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
        while True:  # rejection sampling: the walls cover a small fraction of the arena
            pos = rng.uniform(r, L - r, size=2)
            if self.in_free_space(pos):
                return pos

    def _sample_start(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform over free space, or over the rooms that have goals `goal_min_doors` away."""
        for _ in range(_MAX_DRAWS):
            pos = self._sample_free(rng)
            if self.goal_min_doors == 0 or self.rooms.room_of(pos) in self._start_rooms:
                return pos
        raise RuntimeError(f"{self._name}: found no start with goals {self.goal_min_doors} doors away")

    # --- rooms (reports and benchmarks; planners never call these) -----------------------------
    def room_of(self, state: np.ndarray) -> int:
        """The room (row-major grid index) that `state` is in."""
        return self.rooms.room_of(self._as_state(state))

    def room_path(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[list[int], float]:
        """The rooms the shortest path from `state` to `goal_state` passes through, and its length
        (see `RoomGrid.room_path`); `([], inf)` when a closed door cuts them off."""
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return self.rooms.room_path(s, g, self.agent_radius)

    def doors_crossed(self, state: np.ndarray, goal_state: np.ndarray) -> int:
        """How many doors the shortest path from `state` to `goal_state` crosses (-1: unreachable)."""
        rooms, _ = self.room_path(state, goal_state)
        return len(rooms) - 1

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start uniform in free space (any room); a goal is drawn too, so `render_goal` works.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal.
        """
        super().reset(seed=seed)
        self._pos = self._sample_start(self.np_random)
        self._goal = self.sample_goal_state(self.np_random)
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
            raise ValueError(f"{self._name}: state {pos} is inside a wall or outside the arena "
                             f"(the agent's centre must keep {self.agent_radius} from walls and edges)")
        self._pos = pos

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform over free space (any room); with `goal_min_doors`, at least that many doors from the
        agent's current position (rejection sampling)."""
        if self.goal_min_doors == 0:
            return self._sample_free(rng)
        here = self.rooms.room_of(self._pos)
        if here not in self._start_rooms:
            raise ValueError(f"{self._name}: no goal is {self.goal_min_doors} doors from room {here}, where the "
                             "agent is; draw goals after reset(), which starts the agent where such goals exist")
        for _ in range(_MAX_DRAWS):
            goal = self._sample_free(rng)
            if self.doors_crossed(self._pos, goal) >= self.goal_min_doors:
                return goal
        raise RuntimeError(f"{self._name}: found no goal {self.goal_min_doors} doors from {self._pos}")

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.success_radius

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return float(np.hypot(*(s - g)))

    # --- rendering ------------------------------------------------------------------------------
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


__all__ = ["MultiRoomEnv", "PRESETS"]
