"""The imagination policy (Dyna, Sutton 1991; Dreamer): a goal-conditioned policy trained only through a
frozen world model.

Training never steps an env and never reads a reward. A sample is a real history of ``h`` frames from
the dataset and a goal frame relabeled from the data (a later frame of the same episode, or a random
one); both are encoded by the world model's frozen encoder. The policy then acts in imagination: at
each of ``horizon`` steps it reads the last imagined latent and the goal latent, and the frozen
predictor rolls one step under its action (:func:`policy_rollout`, differentiable end to end). The loss

    cost   = sum_t mean_D (z_t - g)^2                      (the planner's latent goal cost, summed)
    + support_weight * mean_t |a_t outside the data's action range|^2
    + bc_weight * |pi(z_0, g) - a_data|^2   (on hindsight goals: the data's own action reaches them)

is the same objective MPC minimises, amortised into one forward pass per action. The support terms
keep the actions where the model was trained (a model is only trustworthy on the data's actions):
a hinge on the box the data's normalized actions span, and a behaviour-cloning pull toward the data's
action (TD3+BC's regularizer).

The policy's encoder is a copy of the world model's, kept frozen, so the policy acts alone from pixels
(its folder holds that copy) and lives in the model's latent space: :func:`policy_rollout` under
``torch.no_grad`` gives the planner a whole ``(B, H, A)`` plan to start from (warm start, see
:class:`ImaginationWarmStart`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.models.predictors import Predictor
from forethought.policies.goal_policy import GoalPolicy
from forethought.policies.hindsight import GoalSampling


@dataclass(frozen=True)
class ImaginationConfig:
    """Attributes:
        horizon: imagined model steps per sample.
        support_weight: weight of the hinge that keeps actions in the box the data's actions span.
        bc_weight: weight of the behaviour-cloning pull toward the data's action (hindsight goals only).
        p_random: fraction of goals drawn from random frames instead of the same episode's future.
    """

    horizon: int = 5
    support_weight: float = 1.0
    bc_weight: float = 0.1
    p_random: float = 0.2

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"--horizon must be >= 1 imagined model steps, got {self.horizon}")
        if self.support_weight < 0 or self.bc_weight < 0:
            raise ValueError(f"--support-weight and --bc-weight must be >= 0, got {self.support_weight}, {self.bc_weight}")
        if not 0.0 <= self.p_random < 1.0:
            raise ValueError(f"p_random must be in [0, 1), got {self.p_random}")

    def goals(self) -> dict[str, GoalSampling]:
        """Future goals about ``horizon`` model steps ahead (geometric, mean ``horizon``), some random."""
        discount = 1.0 - 1.0 / (self.horizon + 1)
        return {"goal": GoalSampling(p_future=1.0 - self.p_random, p_random=self.p_random, discount=discount)}


def policy_rollout(policy: GoalPolicy, predictor: Predictor, z_hist: Tensor, a_hist: Tensor | None,
                   goal_z: Tensor, horizon: int) -> tuple[Tensor, Tensor]:
    """Closed-loop imagination: the policy acts on each imagined latent, the predictor steps.

    Args:
        z_hist: ``(B, L, D)`` latents of the real history (the last ``h`` are used).
        a_hist: ``(B, L-1, A)`` normalized actions between them, or ``None`` (zeros, the mean action).
        goal_z: ``(B, D)``.
    Returns:
        ``actions (B, H, A)`` and ``latents (B, H, D)``: ``actions[:, t]`` taken from the latent before
        ``latents[:, t]``. Differentiable in the policy's parameters (call under ``no_grad`` to plan).
    """
    h = predictor.history
    zs = z_hist[:, -h:]
    n_past = zs.shape[1] - 1
    if a_hist is None or n_past == 0:
        past = z_hist.new_zeros(zs.shape[0], n_past, policy.action_dim)
    else:
        past = a_hist[:, a_hist.shape[1] - n_past:]
    actions, latents = [], []
    for _ in range(horizon):
        a = policy(zs[:, -1], goal_z)  # (B, A)
        window = torch.cat([past, a[:, None]], dim=1)  # (B, len(zs), A): window[:, -1] leaves zs[:, -1]
        z_next = predictor.predict_sequence(zs, window)[:, -1]  # (B, D)
        actions.append(a)
        latents.append(z_next)
        zs = torch.cat([zs, z_next[:, None]], dim=1)[:, -h:]
        past = window[:, window.shape[1] - (zs.shape[1] - 1):]
    return torch.stack(actions, dim=1), torch.stack(latents, dim=1)


def action_box(normalizer: Normalizer, frameskip: int) -> tuple[Tensor, Tensor]:
    """The box ``(A,)`` that the data's normalized model actions span (the env-action range, tiled)."""
    stats = normalizer.action
    low = torch.as_tensor(((stats.min - stats.mean) / stats.std), dtype=torch.float32).repeat(frameskip)
    high = torch.as_tensor(((stats.max - stats.mean) / stats.std), dtype=torch.float32).repeat(frameskip)
    return low, high


