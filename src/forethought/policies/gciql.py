"""GCIQL and GCIVL: goal-conditioned implicit Q-learning and its value-only variant, with AWR extraction.

Offline, reward-free data become a goal-reaching problem by hindsight relabeling (Park et al. 2024,
OGBench; Kostrikov et al. 2022, IQL): for a goal ``g`` the reward is ``r = 0`` when the current frame
is the goal (the same frame of the data, or an identical one: a terminal) and ``-1`` otherwise, so with discount ``gamma`` the optimal value is
``V*(s, g) = -(1 - gamma^d) / (1 - gamma)`` for ``d`` model steps to the goal: values order states by
their distance to the goal. Value goals mix the current frame (``p_current``), a later frame of the
episode at a geometric offset and a random frame (:func:`value_goals`); the actor's goals are later
frames of the same episode, uniformly.

* **GCIQL** (``value_only=False``): ``Q(s, a, g)`` (two heads, target copies) regresses
  ``r + gamma * mask * V(s', g)``; ``V(s, g)`` is the ``expectile`` of the target ``min Q`` (expectile
  regression: an in-sample max, no out-of-data action is ever queried).
* **GCIVL** (``value_only=True``): ``V(s, g)`` (two heads, target copies) regresses
  ``r + gamma * mask * V_target(s', g)`` with the expectile loss, no ``Q`` at all.

Policy extraction is advantage-weighted regression (AWR, Peng et al. 2019) of the deterministic actor
onto the data's action: ``mean(exp(alpha * A) * |pi(s, g) - a|^2)`` with the weight clipped at
``max_weight`` and ``A = Q(s, a, g) - V(s, g)`` (GCIQL) or ``V(s', g) - V(s, g)`` (GCIVL). The
encoder is the policy's (the world model's architecture), shared by the actor and the value heads and
trained by both losses; targets are computed on its detached features.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.policies.goal_policy import GoalPolicy, mlp, pair_features
from forethought.policies.hindsight import GoalSampling


@dataclass(frozen=True)
class GCIQLConfig:
    """Value learning and extraction settings (OGBench's defaults, discount per model step).

    Attributes:
        discount: ``gamma`` per model step (0.95: values saturate about 20 model steps away).
        expectile: ``tau`` of the expectile loss (0.5 = mean, SARSA-like; -> 1 = max over data actions).
        temperature: AWR's ``alpha``: higher copies only the best actions.
        max_weight: clip of the AWR weight ``exp(alpha * A)``.
        target_tau: Polyak rate of the target heads per step.
        value_only: GCIVL (value only) instead of GCIQL.
        hidden, depth: the value (and Q) heads' MLP.
        p_current, p_future, p_random: the value goals' sources (:class:`GoalSampling`).
    """

    discount: float = 0.95
    expectile: float = 0.9
    temperature: float = 3.0
    max_weight: float = 100.0
    target_tau: float = 0.005
    value_only: bool = False
    hidden: int = 256
    depth: int = 2
    p_current: float = 0.2
    p_future: float = 0.5
    p_random: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")
        if not 0.5 <= self.expectile < 1.0:
            raise ValueError(f"--expectile must be in [0.5, 1), got {self.expectile}")
        if not (self.temperature >= 0 and self.max_weight > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"--temperature must be >= 0 and max_weight > 0, got {self.temperature}, {self.max_weight}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ValueError(f"target_tau must be in (0, 1], got {self.target_tau}")
        GoalSampling(self.p_current, self.p_future, self.p_random, self.discount)  # checks the probabilities


def value_goals(cfg: GCIQLConfig) -> dict[str, GoalSampling]:
    """The dataset's goal samplers: ``goal`` for the values, ``actor_goal`` for the policy."""
    return {"goal": GoalSampling(cfg.p_current, cfg.p_future, cfg.p_random, discount=cfg.discount),
            "actor_goal": GoalSampling(p_future=1.0)}


class GoalValue(nn.Module):
    """``heads`` MLPs on ``[z, g, g - z]`` (and an action): ``(B, D), (B, D)[, (B, A)] -> (heads, B)``."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: int, depth: int, heads: int = 2) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.heads = nn.ModuleList(mlp(3 * latent_dim + action_dim, hidden, depth, 1) for _ in range(heads))

    def forward(self, z: Tensor, goal_z: Tensor, action: Tensor | None = None) -> Tensor:
        x = pair_features(z, goal_z)
        if self.action_dim:
            x = torch.cat([x, action], dim=-1)
        return torch.stack([head(x)[:, 0] for head in self.heads])


def expectile_loss(adv: Tensor, diff: Tensor, expectile: float) -> Tensor:
    """``|tau - 1(adv < 0)| * diff^2``, elementwise (IQL's asymmetric L2)."""
    weight = torch.where(adv >= 0, expectile, 1.0 - expectile)
    return weight * diff.pow(2)


class GCIQLObjective(nn.Module):
    """The trainer's objective for GCIQL / GCIVL (module docstring).

    ``batch``: ``obs (B, T, ...)`` (frame ``T-2`` current, ``T-1`` next), ``action (B, T-1, A)`` raw,
    ``goal``/``goal_steps`` value goals, ``actor_goal`` the actor's goals.
    """

    def __init__(self, policy: GoalPolicy, normalizer: Normalizer, cfg: GCIQLConfig) -> None:
        super().__init__()
        self.policy, self.normalizer, self.cfg = policy, normalizer, cfg
        D, A = policy.latent_dim, policy.action_dim
        self.value = GoalValue(D, 0, cfg.hidden, cfg.depth, heads=2 if cfg.value_only else 1)
        self.critic = None if cfg.value_only else GoalValue(D, A, cfg.hidden, cfg.depth, heads=2)
        self.target = copy.deepcopy(self.value if cfg.value_only else self.critic)
        self.target.requires_grad_(False)

    def values(self, z: Tensor, goal_z: Tensor) -> Tensor:
        """``V(s, g)`` ``(B,)``: the mean over value heads."""
        return self.value(z, goal_z).mean(0)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.cfg
        obs = batch["obs"]
        a = self.normalizer.normalize_action(batch["action"][:, -1].float())  # (B, A)
        z = self.policy.encode(torch.stack([obs[:, -2], obs[:, -1], batch["goal"], batch["actor_goal"]], dim=1))
        zc, zn, zg, za = z.unbind(1)  # current, next, value goal, actor goal: (B, D) each
        # Reached: the goal is the current frame, by index or by content (a walk that stays put or comes back
        # shows the same frame: labelling it "not reached" would contradict the index-equal samples).
        same = (obs[:, -2] == batch["goal"]).flatten(1).all(1)
        reached = ((batch["goal_steps"] == 0) | same).float()
        reward, mask = reached - 1.0, 1.0 - reached
        terms: dict[str, Tensor] = {}
        if cfg.value_only:  # GCIVL
            with torch.no_grad():
                next_v = self.target(zn.detach(), zg.detach())  # (2, B)
                q = reward + cfg.discount * mask * next_v  # per head
                adv = q.min(0).values - self.target(zc.detach(), zg.detach()).mean(0)
            v = self.value(zc, zg)
            value_loss = expectile_loss(adv, q - v, cfg.expectile).mean(1).sum()
            with torch.no_grad():
                actor_adv = self.values(zn, za) - self.values(zc, za)
            terms["value_loss"] = value_loss
        else:  # GCIQL
            with torch.no_grad():
                q_target = self.target(zc.detach(), zg.detach(), a).min(0).values
                next_v = self.value(zn.detach(), zg.detach())[0]
            v = self.value(zc, zg)[0]
            value_loss = expectile_loss(q_target - v, q_target - v, cfg.expectile).mean()
            q = self.critic(zc, zg, a)  # (2, B)
            critic_loss = (q - (reward + cfg.discount * mask * next_v)).pow(2).mean(1).sum()
            with torch.no_grad():
                actor_adv = self.critic(zc, za, a).min(0).values - self.value(zc, za)[0]
            terms.update(value_loss=value_loss, critic_loss=critic_loss)
            value_loss = value_loss + critic_loss
        weight = torch.exp(cfg.temperature * actor_adv).clamp(max=cfg.max_weight)
        pred = self.policy(zc, za)
        actor_loss = (weight * (pred - a).pow(2).mean(-1)).mean()
        terms.update(actor_loss=actor_loss, v_mean=v.detach().mean(), adv_mean=actor_adv.mean(),
                     awr_weight=weight.mean(), bc_mse=(pred.detach() - a).pow(2).mean())
        return {"loss": value_loss + actor_loss, **terms}

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Polyak-average the target heads toward the online ones."""
        online = self.value if self.cfg.value_only else self.critic
        for t, p in zip(self.target.parameters(), online.parameters()):
            t.lerp_(p, self.cfg.target_tau)
