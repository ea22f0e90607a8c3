"""One recorded episode as numpy arrays, laid out exactly as its rows in the store.

An episode of ``T`` env steps is ``T + 1`` rows (docs/conventions.md, "Episode store"): row ``t``
holds the observation and state before ``action[t]`` and what ``step(action[t])`` returned; the
last row holds the final observation and state, a zero padding action, reward 0 and both flags
False. :meth:`Episode.from_steps` builds one from ``T`` actions and adds the padding row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forethought.data.errors import DatasetError


@dataclass
class Episode:
    """Arrays of one episode of ``T >= 1`` env steps, ``T + 1`` rows each.

    Attributes:
        obs: ``(T+1, *obs_shape)``: ``obs[t]`` is seen before ``action[t]``; ``obs[T]`` is final.
        action: ``(T+1, A)`` float: env actions; ``action[T]`` is the zero padding row. ``A = 0``
            (shape ``(T+1, 0)``) for an episode without actions (action-free video).
        reward: ``(T+1,)`` float: ``reward[t]`` from ``step(action[t])``; ``reward[T] = 0``.
        terminated: ``(T+1,)`` bool; False on the last row.
        truncated: ``(T+1,)`` bool; False on the last row.
        state: ``(T+1, S)`` float true simulator state, or ``None`` if the env gives none.
        seed: the seed used for ``env.reset`` and the policy rng, or ``None`` if unknown.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    state: np.ndarray | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        self.obs = np.asarray(self.obs)
        self.action = np.asarray(self.action)
        self.reward = np.asarray(self.reward)
        self.terminated = np.asarray(self.terminated)
        self.truncated = np.asarray(self.truncated)
        if self.state is not None:
            self.state = np.asarray(self.state)
        if self.obs.ndim < 1 or self.obs.shape[0] < 2:
            raise ValueError(
                f"Episode.obs must have T+1 >= 2 rows (at least one env step), got {self.obs.shape}"
            )
        rows = self.obs.shape[0]
        if self.action.ndim != 2 or self.action.shape[0] != rows:
            raise ValueError(
                f"Episode.action must have shape (T+1, A) = ({rows}, A) with a zero padding last "
                f"row, got {self.action.shape} (use Episode.from_steps to pad T actions)"
            )
        for name in ("reward", "terminated", "truncated"):
            shape = getattr(self, name).shape
            if shape != (rows,):
                raise ValueError(f"Episode.{name} must have shape (T+1,) = ({rows},), got {shape}")
        if self.state is not None and (self.state.ndim != 2 or self.state.shape[0] != rows):
            raise ValueError(f"Episode.state must have shape (T+1, S) = ({rows}, S), got {self.state.shape}")
        for name in ("action", "reward") + (("state",) if self.state is not None else ()):
            if not np.issubdtype(getattr(self, name).dtype, np.number):
                raise ValueError(f"Episode.{name} must be numeric, got dtype {getattr(self, name).dtype}")
        if np.any(self.action[-1] != 0) or self.reward[-1] != 0 or self.terminated[-1] or self.truncated[-1]:
            raise ValueError(
                "Episode: the last row is padding and must have a zero action, reward 0 and "
                "terminated/truncated False (use Episode.from_steps to add it)"
            )
        if self.seed is not None:
            self.seed = int(self.seed)

    @classmethod
    def from_steps(
        cls,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        state: np.ndarray | None = None,
        seed: int | None = None,
    ) -> Episode:
        """Build from ``T + 1`` observations/states and ``T`` actions, rewards and flags."""
        action = np.asarray(action)
        if action.ndim != 2:
            raise ValueError(f"Episode.from_steps: action must have shape (T, A), got {action.shape}")

        def pad(x: np.ndarray, dtype: type) -> np.ndarray:
            x = np.asarray(x, dtype=dtype)
            return np.concatenate([x, np.zeros((1, *x.shape[1:]), dtype)])

        return cls(
            obs=obs,
            action=pad(action, action.dtype if np.issubdtype(action.dtype, np.floating) else np.float32),
            reward=pad(reward, np.float64),
            terminated=pad(terminated, np.bool_),
            truncated=pad(truncated, np.bool_),
            state=state,
            seed=seed,
        )

    @property
    def has_actions(self) -> bool:
        """False for an action-free episode (``action`` of shape ``(T+1, 0)``)."""
        return int(self.action.shape[1]) > 0

    def without_actions(self) -> Episode:
        """The same episode with no actions (``action`` of shape ``(T+1, 0)``), for action-free datasets."""
        return Episode(obs=self.obs, action=np.zeros((self.obs.shape[0], 0), np.float32), reward=self.reward,
                       terminated=self.terminated, truncated=self.truncated, state=self.state, seed=self.seed)

    @property
    def num_steps(self) -> int:
        """``T``, the number of env steps (the episode has ``T + 1`` rows)."""
        return int(self.obs.shape[0]) - 1

    def first_non_finite(self) -> tuple[str, int] | None:
        """``(array name, step)`` of the first NaN/inf in obs, action, reward or state, else None."""
        names = ["obs", "action", "reward"] + (["state"] if self.state is not None else [])
        for name in names:
            x = getattr(self, name)
            if not np.issubdtype(x.dtype, np.floating):
                continue  # integer arrays (uint8 pixels) cannot hold NaN/inf
            bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
            if bad.any():
                return name, int(np.argmax(bad))
        return None

    def check_fits(self, layout: dict[str, Any], has_state: bool, where: str) -> None:
        """Raise :class:`DatasetError` (starting with ``where``) unless this episode fits a dataset
        of ``layout`` (``meta.json``'s) and has finite values."""
        lay = layout
        if tuple(self.obs.shape[1:]) != tuple(lay["obs_shape"]):
            raise DatasetError(f"{where}: obs rows have shape {tuple(self.obs.shape[1:])}, the dataset stores "
                               f"{tuple(lay['obs_shape'])}")
        if self.obs.dtype != np.dtype(lay["obs_dtype"]):
            raise DatasetError(f"{where}: obs dtype is {self.obs.dtype}, the dataset stores "
                               f"{np.dtype(lay['obs_dtype'])}")
        if lay.get("has_actions", True) is False and self.has_actions:
            raise DatasetError(f"{where}: the episode has actions but the dataset is action-free (it stores none); "
                               "append episode.without_actions()")
        if self.action.shape[1] != lay["action_dim"]:
            raise DatasetError(f"{where}: action has dimension {self.action.shape[1]}, the dataset stores "
                               f"{lay['action_dim']}")
        if has_state != (self.state is not None):
            raise DatasetError(f"{where}: the dataset {'stores' if has_state else 'has no'} state but the "
                               f"episode {'has none' if self.state is None else 'has one'}")
        if self.state is not None and self.state.shape[1] != lay["state_dim"]:
            raise DatasetError(f"{where}: state has dimension {self.state.shape[1]}, the dataset stores "
                               f"{lay['state_dim']}")
        bad = self.first_non_finite()
        if bad is not None:
            raise DatasetError(f"{where}: {bad[0]} contains NaN or inf at step {bad[1]}; refused")

    def equals(self, other: Episode) -> bool:
        """Bit-exact equality of every array (dtypes may differ only where values are equal)."""
        if (self.state is None) != (other.state is None):
            return False
        pairs = [
            (self.obs, other.obs),
            (self.action, other.action),
            (self.reward, other.reward),
            (self.terminated, other.terminated),
            (self.truncated, other.truncated),
        ]
        if self.state is not None:
            pairs.append((self.state, other.state))
        return self.seed == other.seed and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in pairs
        )