class ImaginationObjective(nn.Module):
    """The trainer's objective for the imagination policy (module docstring).

    ``batch``: ``obs (B, h+1, ...)`` (frames ``0..h-1`` the real history), ``action (B, h, A)`` raw,
    ``goal (B, ...)`` and ``goal_steps (B,)`` (> 0: a later frame of the same episode).
    The world model's encoder (the policy's frozen copy) and predictor stay frozen and in eval mode.
    """

    def __init__(self, policy: GoalPolicy, predictor: Predictor, normalizer: Normalizer, cfg: ImaginationConfig) -> None:
        super().__init__()
        self.policy, self.predictor, self.normalizer, self.cfg = policy, predictor, normalizer, cfg
        self.policy.encoder.requires_grad_(False)
        self.predictor.requires_grad_(False)
        low, high = action_box(normalizer, policy.config.frameskip)
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)

    def train(self, mode: bool = True) -> ImaginationObjective:
        super().train(mode)
        self.policy.encoder.eval()  # frozen: BatchNorm keeps the world model's statistics
        self.predictor.eval()
        return self

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.cfg
        obs = batch["obs"]
        h = obs.shape[1] - 1
        a_data = self.normalizer.normalize_action(batch["action"].float())  # (B, h, A)
        with torch.no_grad():
            z = self.policy.encode(torch.cat([obs[:, :h], batch["goal"][:, None]], dim=1))  # (B, h+1, D)
        z_hist, goal_z = z[:, :h], z[:, h]
        actions, latents = policy_rollout(self.policy, self.predictor, z_hist, a_data[:, : h - 1], goal_z, cfg.horizon)
        cost = (latents - goal_z[:, None]).pow(2).mean(-1).sum(-1).mean()  # the planner's l2/sum cost
        outside = (self.low - actions).clamp_min(0) + (actions - self.high).clamp_min(0)
        support = outside.pow(2).mean()
        hindsight = (batch["goal_steps"] > 0).float()
        bc = ((actions[:, 0] - a_data[:, h - 1]).pow(2).mean(-1) * hindsight).sum() / hindsight.sum().clamp_min(1.0)
        with torch.no_grad():
            stay = (z_hist[:, -1] - goal_z).pow(2).mean(-1).mean() * cfg.horizon  # cost of standing still
        loss = cost + cfg.support_weight * support + cfg.bc_weight * bc
        return {"loss": loss, "imagined_cost": cost.detach(), "support": support.detach(), "bc_mse": bc.detach(),
                "still_cost": stay}


class ImaginationWarmStart:
    """A planner's starting plan from a policy that lives in the world model's latent space.

    ``proposal(z_hist (B, L, D), a_hist (B, L-1, A) | None, goal_z (B, D), horizon) -> (B, H, A)``:
    the policy's closed-loop imagined plan (:func:`policy_rollout`), used by
    :class:`~forethought.agent.MPCAgent` as the planner's initial mean (CEM evaluates it as candidate 0,
    so the plan found is never worse, in imagination, than the policy's).
    """

    def __init__(self, policy: GoalPolicy, model: nn.Module, policy_dir: str = "the policy") -> None:
        check_same_latents(policy, model, policy_dir)
        self.policy, self.predictor = policy, model.predictor

    @torch.no_grad()
    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor, horizon: int) -> Tensor:
        actions, _ = policy_rollout(self.policy, self.predictor, z_hist, a_hist, goal_z, horizon)
        return actions


def check_same_latents(policy: GoalPolicy, model: nn.Module, policy_dir: str = "the policy") -> None:
    """Refuse a policy that does not act on ``model``'s latents (its encoder must be a copy of the model's)."""
    if policy.config.latent_space != "world_model":
        raise ValueError(f"{policy_dir}: a warm-start policy must act on the world model's latents; this one was trained "
                         f"with {policy.config.method} and its own encoder. Train one with `forethought train-policy "
                         "--method imagination --model RUN`")
    mine, theirs = policy.encoder.state_dict(), model.encoder.state_dict()
    same = mine.keys() == theirs.keys() and all(
        mine[k].shape == theirs[k].shape and torch.equal(mine[k].cpu(), theirs[k].cpu()) for k in mine)
    if not same:
        raise ValueError(f"{policy_dir}: the policy was trained through another world model "
                         f"({policy.config.world_model}); its latents are not this model's. Train it through this "
                         "model (`forethought train-policy --method imagination --model RUN`)")
