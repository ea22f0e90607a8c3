"""Hindsight goal relabeling over the reward-free episode store: ``(frames, action, goal frame)`` samples.

A reward-free dataset has no goals; every frame that follows in the same episode is one the data
reached, so it can serve as the goal of the frames before it (hindsight relabeling, Andrychowicz et
al. 2017; Ghosh et al. 2019 for GCBC). :class:`GoalDataset` is a :class:`~forethought.data.windows.WindowDataset`
(the same streaming or in-memory loader, the same frameskip alignment) whose items also carry goal
frames drawn by a :class:`GoalSampling`: the current frame itself, a future frame of the same
episode ``m >= 1`` model steps ahead (``m`` uniform over the rest of the episode, or geometric with
a discount), or a frame of a random training episode.

Item keys, besides the window's ``obs (T, ...)`` and ``action (T-1, k*A)`` (raw, unnormalized):
``<name> (...)`` one goal frame per configured sampler, and ``<name>_steps`` (int64 scalar) the
model steps from the window's current frame (``history - 1``) to that goal: 0 for the current
frame, ``m`` for a future one, ``-1`` for a random one (its distance is unknown).

Randomness: goals are drawn with torch's global generator, which the trainer seeds and checkpoints
(and which DataLoader workers get seeded deterministically), so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from forethought.data.windows import WindowDataset


@dataclass(frozen=True)
class GoalSampling:
    """Where goals come from. The three probabilities must sum to 1.

    Attributes:
        p_current: the current frame itself (the goal is reached: reward 0, a terminal for value learning).
        p_future: a later frame of the same episode, ``m >= 1`` model steps ahead.
        p_random: a frame of a random training episode (teaches values what is far).
        discount: ``None``: ``m`` uniform over the rest of the episode; a number ``gamma`` in ``(0, 1)``:
            ``m ~ Geometric(1 - gamma)`` cut at the episode's end (near goals weighted as a value with
            discount ``gamma`` weighs them).
    """

    p_current: float = 0.0
    p_future: float = 1.0
    p_random: float = 0.0
    discount: float | None = None

    def __post_init__(self) -> None:
        probs = (self.p_current, self.p_future, self.p_random)
        if min(probs) < 0 or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"GoalSampling: p_current, p_future, p_random must be >= 0 and sum to 1, got {probs}")
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise ValueError(f"GoalSampling: discount must be in (0, 1) or None (uniform offsets), got {self.discount}")


class GoalDataset(WindowDataset):
    """Windows of ``history + 1`` frames with relabeled goal frames (module docstring).

    Args:
        store_or_path, episodes, frameskip, in_memory: as :class:`WindowDataset`.
        history: frames up to and including the current one (1 for the model-free policies; the
            world model's ``h`` for imagination, which rolls the predictor from a real history).
        goals: one :class:`GoalSampling` per goal key, e.g. ``{"goal": GoalSampling()}``.
    """

    def __init__(self, store_or_path: Any, *, history: int = 1, frameskip: int = 1,
                 goals: dict[str, GoalSampling] | None = None, episodes: Any = None, in_memory: bool = False) -> None:
        super().__init__(store_or_path, history=history, horizon=1, frameskip=frameskip, episodes=episodes,
                         keys=("obs", "action"), in_memory=in_memory)
        self.goals = dict(goals if goals is not None else {"goal": GoalSampling()})
        for name in self.goals:
            if name in ("obs", "action") or name.endswith("_steps"):
                raise ValueError(f"GoalDataset: goal key {name!r} clashes with the window's keys; choose another name")
        self._episode_weights = torch.as_tensor(self._steps + 1, dtype=torch.float64)  # random goals: uniform rows

    def current_row(self, index: int) -> tuple[int, int]:
        """``(selected episode j, row of the current frame within it)`` of window ``index``."""
        j = int(np.searchsorted(self._cum, index, side="right")) - 1
        return j, int(index - self._cum[j]) + (self.history - 1) * self.frameskip

    def _goal_row(self, sampling: GoalSampling, j: int, row: int) -> tuple[int, int, int]:
        """``(episode j, row, model steps ahead or -1)`` of one goal for the frame at ``row`` of episode ``j``."""
        u = float(torch.rand(()))
        if u < sampling.p_current:
            return j, row, 0
        if u < sampling.p_current + sampling.p_future:
            k = self.frameskip
            most = (int(self._steps[j]) - row) // k  # >= 1: the window holds the next frame
            if sampling.discount is None:
                m = int(torch.randint(1, most + 1, ()))
            else:  # inverse CDF of Geometric(p) on {1, 2, ...}
                p = 1.0 - sampling.discount
                v = max(float(torch.rand(())), 1e-12)
                m = min(most, 1 + int(math.floor(math.log(v) / math.log1p(-p))))
            return j, row + m * k, m
        other = int(torch.multinomial(self._episode_weights, 1))
        return other, int(torch.randint(0, int(self._steps[other]) + 1, ())), -1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        out = super().__getitem__(index)
        j, row = self.current_row(index)
        for name, sampling in self.goals.items():
            g_ep, g_row, steps = self._goal_row(sampling, j, row)
            frame = self._rows("obs", g_ep, g_row, g_row + 1)[0]
            if self.pixels:
                out[name] = torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))  # (C, H, W)
            else:
                out[name] = torch.from_numpy(np.asarray(frame, np.float32))
            out[f"{name}_steps"] = torch.tensor(steps, dtype=torch.int64)
        return out
