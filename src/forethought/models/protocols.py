"""The world-model interface its consumers (the agent, objectives, surprise, speculative) rely on.

A planner never sees this: it sees an objective that closes over a model, a history and a goal
(docs/design.md). :class:`~forethought.models.world_model.WorldModel` implements it; a model with
a frozen foundation encoder, an ensemble or a stochastic predictor can too. It describes what the
consumers actually use (checked by ``tests/models/test_world_model.py``), nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@runtime_checkable
class LatentWorldModel(Protocol):
    """Shapes: obs ``(B, T, *obs_shape)``, actions ``(B, T, A)`` normalized, latents ``(B, T, D)``.

    Attributes:
        config: the architecture; consumers read ``obs_shape`` and ``frameskip`` from it.
        normalization: the training set's ``Normalizer.to_dict()`` (``None`` if unknown).
        predictor: the dynamics; objectives roll it out (``history``, ``predict_sequence``, and
            for the fast path ``weights()`` / ``rollout_candidates``).
        validate_inputs: check shapes and NaN on every public call (a planner that built its own
            inputs may switch it off around its hot loop).
    """

    config: Any
    normalization: dict[str, Any] | None
    predictor: nn.Module
    validate_inputs: bool

    @property
    def latent_dim(self) -> int: ...

    @property
    def action_dim(self) -> int:
        """``frameskip * env_action_dim``."""
        ...

    @property
    def history(self) -> int: ...

    def encode(self, obs: Tensor) -> Tensor:
        """``(B, T, ...) -> (B, T, D)``."""
        ...

    def predict_sequence(self, z: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced ``(B, T, D), (B, T, A) -> (B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        ...

    def rollout(self, z: Tensor, actions: Tensor, past_actions: Tensor | None = None) -> Tensor:
        """``(B, L, D), (B, H, A) [, (B, L-1, A)] -> (B, H, D)``."""
        ...

    def rollout_candidates(self, z: Tensor, actions: Tensor, past_actions: Tensor | None = None,
                           fast: bool = True) -> Tensor:
        """``(B, L, D), (B, N, H, A) [, (B, L-1, A)] -> (B, N, H, D)``."""
        ...

    def surprise(self, obs: Tensor, actions: Tensor) -> Tensor:
        """``(B, T, ...), (B, T-1, A) -> (B, T-1)``: per-step latent prediction error."""
        ...

    # The nn.Module methods consumers call.
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def eval(self) -> Any: ...

