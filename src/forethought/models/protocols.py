"""The world-model interface every consumer (planners' costs, the agent) relies on.

A planner never sees this: it sees a cost that closes over a model, a history and a goal
(DESIGN.md). :class:`~forethought.models.world_model.WorldModel` implements it; so can a
foundation-encoder model or a stochastic one later.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class LatentWorldModel(Protocol):
    """Shapes: obs ``(B, T, *obs_shape)``, actions ``(B, T, A)`` normalized, latents ``(B, T, D)``."""

    latent_dim: int
    action_dim: int
    history: int

    def encode(self, obs: Tensor) -> Tensor:
        """``(B, T, ...) -> (B, T, D)``."""
        ...

    def predict(self, z: Tensor, actions: Tensor) -> Tensor:
        """``(B, h, D), (B, h, A) -> (B, D)``: the latent after the last history step."""
        ...

    def rollout(self, z: Tensor, actions: Tensor, past_actions: Tensor | None = None) -> Tensor:
        """``(B, h, D), (B, H, A) [, (B, h-1, A)] -> (B, H, D)``."""
        ...

    def surprise(self, obs: Tensor, actions: Tensor) -> Tensor:
        """``(B, T, ...), (B, T-1, A) -> (B, T-1)``: per-step latent prediction error."""
        ...
