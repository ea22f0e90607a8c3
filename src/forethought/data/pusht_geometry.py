"""The PushT block's geometry and the agent's routes around it, for the scripted expert.

Everything is in the block's frame (origin at the T's origin, x along the bar, y toward the
stem); `rot(angle)` maps it to the world. The constants are gym-pusht's `add_tee` (scale 30,
length 4), hard-coded so that the expert does not import gym-pusht;
tests/data/test_pusht_expert.py checks them against the env's bodies.

The agent (a disc of radius 15) reaches a contact in one of two ways: around the T along the
shortest path that keeps it clear of the block (a visibility graph on the T's six convex corners,
pushed out), or, when it already touches the T, by sliding around it along the loop of disc
centres that touch it (`contact loop`), pressing lightly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# --- gym-pusht's T (add_tee(scale=30)): a 120 x 30 bar and a 30 x 90 stem, mass 1 ---------------
TEE_RECTS = np.array([[-60.0, 0.0, 60.0, 30.0], [-15.0, 30.0, 15.0, 120.0]])  # (xmin, ymin, xmax, ymax): bar, stem
COM_LOCAL = np.array([0.0, 45.0])  # centre of gravity: the mean of the two rectangles' centroids
GYRATION2 = 3000.0  # moment / mass (gym-pusht sums two bar moments about the block origin: 2 x 1500)
AGENT_RADIUS = 15.0
AGENT_RANGE = (24.0, 487.0)  # where the agent's centre can go: walls at 5 and 506 (radius 2) + radius 15
# The perimeter as (start, end, outward normal); the T is convex except at the two inner corners.
EDGES = [
    ((-60, 0), (60, 0), (0, -1)), ((60, 0), (60, 30), (1, 0)), ((60, 30), (15, 30), (0, 1)),
    ((15, 30), (15, 120), (1, 0)), ((15, 120), (-15, 120), (0, 1)), ((-15, 120), (-15, 30), (-1, 0)),
    ((-15, 30), (-60, 30), (0, 1)), ((-60, 30), (-60, 0), (-1, 0)),
]  # fmt: skip

BLOCK_PAD = 4.0  # routes keep the agent's centre AGENT_RADIUS + this away from the T
_NODE_PAD = 10.0  # route corners: AGENT_RADIUS + this beyond the T's convex corners, both axes
_NODE_REACHED = 10.0  # a route corner closer than this is passed: head for the next one
_OVERSHOOT = 20.0  # aim this far beyond an intermediate corner, so the agent keeps its speed
_LOOP_RANGE = 12.0  # an agent this close to the contact loop may slide along it
_LOOP_AHEAD = 25.0  # sliding aims this far ahead along the loop ...
_LOOP_GAIN = 2.0  # ... with the PD target this many times as far away, for speed
_LOOP_DEPTH = 1.0  # ... pressed this far into the T, to keep the contact


def rot(angle: float) -> np.ndarray:
    """The 2 x 2 rotation by `angle` (block frame -> world)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def wrap(angle: Any) -> Any:
    """Angles wrapped to [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def dist_to_tee(points: np.ndarray) -> np.ndarray:
    """Distance from block-frame points `(..., 2)` to the T (0 inside): `(...)`."""
    p = points[..., None, :]
    d = np.maximum(np.maximum(TEE_RECTS[:, :2] - p, p - TEE_RECTS[:, 2:]), 0.0)
    return np.linalg.norm(d, axis=-1).min(-1)


def closest_on_tee(points: np.ndarray) -> np.ndarray:
    """The closest point of the T to each block-frame point `(K, 2)`: `(K, 2)`."""
    near = np.clip(points[:, None, :], TEE_RECTS[:, :2], TEE_RECTS[:, 2:])  # (K, R, 2)
    d = np.linalg.norm(points[:, None, :] - near, axis=-1)
    return near[np.arange(len(points)), d.argmin(1)]


def blocked(p0: np.ndarray, p1: np.ndarray, pad: float) -> np.ndarray:
    """Whether the agent's centre moving `p0 -> p1` `(S, 2)` comes within `AGENT_RADIUS + pad` of the T: `(S,)`.

    Conservative: the T's two rectangles grown by that much, with square corners (slab test).
    """
    grow = AGENT_RADIUS + pad
    lo, hi = TEE_RECTS[:, :2] - grow, TEE_RECTS[:, 2:] + grow  # (R, 2)
    d = (p1 - p0)[:, None, :]
    d = np.where(np.abs(d) < 1e-9, np.copysign(1e-9, d), d)
    t1, t2 = (lo - p0[:, None]) / d, (hi - p0[:, None]) / d  # (S, R, 2)
    t_in, t_out = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    return ((t_in < t_out - 1e-9) & (t_out > 1e-9) & (t_in < 1 - 1e-9)).any(-1)


def contact_candidates(spacing: float = 5.0, end_margin: float = 4.0, standoff: float = 10.0) -> dict[str, np.ndarray]:
    """Push contacts on the T's edges, every `spacing` units, `end_margin` from the corners.

    Returns block-frame arrays over the C contacts: `point` (C, 2) on the edge, `normal` (C, 2)
    outward, `agent` (C, 2) the disc's centre touching there, `pre` (C, 2) the pre-contact point
    `standoff` further out, and `lever` (C,) = (point - centre of gravity) x (inward normal).
    Contacts the disc cannot touch (in the inner corners) are left out.
    """
    pts, normals = [], []
    for a, b, n in EDGES:
        a, b = np.array(a, float), np.array(b, float)
        length = float(np.linalg.norm(b - a))
        k = max(1, int((length - 2 * end_margin) // spacing) + 1)
        pts += [a + (b - a) * t / length for t in np.linspace(end_margin, length - end_margin, k)]
        normals += [n] * k
    p, n = np.array(pts), np.array(normals, float)
    agent = p + AGENT_RADIUS * n
    pre = agent + standoff * n
    ok = (dist_to_tee(agent) > AGENT_RADIUS - 1e-6) & (dist_to_tee(pre) > AGENT_RADIUS + BLOCK_PAD)
    p, n, agent, pre = p[ok], n[ok], agent[ok], pre[ok]
    r = p - COM_LOCAL
    lever = r[:, 0] * -n[:, 1] - r[:, 1] * -n[:, 0]
    return {"point": p, "normal": n, "agent": agent, "pre": pre, "lever": lever}


def contact_loop(step: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The loop of disc centres touching the T: points `(M, 2)`, arc length `(M,)`, outward normals `(M, 2)`, length."""
    r, pts, m = AGENT_RADIUS, [], len(EDGES)
    edges = [tuple(np.array(v, float) for v in e) for e in EDGES]
    # A corner is concave when the next edge leaves along this edge's outward normal.
    concave = [float((edges[(i + 1) % m][1] - edges[(i + 1) % m][0]) @ edges[i][2]) > 0 for i in range(m)]
    for i, (a, b, n) in enumerate(edges):
        n_prev, n_next = edges[i - 1][2], edges[(i + 1) % m][2]
        start = a + r * (n_prev + n) if concave[i - 1] else a + r * n  # concave corners: the offsets meet
        end = b + r * (n + n_next) if concave[i] else b + r * n
        k = max(1, int(np.ceil(np.linalg.norm(end - start) / step)))
        pts += list(start + (end - start) * np.arange(k)[:, None] / k)
        if not concave[i]:  # convex corner: a quarter circle around it
            a0 = np.arctan2(n[1], n[0])
            turn = wrap(np.arctan2(n_next[1], n_next[0]) - a0)
            k = max(1, int(np.ceil(abs(turn) * r / step)))
            ang = a0 + turn * np.arange(k) / k
            pts += list(b + r * np.stack([np.cos(ang), np.sin(ang)], 1))
    pts = np.array(pts)
    gaps = np.linalg.norm(np.diff(pts, axis=0, append=pts[:1]), axis=1)
    normals = pts - closest_on_tee(pts)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return pts, np.concatenate([[0.0], np.cumsum(gaps[:-1])]), normals, float(gaps.sum())


