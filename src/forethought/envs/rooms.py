"""Rooms on a grid joined by doors: the wall geometry of TwoRoom and MultiRoom, and room paths.

Arena coordinates: `x` to the right (image column), `y` down (image row), both in `[0, L]`. A
layout is a `rows x cols` grid of equal rooms, numbered row-major (room `i * cols + j` is in row
`i`, column `j`). Every interior grid line is a wall of thickness `t` that spans the whole arena;
a door is an opening of width `w` in the wall between two neighbouring rooms, centred at `center`
along that wall. TwoRoom is the grid `1 x 2` with one door::

    three_rooms (1 x 3, the default MultiRoom layout): an S-shaped path from room 0 to room 2

    ┌──────┬──────┬──────┐
    │      ┃      ┃ door │
    │  0   ┃  1   ┃      │      door 0-1 low on its wall, door 1-2 high on its wall
    │      ┃      ┃      │
    │ door ┃      ┃      │
    └──────┴──────┴──────┘

The agent is a disc of radius `r`; collisions are computed for its centre in configuration
space (walls grown by `r`, doors shrunk by `r`, the arena shrunk by `r`), see `boxes`. Room
paths (`room_path`) are shortest paths for the centre through door waypoints: the room sequence
and the number of doors a task crosses, which is how MultiRoom results are broken down.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

BIG = 1e9  # stands in for infinity in obstacle boxes (inf * 0 would give NaN in the slab test)

# Named layouts: grid (rows, cols) and doors (room a, room b, where along the shared wall in [0, 1]).
PRESETS: dict[str, dict[str, Any]] = {
    # Door 0-1 near the bottom, door 1-2 near the top: from room 0 to room 2 the path is an S.
    "three_rooms": {"grid": [1, 3], "doors": [[0, 1, 0.9], [1, 2, 0.1]]},
    # A U: rooms 0 and 2 (left column) are three doors apart, through 1 and 3.
    "four_rooms": {"grid": [2, 2], "doors": [[0, 1, 0.5], [1, 3, 0.5], [3, 2, 0.5]]},
    # A serpentine: 0-1-2, down to 5-4-3, down to 6-7-8; rooms 0 and 8 are eight doors apart.
    "nine_rooms": {"grid": [3, 3], "doors": [[0, 1, 0.5], [1, 2, 0.5], [2, 5, 0.5], [5, 4, 0.5], [4, 3, 0.5],
                                             [3, 6, 0.5], [6, 7, 0.5], [7, 8, 0.5]]},
}


@dataclass(frozen=True)
class Door:
    """An opening between neighbouring rooms `a` and `b`, centred at `center` along their shared wall
    (arena units, `y` on a vertical wall, `x` on a horizontal one), `width` wide (0: closed)."""

    a: int
    b: int
    center: float
    width: float


@dataclass(frozen=True)
class WallLine:
    """A wall along a whole grid line: `axis` 0 is the vertical line `x = position`, 1 the horizontal
    line `y = position`; `doors` are the openings in it."""

    axis: int
    position: float
    doors: tuple[Door, ...]


class RoomGrid:
    """A `rows x cols` grid of rooms in an `L x L` arena, walls of thickness `t`, and doors.

    Args:
        rows, cols: the grid (`1 x 1`: one room, no walls).
        doors: the doors; each joins two neighbouring rooms (row-major indices).
        arena_size: `L`.
        wall_thickness: `t`.
    """

    def __init__(self, rows: int, cols: int, doors: list[Door] | tuple[Door, ...], arena_size: float,
                 wall_thickness: float) -> None:
        if rows < 1 or cols < 1:
            raise ValueError(f"rooms: the grid must have >= 1 row and column, got {rows} x {cols}")
        self.rows, self.cols, self.doors = int(rows), int(cols), tuple(doors)
        self.arena_size, self.wall_thickness = float(arena_size), float(wall_thickness)
        for d in self.doors:
            self._check_door(d)

    @property
    def num_rooms(self) -> int:
        return self.rows * self.cols

    # --- where things are ------------------------------------------------------------------------
    def room_of(self, pos: np.ndarray) -> int:
        """The room whose grid cell holds `pos` (a point inside a door counts for the cell it is in)."""
        L = self.arena_size
        j = min(max(int(pos[0] * self.cols / L), 0), self.cols - 1)
        i = min(max(int(pos[1] * self.rows / L), 0), self.rows - 1)
        return i * self.cols + j

    def shared_wall(self, a: int, b: int) -> tuple[int, float, float, float]:
        """`(axis, position, lo, hi)` of the wall between neighbouring rooms `a` and `b`: the line and
        the segment `[lo, hi]` along it that borders both rooms."""
        n = self.num_rooms
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"rooms: door between rooms {a} and {b}, but the grid has rooms 0..{n - 1}")
        (ra, ca), (rb, cb) = divmod(a, self.cols), divmod(b, self.cols)
        L = self.arena_size
        if ra == rb and abs(ca - cb) == 1:  # side by side: a vertical wall
            return 0, max(ca, cb) * L / self.cols, ra * L / self.rows, (ra + 1) * L / self.rows
        if ca == cb and abs(ra - rb) == 1:  # one above the other: a horizontal wall
            return 1, max(ra, rb) * L / self.rows, ca * L / self.cols, (ca + 1) * L / self.cols
        raise ValueError(f"rooms: rooms {a} and {b} of a {self.rows} x {self.cols} grid are not neighbours; "
                         "a door joins rooms that share a wall")

    def _usable(self, lo: float, hi: float) -> tuple[float, float]:
        """The part of a wall segment a door may occupy: clear of the crossing walls at its ends."""
        half, L = self.wall_thickness / 2, self.arena_size
        return (lo + half if lo > 0 else lo), (hi - half if hi < L else hi)

    def _check_door(self, d: Door) -> None:
        _, _, lo, hi = self.shared_wall(d.a, d.b)
        lo, hi = self._usable(lo, hi)
        if d.width < 0 or (d.width > 0 and not lo <= d.center - d.width / 2 <= d.center + d.width / 2 <= hi):
            raise ValueError(f"rooms: the door [{d.center - d.width / 2}, {d.center + d.width / 2}] between rooms "
                             f"{d.a} and {d.b} must lie inside their shared wall [{lo}, {hi}]; "
                             "change its position or width")

    def door_center(self, a: int, b: int, fraction: float, width: float) -> float:
        """The centre of a door of `width` at `fraction` (0: flush with the segment's start, 1: its end)."""
        _, _, lo, hi = self.shared_wall(a, b)
        lo, hi = self._usable(lo, hi)
        return lo + width / 2 + float(fraction) * (hi - lo - width)

    def lines(self) -> list[WallLine]:
        """The walls: every interior grid line, vertical ones first, with its doors."""
        L, out = self.arena_size, []
        for axis, count in ((0, self.cols), (1, self.rows)):
            for k in range(1, count):
                pos = k * L / count
                doors = tuple(sorted((d for d in self.doors if self.shared_wall(d.a, d.b)[:2] == (axis, pos)),
                                     key=lambda d: d.center))
                out.append(WallLine(axis, pos, doors))
        return out

    # --- collisions and pixels --------------------------------------------------------------------
    def boxes(self, radius: float) -> np.ndarray:
        """Obstacles for the agent's centre as open boxes `(K, 2, 2)`: `[k, 0] = lo`, `[k, 1] = hi`.

        Each wall line is cut into pieces between its doors (a door shrunk by `radius` on each side),
        each piece grown by `t/2 + radius`; then the four arena edges. A closed door (width 0) gives two
        overlapping pieces: one solid wall (open boxes leave no seam).
        """
        L, r = self.arena_size, radius
        h = self.wall_thickness / 2 + r
        boxes = []
        for line in self.lines():
            start = -BIG
            cuts = []
            for d in line.doors:
                lo, hi = d.center - d.width / 2 + r, d.center + d.width / 2 - r
                if d.width == 0:
                    lo, hi = d.center + 1.0, d.center - 1.0
                cuts.append((lo, hi))
            for lo, hi in [*cuts, (BIG, None)]:
                a0, a1 = start, lo
                if line.axis == 0:
                    boxes.append([[line.position - h, a0], [line.position + h, a1]])
                else:
                    boxes.append([[a0, line.position - h], [a1, line.position + h]])
                start = hi
        boxes += [
            [[-BIG, -BIG], [r, BIG]],  # arena edges
            [[L - r, -BIG], [BIG, BIG]],
            [[-BIG, -BIG], [BIG, r]],
            [[-BIG, L - r], [BIG, BIG]],
        ]
        return np.array(boxes, dtype=np.float64)

    def wall_mask(self, image_size: int) -> np.ndarray:
        """Boolean `(image_size, image_size)`: the pixels whose centre lies on a wall (not in a door)."""
        n, L = image_size, self.arena_size
        c = (np.arange(n) + 0.5) * L / n  # pixel centres in arena units
        x, y = c[None, :], c[:, None]  # image column = x, image row = y
        half = self.wall_thickness / 2
        mask = np.zeros((n, n), dtype=bool)
        for line in self.lines():
            across, along = (x, y) if line.axis == 0 else (y, x)
            in_door = np.zeros((n, n), dtype=bool)
            for d in line.doors:
                in_door = in_door | (np.abs(along - d.center) < d.width / 2)
            mask |= (np.abs(across - line.position) <= half) & ~in_door
        return mask

    # --- paths between rooms ----------------------------------------------------------------------
    def _waypoints(self, radius: float) -> list[tuple[np.ndarray, tuple[int, int]]]:
        """Points the centre can pass a door through (its middle and both ends), with the door's rooms."""
        out = []
        for d in self.doors:
            if d.width <= 2 * radius:
                continue  # closed (or too narrow for the agent)
            axis, pos, _, _ = self.shared_wall(d.a, d.b)
            slack = d.width / 2 - radius
            for along in (d.center - slack, d.center, d.center + slack):
                out.append((np.array([pos, along] if axis == 0 else [along, pos], dtype=np.float64), (d.a, d.b)))
        return out

    def room_path(self, start: np.ndarray, goal: np.ndarray, radius: float) -> tuple[list[int], float]:
        """The rooms that the shortest path from `start` to `goal` passes through, in order, and its length.

        The path is the shortest polyline from `start` to `goal` through door waypoints (each door's
        middle and ends, shrunk by `radius`): straight inside a room, since rooms are convex. The
        length is therefore an upper bound within a few units of the true geodesic; the room sequence
        is exact except for near-ties between two routes. Unreachable (a closed door): `([], inf)`.
        """
        p, q = np.asarray(start, np.float64)[:2], np.asarray(goal, np.float64)[:2]
        points = [(p, (self.room_of(p),)), (q, (self.room_of(q),)), *self._waypoints(radius)]
        dist = [np.inf] * len(points)
        prev = [-1] * len(points)
        dist[0] = 0.0
        heap = [(0.0, 0)]
        while heap:  # Dijkstra over <= 3 * doors + 2 points; an edge joins two points that share a room
            du, u = heapq.heappop(heap)
            if du > dist[u] or u == 1:
                continue
            for v, (pv, rooms_v) in enumerate(points):
                if v != u and set(points[u][1]) & set(rooms_v):
                    dv = du + float(np.hypot(*(pv - points[u][0])))
                    if dv < dist[v]:
                        dist[v], prev[v] = dv, u
                        heapq.heappush(heap, (dv, v))
        if not np.isfinite(dist[1]):
            return [], float("inf")
        chain = [1]
        while chain[-1] != 0:
            chain.append(prev[chain[-1]])
        chain.reverse()
        rooms = [points[0][1][0]]
        for u, v in zip(chain, chain[1:]):  # the room each segment runs through
            shared = set(points[u][1]) & set(points[v][1])
            room = rooms[-1] if rooms[-1] in shared else min(shared)
            if room != rooms[-1]:
                rooms.append(room)
        if rooms[-1] != points[1][1][0]:
            rooms.append(points[1][1][0])
        return rooms, float(dist[1])

    def door_distances(self) -> np.ndarray:
        """`(n, n)` fewest doors between rooms (breadth-first over open doors); -1 where unreachable."""
        n = self.num_rooms
        adj: list[set[int]] = [set() for _ in range(n)]
        for d in self.doors:
            if d.width > 0:
                adj[d.a].add(d.b)
                adj[d.b].add(d.a)
        out = np.full((n, n), -1, dtype=np.int64)
        for s in range(n):
            out[s, s], frontier = 0, [s]
            while frontier:
                nxt = []
                for u in frontier:
                    for v in adj[u]:
                        if out[s, v] < 0:
                            out[s, v] = out[s, u] + 1
                            nxt.append(v)
                frontier = nxt
        return out


def parse_layout(layout: str | dict[str, Any], arena_size: float, wall_thickness: float,
                 door_width: float) -> RoomGrid:
    """A `RoomGrid` from a preset name (`PRESETS`) or a dict `{"grid": [rows, cols], "doors": [[a, b, f], ...]}`.

    `f` in `[0, 1]` places the door along the wall the rooms share (0: flush with its top or left
    end, 1: its bottom or right end); `[a, b, f, width]` gives the door its own width (default
    `door_width`). Every room must be reachable from every other one.
    """
    if isinstance(layout, str):
        if layout not in PRESETS:
            raise ValueError(f"MultiRoom: unknown layout {layout!r}; presets: {', '.join(PRESETS)}, or a dict "
                             '{"grid": [rows, cols], "doors": [[room_a, room_b, position_0_to_1], ...]}')
        layout = PRESETS[layout]
    if not isinstance(layout, dict) or set(layout) - {"grid", "doors"} or "grid" not in layout:
        raise ValueError(f'MultiRoom: layout must be a preset name or {{"grid": [rows, cols], "doors": [...]}}, '
                         f"got {layout!r}")
    grid = layout["grid"]
    if (not isinstance(grid, (list, tuple)) or len(grid) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in grid)):
        raise ValueError(f"MultiRoom: layout grid must be two integers [rows, cols], got {grid!r}")
    empty = RoomGrid(grid[0], grid[1], [], arena_size, wall_thickness)
    doors = []
    for spec in layout.get("doors", []):
        if not isinstance(spec, (list, tuple)) or len(spec) not in (3, 4):
            raise ValueError(f"MultiRoom: a door is [room_a, room_b, position_0_to_1] or with a width, got {spec!r}")
        a, b, frac = int(spec[0]), int(spec[1]), float(spec[2])
        width = float(spec[3]) if len(spec) == 4 else float(door_width)
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"MultiRoom: door {spec!r}: its position must be in [0, 1] along the wall, got {frac}")
        doors.append(Door(a, b, empty.door_center(a, b, frac, width), width))
    rooms = RoomGrid(grid[0], grid[1], doors, arena_size, wall_thickness)
    cut_off = np.nonzero(rooms.door_distances()[0] < 0)[0]
    if cut_off.size:
        raise ValueError(f"MultiRoom: rooms {cut_off.tolist()} cannot be reached from room 0; add doors")
    return rooms
