"""MPCAgent: encode the history, plan, execute the first actions, re-observe, repeat.

The agent works at two time scales. The env steps every call of :meth:`MPCAgent.act`; the model
steps every ``frameskip`` env steps (one model action = ``frameskip`` concatenated env actions,
docs/conventions.md). Every ``frameskip`` env steps the current observation becomes a model
frame: it is encoded once and appended to a history of the last ``h`` latents, together with the
model action that led to it. Every ``receding * frameskip`` env steps the agent replans:
a plan of ``horizon`` normalized model actions, warm-started from the previous plan shifted by the
``receding`` executed model steps; its first ``receding`` model actions are denormalized, split
into env actions and queued.

Real time (``decision_ms``): each decision gets that many milliseconds of wall clock, counted from
the observation's arrival in :meth:`MPCAgent.act`. The planner is handed the deadline and iterates
until it is spent (anytime; at least one iteration). A decision that still overruns is too late for
the env, which does not wait: the actions taken are the previous plan's next ones (the shifted plan
the agent keeps as the warm start; the mean action before any plan exists), the late plan becomes
the next warm start, and the overrun is counted (``overruns`` of ``decisions``).

No peeking, by construction: the agent receives observations (numpy arrays) and a goal
observation only. It holds no env, and its planner sees nothing but an objective over action
sequences that closes over the model, the latent history and the goal latent. Success and true
states exist only in the evaluation code that drives the env.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from forethought.data.normalization import Normalizer
from forethought.models.protocols import LatentWorldModel
from forethought.planning.objectives import LatentGoalObjective, ObjectiveFactory
from forethought.planning.protocols import Planner, PlanResult


RESERVE = 0.05  # fraction of a real-time budget kept for the work after planning


class FrameMonitor(Protocol):
    """Watches the model frames the agent sees (e.g. :class:`forethought.surprise.SurpriseMonitor`)."""

    def reset(self) -> None: ...

    def observe(self, z: Tensor, action: Tensor | None) -> str:
        """``z (B, D)`` the new frame's latent, ``action (B, A)`` the normalized model action that led
        to it (``None`` at the first frame) -> ``"continue"`` or ``"replan"`` (drop queued actions)."""
        ...


WarmStart = Callable[[Tensor, "Tensor | None", Tensor, int], Tensor]
"""``warm_start(z_hist (B, L, D), a_hist (B, L-1, A) | None, goal_z (B, D), horizon) -> (B, H, A)`` normalized actions."""


class MPCAgent:
    """Receding-horizon planning agent over ``B`` episodes at once.

    Args:
        model: a trained :class:`~forethought.models.WorldModel` (put in eval mode here).
        planner: any :class:`~forethought.planning.protocols.Planner`; one with a
            ``condition(z_hist, a_hist, goal_z)`` method (SSR, CEM / MPPI with a proposal) is given the
            decision's latents before every ``plan``.
        action_space: the env's bounded ``gymnasium.spaces.Box`` of env actions ``(env_action_dim,)``.
        objective: how candidates are imagined and scored, an
            :class:`~forethought.planning.objectives.ObjectiveFactory`; default
            ``LatentGoalObjective(model)`` (KV-cached float32 rollout, summed L2 distance to the goal
            latent). ``LatentGoalObjective(model, bf16=True, compile=True)`` for speed,
            ``forethought.speculative.SpeculativeObjective(model, draft)`` for speculative rollouts.
        horizon: planned model steps ``H``.
        receding: model steps executed per decision (``1 <= receding <= horizon``).
        normalizer: the action statistics; default ``model.normalization`` (the training set's).
        device: where the model runs; default the model's device.
        monitor: watches every model frame, e.g. a :class:`forethought.surprise.SurpriseMonitor`;
            when it answers ``"replan"`` the queued actions are dropped and the agent plans now.

    The frameskip (env steps per model action) is ``model.config.frameskip``; a model saved before
    it was stored gets ``model.action_dim // env_action_dim``.

    ``agent.warm_start`` (default ``None``): a :data:`WarmStart` whose plan is the planner's starting plan at
    every decision instead of the shifted previous plan, e.g. a policy's imagined plan
    (:class:`forethought.policies.ImaginationWarmStart`); its time counts in ``decision_times``.

    Set ``agent.decision_ms`` (default ``None``: no budget) to give every decision a real-time budget
    in milliseconds (module docstring, "Real time"); ``agent.overruns`` of ``agent.decisions`` count
    the decisions that missed it.
    """

    def __init__(self, model: LatentWorldModel, planner: Planner, *, action_space: Any,
                 objective: ObjectiveFactory | None = None, horizon: int = 5, receding: int = 1,
                 normalizer: Normalizer | None = None, device: str | torch.device | None = None,
                 monitor: FrameMonitor | None = None) -> None:
        if not 1 <= receding <= horizon:
            raise ValueError(f"need 1 <= receding <= horizon, got receding={receding}, horizon={horizon}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.planner, self.horizon, self.receding = planner, int(horizon), int(receding)
        self.objective = objective if objective is not None else LatentGoalObjective(self.model)
        low, high = np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64)
        if low.ndim != 1 or not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"action_space must be a bounded 1-D Box, got low={low}, high={high}")
        self.env_low, self.env_high = low, high
        self.env_action_dim = low.shape[0]
        self.frameskip = model_frameskip(model, self.env_action_dim)
        if normalizer is None:
            if model.normalization is None:
                raise ValueError("the model carries no normalization statistics; pass normalizer=Normalizer(...)")
            normalizer = Normalizer.from_dict(model.normalization)
        if normalizer.action.dim != self.env_action_dim:
            raise ValueError(f"normalizer has {normalizer.action.dim} action dims, the env {self.env_action_dim}")
        self.normalizer = normalizer
        # The env's box in normalized model-action space (the normalization is affine per dim).
        k = self.frameskip
        self.low = torch.as_tensor(normalizer.normalize_action(np.tile(low, k)), dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(normalizer.normalize_action(np.tile(high, k)), dtype=torch.float32, device=self.device)
        self.decision_times: list[float] = []
        self.last_result: PlanResult | None = None
        self.monitor = monitor
        self.warm_start: WarmStart | None = None
        self.decision_ms: float | None = None  # real-time budget per decision (ms); None: none
        self.decisions = 0  # since construction (resets keep counting)
        self.overruns = 0  # decisions that missed decision_ms: the previous plan's actions were taken
        self._goal_z: Tensor | None = None
        # State dims the model senses directly (proprioception); the driver passes them with each obs.
        self.proprio_dims: tuple[int, ...] | None = getattr(model.config, "proprio_dims", None)

    # ------------------------------------------------------------------ observations
    def _to_batch(self, obs: Any, what: str) -> tuple[Tensor, bool]:
        """numpy obs ``(B, *env_obs)`` or ``(*env_obs)`` -> model input ``(B, 1, *obs_shape)``."""
        if not isinstance(obs, np.ndarray):
            raise TypeError(f"{what} must be a numpy array (an observation), got {type(obs).__name__}")
        shape = self.model.config.obs_shape
        pixels = len(shape) == 3
        single = obs.ndim == len(shape)
        x = torch.as_tensor(obs[None] if single else obs, device=self.device)
        if pixels:
            if x.ndim != 4 or tuple(x.shape[-3:]) != (shape[1], shape[2], shape[0]) or x.dtype != torch.uint8:
                raise ValueError(f"{what} must be uint8 (B, {shape[1]}, {shape[2]}, {shape[0]}) or (H, W, C) pixels, "
                                 f"got {obs.dtype} {obs.shape}")
            x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        else:
            x = x.float()
        return x[:, None], single

    @torch.no_grad()  # not inference_mode: the gradient planner backpropagates through these latents
    def _encode(self, obs: Any, what: str, proprio: Any = None) -> tuple[Tensor, bool]:
        x, single = self._to_batch(obs, what)
        if self.proprio_dims is None:
            if proprio is not None:
                raise ValueError(f"{what}: this model takes no proprio (trained without --proprio-dims)")
            return self.model.encode(x)[:, 0], single  # (B, D)
        if proprio is None:
            raise ValueError(f"{what}: this model senses state dims {self.proprio_dims} (proprioception): "
                             f"pass their raw values with the observation")
        p = torch.as_tensor(np.asarray(proprio, np.float32), device=self.device).reshape(x.shape[0], 1, -1)
        return self.model.encode(x, self.model.normalize_proprio(p))[:, 0], single

    # ------------------------------------------------------------------ the loop
    def reset(self, goal_obs: np.ndarray, goal_proprio: np.ndarray | None = None) -> None:
        """Start new episodes toward ``goal_obs`` (``(B, H, W, C)`` uint8, or one ``(H, W, C)``).

        ``goal_proprio (B, P)``: the goal's sensed values, for a model with proprioception
        (``self.proprio_dims``; DINO-WM's goal is an image and its proprio). Clears the history,
        the queued actions, the warm start and ``decision_times``.
        """
        self._goal_z, _ = self._encode(goal_obs, "goal_obs", goal_proprio)
        B = self._goal_z.shape[0]
        self._latents: list[Tensor] = []  # model frames, each (B, D); at most h
        self._actions: list[Tensor] = []  # normalized model actions between them, each (B, A)
        self._executed: list[np.ndarray] = []  # env actions since the last model frame, each (B, env_dim)
        self._queue = np.zeros((B, 0, self.env_action_dim), np.float32)
        self._plan: Tensor | None = None
        self._steps = 0
        self.decision_times = []
        self.last_result = None
        if self.monitor is not None:
            self.monitor.reset()
        if callable(getattr(self.objective, "reset", None)):  # per-episode state: subgoals, a state objective's past
            self.objective.reset()

    def act(self, obs: np.ndarray, proprio: np.ndarray | None = None) -> np.ndarray:
        """One env action per episode for the observation ``obs`` (``(B, H, W, C)`` uint8 or one
        ``(H, W, C)``): ``(B, env_action_dim)`` float32 (``(env_action_dim,)`` for one obs).
        ``proprio (B, P)``: the sensed state dims, for a model with proprioception."""
        t_obs = time.perf_counter()  # a decision's real-time budget runs from here
        if self._goal_z is None:
            raise RuntimeError("call reset(goal_obs) before act(obs)")
        if not isinstance(obs, np.ndarray):
            raise TypeError(f"obs must be a numpy array (an observation), got {type(obs).__name__}")
        k, h = self.frameskip, self.model.history
        single = obs.ndim == len(self.model.config.obs_shape)
        if self._steps % k == 0:  # a model frame: encode it once, extend the history
            z, _ = self._encode(obs, "obs", proprio)
            if z.shape[0] != self._goal_z.shape[0]:
                raise ValueError(f"obs has batch {z.shape[0]} but reset() got {self._goal_z.shape[0]} goals")
            a_model = None
            if self._latents:  # the k env actions that led here form one model action
                a = np.concatenate(self._executed, axis=-1)  # (B, k * env_dim)
                a_model = torch.as_tensor(self.normalizer.normalize_action(a), device=self.device)
                self._actions.append(a_model)
                self._executed = []
            if self.monitor is not None and self.monitor.observe(z, a_model) == "replan":
                self._queue = self._queue[:, :0]  # plan again from this frame
            self._latents.append(z)
            self._latents = self._latents[-h:]  # invariant: len(actions) == len(latents) - 1
            self._actions = self._actions[len(self._actions) - len(self._latents) + 1 :]
        if self._queue.shape[1] == 0:
            self._decide(t_obs)
        action, self._queue = self._queue[:, 0], self._queue[:, 1:]
        self._executed.append(action)
        self._steps += 1
        return action[0] if single else action

    def set_goal(self, goal_obs: np.ndarray, goal_proprio: np.ndarray | None = None) -> None:
        """Change the goal of the running episodes (``(B, H, W, C)`` or one ``(H, W, C)`` uint8),
        keeping the history and the warm start; the next decision plans toward it."""
        if self._goal_z is None:
            raise RuntimeError("call reset(goal_obs) to start episodes; set_goal changes the goal of running ones")
        z, _ = self._encode(goal_obs, "goal_obs", goal_proprio)
        if z.shape != self._goal_z.shape:
            raise ValueError(f"goal_obs has batch {z.shape[0]}, the running episodes {self._goal_z.shape[0]}")
        self._goal_z = z

    def subgoal_images(self) -> np.ndarray | None:
        """What the objective is steering toward now, uint8 ``(B, H, W, C)``, when it says (a
        :class:`~forethought.agent.subgoals.SubgoalObjective`: its subgoals' dataset frames); else None."""
        view = getattr(self.objective, "subgoal_images", None)
        return view() if callable(view) else None

    def _decide(self, t0: float | None = None) -> None:
        """Plan from the current history; queue the first ``receding`` model actions as env actions.

        ``t0``: when the observation arrived (``time.perf_counter()``); the budget runs from there.
        """
        t0 = time.perf_counter() if t0 is None else t0
        B, H, A, r = self._goal_z.shape[0], self.horizon, self.model.action_dim, self.receding
        z_hist = torch.stack(self._latents, dim=1)  # (B, L, D)
        a_hist = torch.stack(self._actions, dim=1) if self._actions else None  # (B, L-1, A)
        objective = self.objective(z_hist, a_hist, self._goal_z)
        if self.warm_start is not None:  # a policy's plan (the planner evaluates it first)
            init = self.warm_start(z_hist, a_hist, self._goal_z, H).detach()
        elif self._plan is None:  # cold start: the mean normalized action
            init = torch.zeros(B, H, A, device=self.device)
        else:  # warm start: drop the executed steps, pad with the mean action
            init = torch.cat([self._plan[:, r:], torch.zeros(B, r, A, device=self.device)], dim=1)
        condition = getattr(self.planner, "condition", None)  # a planner that samples a proposal needs the context
        if condition is not None:
            condition(z_hist, a_hist, self._goal_z)
        if self.decision_ms is not None and not self.decision_ms > 0:
            raise ValueError(f"decision_ms must be > 0 milliseconds (or None for no budget), got {self.decision_ms}")
        budget = None if self.decision_ms is None else self.decision_ms / 1000.0
        anytime = budget is not None and "deadline" in inspect.signature(self.planner.plan).parameters
        # The planner stops RESERVE of the budget early: the agent still turns the plan into env actions.
        extra = {"deadline": t0 + (1.0 - RESERVE) * budget} if anytime else {}
        validate, self.model.validate_inputs = self.model.validate_inputs, False  # inputs built here
        try:
            result = self.planner.plan(objective, init, self.low, self.high, **extra)
        finally:
            self.model.validate_inputs = validate
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        late = budget is not None and time.perf_counter() - t0 > budget
        self.decisions += 1
        self.overruns += int(late)
        # The env does not wait for a late plan: it gets the previous plan's next actions (the
        # shifted plan, clamped as planned), and the late plan is kept as the next warm start.
        executed = init.clamp(self.low, self.high) if late else result.actions.detach()
        self._plan, self.last_result = result.actions.detach(), result
        first = self.normalizer.denormalize_action(executed[:, :r].float().cpu().numpy())  # (B, r, A)
        env = first.reshape(B, r * self.frameskip, self.env_action_dim)  # (B, r*k, env_dim), time-major per step
        self._queue = np.clip(env, self.env_low, self.env_high).astype(np.float32)
        self.decision_times.append(time.perf_counter() - t0)


def model_frameskip(model: LatentWorldModel, env_action_dim: int) -> int:
    """Env steps per model action: stored in the model config, inferred for configs that predate it."""
    stored = getattr(model.config, "frameskip", None)
    if stored is not None:
        if model.action_dim != stored * env_action_dim:
            raise ValueError(f"the model was trained on {model.action_dim // stored}-d env actions (frameskip {stored}), "
                             f"this env has {env_action_dim}: was the model trained on this env?")
        return int(stored)
    if model.action_dim % env_action_dim:
        raise ValueError(f"model action dim {model.action_dim} is not a multiple of the env action dim "
                         f"{env_action_dim}: was the model trained on this env?")
    return model.action_dim // env_action_dim
