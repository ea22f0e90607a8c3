"""An action-independent distractor: a blob that wanders over the image on its own.

Latent action models learn "what changed between two frames"; a distractor that moves whatever
the agent does is the case where they fail without a few action labels (LAOM, Nikulin et al.
2025). The blob is a disc with a random-walk velocity (momentum, bouncing off the arena's edges,
passing over walls: it is only seen, never felt). Its random stream is its own, drawn at reset
from the env's seeded generator, so episodes stay reproducible and the agent's start, goal and
motion are the same with and without it. It is not part of the env's state: success, tasks and
``set_state`` ignore it, and images rendered from a state show it where it is now.
"""

from __future__ import annotations

import numpy as np

COLOR = np.array([60, 200, 255], dtype=np.float32)  # cyan: unlike the red agent, grey walls, black floor


class Distractor:
    """A wandering disc in an ``L x L`` arena.

    Args:
        arena_size: ``L``.
        radius: the disc's radius (arena units).
        max_speed: the largest displacement per step.
        momentum: how much of its velocity the blob keeps each step (the rest is noise).
    """

    def __init__(self, arena_size: float, radius: float = 4.0, max_speed: float = 3.0, momentum: float = 0.8) -> None:
        self.arena_size, self.radius, self.max_speed, self.momentum = float(arena_size), radius, max_speed, momentum
        self.pos = np.full(2, arena_size / 2)
        self.vel = np.zeros(2)
        self._rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        """A new start and random stream, drawn from ``rng`` (the env's seeded generator)."""
        self._rng = np.random.default_rng(int(rng.integers(2**63 - 1)))
        r, L = self.radius, self.arena_size
        self.pos = self._rng.uniform(r, L - r, size=2)
        self.vel = self._rng.normal(0.0, self.max_speed / 2, size=2)

    def step(self) -> None:
        """Move one step: momentum plus noise, speed capped, bouncing off the edges."""
        self.vel = self.momentum * self.vel + (1 - self.momentum) * self._rng.normal(0.0, self.max_speed, size=2)
        speed = float(np.hypot(*self.vel))
        if speed > self.max_speed:
            self.vel *= self.max_speed / speed
        lo, hi = self.radius, self.arena_size - self.radius
        self.pos = self.pos + self.vel
        for axis in range(2):
            if self.pos[axis] < lo:
                self.pos[axis], self.vel[axis] = 2 * lo - self.pos[axis], -self.vel[axis]
            elif self.pos[axis] > hi:
                self.pos[axis], self.vel[axis] = 2 * hi - self.pos[axis], -self.vel[axis]

    def draw(self, img: np.ndarray, scale: float, centres: np.ndarray) -> np.ndarray:
        """``img`` (uint8 ``(n, n, 3)``) with the blob drawn in place (anti-aliased over one pixel)."""
        x, y = float(self.pos[0]), float(self.pos[1])
        r, n = self.radius, img.shape[0]
        j0, j1 = max(int((x - r) * scale) - 1, 0), min(int((x + r) * scale) + 2, n)
        i0, i1 = max(int((y - r) * scale) - 1, 0), min(int((y + r) * scale) + 2, n)
        if j0 < j1 and i0 < i1:
            dist = np.sqrt((centres[j0:j1][None, :] - x) ** 2 + (centres[i0:i1][:, None] - y) ** 2)
            alpha = np.clip((r - dist) * scale + 0.5, 0.0, 1.0)[..., None]
            patch = img[i0:i1, j0:j1].astype(np.float32)
            img[i0:i1, j0:j1] = (patch + alpha * (COLOR - patch) + 0.5).astype(np.uint8)
        return img
