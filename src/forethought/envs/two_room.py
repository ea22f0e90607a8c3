"""`forethought/TwoRoom-v0`: a point agent in a square arena split by a wall with one door.

The navigation task of PLDM (Sobal et al., 2025) and LeWM's TwoRoom, in pure numpy so that
collection runs at tens of thousands of steps per second on one core. It is the `1 x 2` layout
of `forethought.envs.multi_room.MultiRoomEnv` (same motion, rendering and goal API), plus
`set_layout`, which moves, closes or removes the wall mid-episode (surprise evaluation).

Geometry (arena units; with the defaults one unit is one pixel of the 64x64 image)::

    (0,0) ───────────── x ─────────────▶ (L,0)
      │            ┃      ┃
      │   left     ┃ wall ┃    right       wall: x in [L/2 - t/2, L/2 + t/2]
      y   room         door                door: y in [door_center - w/2, door_center + w/2]
      │            ┃      ┃
      ▼            ┃      ┃
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forethought.envs.distractor import Distractor
from forethought.envs.multi_room import MultiRoomEnv
from forethought.envs.rooms import Door, RoomGrid


class TwoRoomEnv(MultiRoomEnv):
    """Point navigation between two rooms joined by a door.

    Action: float32 `Box(-1, 1, (2,))`; the displacement is `action * max_step`, its norm capped at
    `max_step` (so the reachable set per step is a disc). State: float64 `(x, y)` of the agent's
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
        distractor: also show a cyan blob that wanders on its own, independent of the actions
            (`forethought.envs.distractor`): not part of the state, drawn under the agent.
        render_mode: `"rgb_array"` or None.
    """

    _name = "TwoRoom"

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
        distractor: bool = False,
        render_mode: str | None = None,
    ) -> None:
        L = float(arena_size)
        door_center = L / 2 if door_center is None else float(door_center)
        if not (door_width / 2 <= door_center <= L - door_width / 2):
            raise ValueError(f"TwoRoom: the door [{door_center - door_width / 2}, {door_center + door_width / 2}] "
                             f"must lie inside the arena [0, {L}]; change door_center or door_width")
        if not wall_thickness + 4 * agent_radius < L:
            raise ValueError("TwoRoom: the arena is too small for the wall and the agent; increase arena_size")
        self.door_center, self.door_width, self.wall = door_center, float(door_width), True
        self._default_layout = (self.door_center, self.door_width, self.wall)  # reset() restores it
        self._setup(image_size, self._grid(L, float(wall_thickness)), arena_size, wall_thickness, max_step,
                    agent_radius, success_radius, 0, render_mode)
        self.set_physics(motor_gain=motor_gain)
        if not isinstance(distractor, (bool, np.bool_)):
            raise TypeError(f"TwoRoom: distractor must be true or false, got {distractor!r}")
        self._blob = Distractor(self.arena_size) if distractor else None

    def _grid(self, arena_size: float, wall_thickness: float) -> RoomGrid:
        """The current walls: one room without the wall, else two with one door (width 0: closed)."""
        if not self.wall:
            return RoomGrid(1, 1, [], arena_size, wall_thickness)
        return RoomGrid(1, 2, [Door(0, 1, self.door_center, self.door_width)], arena_size, wall_thickness)

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
        self._boxes = self._grid(self.arena_size, self.wall_thickness).boxes(self.agent_radius)
        if not self.in_free_space(self._pos):
            self.door_center, self.door_width, self.wall = old
            self._boxes = self.rooms.boxes(self.agent_radius)
            raise ValueError(f"TwoRoom.set_layout: the agent at {self._pos} would be inside the new wall")
        self._set_rooms(self._grid(self.arena_size, self.wall_thickness))

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start uniform in free space (either room); a goal is drawn too, so `render_goal` works.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal; the layout
        returns to the one the env was made with (undoing `set_layout`).
        """
        if (self.door_center, self.door_width, self.wall) != self._default_layout:  # undo set_layout
            self.door_center, self.door_width, self.wall = self._default_layout
            self._set_rooms(self._grid(self.arena_size, self.wall_thickness))
        obs, info = super().reset(seed=seed, options=options)
        if self._blob is None:
            return obs, info
        self._blob.reset(self.np_random)  # after start and goal: they are the same as without the blob
        return self.render_state(self._pos), info

    def step(self, action: np.ndarray):
        if self._blob is not None:
            self._blob.step()  # before the parent renders the new observation
        return super().step(action)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """As `MultiRoomEnv.render_state`, with the distractor (where it is now) under the agent."""
        if self._blob is None:
            return super().render_state(state)
        floor, floor_u8 = self._background, self._background_u8
        try:
            self._background_u8 = self._blob.draw(floor_u8.copy(), self._scale, self._centres)
            self._background = self._background_u8.astype(np.float32)
            return super().render_state(state)
        finally:
            self._background, self._background_u8 = floor, floor_u8
