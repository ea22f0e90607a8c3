"""GCBC: goal-conditioned behaviour cloning with hindsight goals (Ghosh et al. 2019; OGBench's GCBC).

The action the data took from frame ``o_t`` is, in hindsight, a way to reach any later frame ``g`` of
the same episode. GCBC regresses the policy's action on it:
``loss = mean_A (pi(enc(o_t), enc(g)) - a_t)^2`` with ``a_t`` the normalized model action
(``frameskip`` env actions) and ``g`` drawn uniformly from the rest of the episode (``--goal-discount d``: ``m`` model
steps ahead, geometric, ``P(m) ~ d^(m-1)``)
(:class:`~forethought.policies.hindsight.GoalSampling`). The encoder is trained with the head.
One loss term, no hyperparameter beyond the network and the optimizer: the simplest method of the
comparison. A deterministic policy fits the mean action, which is what a goal-reaching agent needs
when the data's actions toward a goal are unimodal (TwoRoom's smooth walks).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.policies.goal_policy import GoalPolicy
from forethought.policies.hindsight import GoalSampling

def gcbc_goals(discount: float | None = None) -> dict[str, GoalSampling]:
    """GCBC's hindsight goals: a later frame of the episode, uniform (``None``) or geometric with ``discount``."""
    return {"goal": GoalSampling(p_future=1.0, discount=discount)}


class GCBCObjective(nn.Module):
    """The trainer's objective (:class:`~forethought.training.trainer.TrainingObjective`) for GCBC.

    ``batch``: ``obs (B, T, ...)`` windows whose frame ``T-2`` is the current one, ``action (B, T-1, A)``
    raw model actions (the last takes the current frame to the next), ``goal (B, ...)`` hindsight goals.
    """

    def __init__(self, policy: GoalPolicy, normalizer: Normalizer) -> None:
        super().__init__()
        self.policy = policy
        self.normalizer = normalizer

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        obs, goal = batch["obs"][:, -2], batch["goal"]
        target = self.normalizer.normalize_action(batch["action"][:, -1].float())  # (B, A)
        z = self.policy.encode(torch.stack([obs, goal], dim=1))  # (B, 2, D): one encoder pass, one BatchNorm batch
        pred = self.policy(z[:, 0], z[:, 1])
        loss = (pred - target).pow(2).mean()
        return {"loss": loss, "bc_mse": loss.detach()}