class TeeRoutes:
    """Routes for the agent's centre to a set of contacts, in the block frame.

    Args:
        agent: `(C, 2)` the disc's centre touching each contact (on the contact loop).
        pre: `(C, 2)` each contact's pre-contact point (clear of the T by more than BLOCK_PAD).
    """

    def __init__(self, agent: np.ndarray, pre: np.ndarray) -> None:
        g = AGENT_RADIUS + _NODE_PAD
        (bx0, by0, bx1, by1), (sx0, _, sx1, sy1) = TEE_RECTS
        self.nodes = np.array([[bx0 - g, by0 - g], [bx1 + g, by0 - g], [bx1 + g, by1 + g],
                               [sx1 + g, sy1 + g], [sx0 - g, sy1 + g], [bx0 - g, by1 + g]])  # fmt: skip
        n = len(self.nodes)
        i, j = np.triu_indices(n, 1)
        seen = ~blocked(self.nodes[i], self.nodes[j], BLOCK_PAD)
        dist = np.full((n, n), np.inf)
        dist[i[seen], j[seen]] = dist[j[seen], i[seen]] = np.linalg.norm(self.nodes[i] - self.nodes[j], axis=1)[seen]
        np.fill_diagonal(dist, 0.0)
        self.next = np.tile(np.arange(n), (n, 1))  # next corner on the shortest route i -> j
        for m in range(n):  # Floyd-Warshall on the six corners
            via = dist[:, m, None] + dist[None, m, :]
            self.next = np.where(via < dist - 1e-9, self.next[:, m, None], self.next)
            dist = np.minimum(dist, via)
        self.dist = dist
        self.pre = pre
        src, dst = np.repeat(self.nodes, len(pre), 0), np.tile(pre, (n, 1))
        length = np.where(blocked(src, dst, BLOCK_PAD), np.inf, np.linalg.norm(src - dst, axis=1))
        self.node_to_pre = length.reshape(n, -1)  # (N, C): corner -> pre-contact point, inf if not in sight
        self.loop, self.loop_u, self.loop_normal, self.loop_length = contact_loop()
        self.contact_u = self.loop_u[np.linalg.norm(agent[:, None] - self.loop[None], axis=-1).argmin(1)]

    # --- around the T, clear of it ----------------------------------------------------------------
    def _from(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free straight-line lengths from `a` to every pre-contact point `(C,)` and every corner `(N,)`."""
        pad = min(BLOCK_PAD, float(dist_to_tee(a)) - AGENT_RADIUS - 0.5)  # as much room as the agent has
        ends = np.concatenate([self.pre, self.nodes])
        free = ~blocked(np.broadcast_to(a, ends.shape), ends, pad)
        length = np.where(free, np.linalg.norm(ends - a, axis=1), np.inf)
        return length[: len(self.pre)], length[len(self.pre):]

    def around(self, a: np.ndarray) -> np.ndarray:
        """Route length from `a` to every pre-contact point `(C,)` (1000 where there is none)."""
        direct, to_nodes = self._from(a)
        to_node = (to_nodes[:, None] + self.dist).min(0)
        return np.minimum(direct, np.minimum((to_node[:, None] + self.node_to_pre).min(0), 1000.0))

    def around_waypoint(self, a: np.ndarray, k: int) -> tuple[np.ndarray, str]:
        """Where to head next for contact `k`'s pre-contact point, and how ("back" out first, or "go")."""
        if float(dist_to_tee(a)) - AGENT_RADIUS < 1.0:  # touching: back out of both rectangles' nearest sides
            grown = TEE_RECTS + np.array([-1, -1, 1, 1]) * (AGENT_RADIUS + 1.0)
            out = a.copy()
            for _ in range(3):
                for r in grown:
                    gaps = np.array([out[0] - r[0], r[2] - out[0], out[1] - r[1], r[3] - out[1]])
                    if gaps.min() > 0:
                        side = int(np.argmin(gaps))
                        out[side // 2] += (gaps[side] + 15.0) * (-1 if side % 2 == 0 else 1)
            return out, "back"
        direct, to_nodes = self._from(a)
        if np.isfinite(direct[k]):
            return self.pre[k], "go"
        total = to_nodes[:, None] + self.dist + self.node_to_pre[None, :, k]  # a -> corner i ... corner j -> pre
        i, j = np.unravel_index(int(np.argmin(total)), total.shape)
        if not np.isfinite(total[i, j]):
            return self.pre[k], "go"
        if np.linalg.norm(self.nodes[i] - a) < _NODE_REACHED:  # at corner i already: the next one on the way
            if i == j:
                return self.pre[k], "go"
            i = int(self.next[i, j])
        d = self.nodes[i] - a
        return self.nodes[i] + _OVERSHOOT * d / max(float(np.linalg.norm(d)), 1e-9), "go"  # corners passed at speed

    # --- along the T, touching it -------------------------------------------------------------
    def _on_loop(self, a: np.ndarray) -> tuple[int, float]:
        d = np.linalg.norm(self.loop - a, axis=1)
        i = int(d.argmin())
        return i, float(d[i])

    def along(self, a: np.ndarray) -> np.ndarray:
        """Distance from `a` along the contact loop to every contact `(C,)` (inf unless `a` is near the loop)."""
        i, d = self._on_loop(a)
        if d > _LOOP_RANGE:
            return np.full(len(self.contact_u), np.inf)
        du = (self.contact_u - self.loop_u[i]) % self.loop_length
        return np.minimum(du, self.loop_length - du) + d

    def along_waypoint(self, a: np.ndarray, k: int) -> np.ndarray:
        """The PD target that slides the agent along the loop toward contact `k`, pressing lightly."""
        i, _ = self._on_loop(a)
        total = self.loop_length
        du = (self.contact_u[k] - self.loop_u[i]) % total
        ahead = min(du, _LOOP_AHEAD) if du <= total - du else -min(total - du, _LOOP_AHEAD)
        j = int(np.argmin(np.abs((self.loop_u - self.loop_u[i] - ahead + total / 2) % total - total / 2)))
        return a + _LOOP_GAIN * (self.loop[j] - _LOOP_DEPTH * self.loop_normal[j] - a)
