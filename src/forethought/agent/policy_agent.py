"""PolicyAgent: a goal-conditioned policy acting alone, one forward pass per model step.

The same interface as :class:`~forethought.agent.MPCAgent` (``reset(goal_obs)``, ``act(obs)``,
``decision_times``), so the evaluation protocol runs it unchanged: same tasks, budget, success from
the true state, reports and GIFs. Every ``frameskip`` env steps the current observation and the goal
(encoded once at ``reset``) go through the policy; its normalized model action is denormalized with
the statistics stored in the policy folder, split into ``frameskip`` env actions, clipped to the
env's box and queued. No planner, no world model, no peeking: it sees observations and the goal image.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from forethought.data.normalization import Normalizer
from forethought.policies.goal_policy import GoalPolicy, check_policy_env


class PolicyAgent:
    """Acts with ``policy`` on ``B`` episodes at once.

    Args:
        policy: a trained :class:`~forethought.policies.GoalPolicy` (put in eval mode here).
        action_space: the env's bounded ``gymnasium.spaces.Box`` of env actions.
        normalizer: the action statistics; default ``policy.normalization`` (the training set's).
        device: where the policy runs; default the policy's device.
    """

    def __init__(self, policy: GoalPolicy, *, action_space: Any, normalizer: Normalizer | None = None,
                 device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else next(policy.parameters()).device
        self.policy = policy.to(self.device).eval()
        low, high = np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64)
        if low.ndim != 1 or not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"action_space must be a bounded 1-D Box, got low={low}, high={high}")
        check_policy_env(policy, low.shape[0])
        self.env_low, self.env_high, self.env_action_dim = low, high, low.shape[0]
        self.frameskip = policy.config.frameskip
        if normalizer is None:
            if policy.normalization is None:
                raise ValueError("the policy carries no normalization statistics; pass normalizer=Normalizer(...)")
            normalizer = Normalizer.from_dict(policy.normalization)
        self.normalizer = normalizer
        self.decision_times: list[float] = []
        self._goal_z: Tensor | None = None

    def _encode(self, obs: np.ndarray, what: str) -> tuple[Tensor, bool]:
        """numpy ``(B, *env_obs)`` or one ``(*env_obs)`` -> latents ``(B, D)``; pixels ``(H, W, C)`` -> ``(C, H, W)``."""
        if not isinstance(obs, np.ndarray):
            raise TypeError(f"{what} must be a numpy array (an observation), got {type(obs).__name__}")
        shape = self.policy.config.obs_shape
        env_shape = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
        single = obs.shape == env_shape
        x = torch.as_tensor(obs[None] if single else obs, device=self.device)
        if tuple(x.shape[1:]) != env_shape:
            raise ValueError(f"{what} must be (B, {', '.join(map(str, env_shape))}) or one {env_shape} observation, "
                             f"got {obs.dtype} {obs.shape}")
        x = x.permute(0, 3, 1, 2) if len(shape) == 3 else x.float()
        with torch.inference_mode():
            return self.policy.encode(x[:, None])[:, 0], single

    def reset(self, goal_obs: np.ndarray) -> None:
        """Start new episodes toward ``goal_obs`` (``(B, H, W, C)`` uint8, or one); clears ``decision_times``."""
        self._goal_z, _ = self._encode(goal_obs, "goal_obs")
        self._queue = np.zeros((self._goal_z.shape[0], 0, self.env_action_dim), np.float32)
        self.decision_times = []

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One env action per episode: ``(B, env_action_dim)`` float32 (``(env_action_dim,)`` for one obs)."""
        if self._goal_z is None:
            raise RuntimeError("call reset(goal_obs) before act(obs)")
        single = False
        if self._queue.shape[1] == 0:
            single = self._decide(obs)
        else:
            single = isinstance(obs, np.ndarray) and obs.shape == self._env_obs_shape()
        action, self._queue = self._queue[:, 0], self._queue[:, 1:]
        return action[0] if single else action

    def _env_obs_shape(self) -> tuple[int, ...]:
        shape = self.policy.config.obs_shape
        return (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)

    def _decide(self, obs: np.ndarray) -> bool:
        t0 = time.perf_counter()
        z, single = self._encode(obs, "obs")
        if z.shape[0] != self._goal_z.shape[0]:
            raise ValueError(f"obs has batch {z.shape[0]} but reset() got {self._goal_z.shape[0]} goals")
        with torch.inference_mode():
            a = self.policy(z, self._goal_z)  # (B, k * env_dim), normalized
        env = self.normalizer.denormalize_action(a.float().cpu().numpy()).reshape(z.shape[0], self.frameskip,
                                                                                 self.env_action_dim)
        self._queue = np.clip(env, self.env_low, self.env_high).astype(np.float32)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.decision_times.append(time.perf_counter() - t0)
        return single
