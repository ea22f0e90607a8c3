"""The `GoalEnv` protocol: what every built-in environment offers on `env.unwrapped`.

Evaluation needs three things from a simulator that a gymnasium env does not standardise:
put the simulator in a given true state, draw a goal state and show it as an image (the
planner's goal), and decide success from true states after acting. Planners and agents never
call `success`; only the evaluation protocol does (see docs/conventions.md, "Environments").

The reset contract. The evaluation protocol (`forethought/evaluation/protocol.py`) puts each
task in the env through `reset`, not through the methods below:

    obs, info = env.reset(seed=s, options={"state": start, "goal_state": goal})

must start the episode in `start` (afterwards `env.unwrapped.get_state()` equals `start` and
`info["state"]`, when given, too) and make `goal` the goal (`env.unwrapped.goal_state` equals
`goal`, and `render_goal()` shows it). Either key may be missing or `None`: then reset draws that
part itself, as it does for `reset(seed=s)`. Gymnasium gives these keys no meaning, so an env
written for gymnasium alone ignores them; the protocol checks both after every reset and refuses
such an env (`forethought.evaluation.tasks.EnvContractError`) instead of evaluating it on random
tasks. `forethought.envs.base.apply_reset_options(self, options)` at the end of `reset`
implements the contract for any env with these methods; `forethought.envs.base.PixelGoalEnv`,
the base class of the built-in envs, does it in `_finish_reset(options)`. docs/custom-envs.md
shows a complete env that follows it.

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
    put in `info["state"]`. `reset(seed=..., options={"state": ..., "goal_state": ...})` follows
    the reset contract of the module docstring.
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

    # Optional: `goal_distance(state, goal_state) -> float`, the distance in the space the success
    # test uses (e.g. position only, not velocities), for reports. Without it reports give the
    # Euclidean distance between the whole state vectors.
