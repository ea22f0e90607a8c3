"""The `GoalEnv` protocol: what every built-in environment offers on `env.unwrapped`.

Evaluation needs three things from a simulator that a gymnasium env does not standardise:
put the simulator in a given true state, draw a goal state and show it as an image (the
planner's goal), and decide success from true states after acting. Planners and agents never
call `success`; only the evaluation protocol does (see docs/conventions.md, "Environments").

Optional, outside the protocol: an env class may define `dataset_metrics(states, same_episode)
-> dict[str, float]` (a static method), env-specific measures of a collected dataset that
`forethought collect` adds to its summary. `states` are the stored true states `(N, state_dim)`
in row order, `same_episode` the boolean `(N-1,)` mask of row pairs `t -> t+1` inside one episode
(PushT reports `block_moving_fraction`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class GoalEnv(Protocol):
    """A simulator with settable true state and a goal API (on `env.unwrapped`).

    States are float64 vectors of shape `(state_dim,)`, the same vectors that `reset` and `step`
    put in `info["state"]`.
    """

    state_dim: int

    def get_state(self) -> np.ndarray:
        """The true state now, float64 `(state_dim,)`."""
        ...

    def set_state(self, state: np.ndarray) -> None:
        """Put the simulator in `state` (float64 `(state_dim,)`); the next `step` starts there."""
        ...

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random reachable goal state, float64 `(state_dim,)`, drawn only from `rng`."""
        ...

    def set_goal_state(self, state: np.ndarray) -> None:
        """Make `state` the goal that `render_goal` shows and that the reward refers to."""
        ...

    @property
    def goal_state(self) -> np.ndarray:
        """The current goal state, float64 `(state_dim,)`."""
        ...

    def render_goal(self) -> np.ndarray:
        """The observation the env would give in the goal state: uint8 `(H, W, 3)`."""
        ...

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Whether `state` achieves `goal_state` (evaluation only)."""
        ...
