"""GoalPolicy: a goal-conditioned policy ``(observation, goal observation) -> model action`` in one pass.

The network every method trains (GCBC, GCIQL/GCIVL, the imagination policy): an encoder of the
world model's architecture (:class:`~forethought.models.encoders.Encoder`, same presets) maps the
current frame and the goal frame to latents ``z, g (B, D)``; an MLP head maps ``[z, g, g - z]`` to
one normalized model action ``(B, A)``, ``A = frameskip * env_action_dim`` (docs/conventions.md).
The action statistics are the dataset's (``Normalizer``), stored beside the weights as for a world
model; the agent denormalizes and splits the model action into ``frameskip`` env actions.

``latent_space`` says where the encoder comes from: ``"own"`` (trained with the policy, the
model-free methods) or ``"world_model"`` (a frozen copy of a world model's encoder, the imagination
policy: its latents are the model's, so it can also propose plans to the model's planner).

Saved as a folder like a world model (:mod:`forethought.models.serialization`): ``model.safetensors``,
``config.json`` (model type ``forethought.GoalPolicy``) and ``normalization.json``. Never pickle.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forethought._schema import from_json_dict
from forethought.models.encoders import Encoder, EncoderConfig
from forethought.models.serialization import open_model_folder, write_model_folder
from forethought.policies.config import METHODS

POLICY_TYPE = "forethought.GoalPolicy"
LATENT_SPACES = ("own", "world_model")
FIX_POLICY = ("Copy the policy folder again from its source, or write it again (`forethought train-policy`, or "
              "GoalPolicy.save_pretrained)")


@dataclass(frozen=True)
class GoalPolicyConfig:
    """Everything needed to rebuild a :class:`GoalPolicy` (saved in ``config.json``).

    Attributes:
        obs_shape: ``(C, H, W)`` pixels or ``(S,)`` state vectors, as the world model's.
        action_dim: model action dimension ``A = frameskip * env_action_dim``.
        frameskip: env steps per model action.
        env_id: the environment the training data came from (``None`` if unknown).
        method: how it was trained: ``gcbc``, ``gciql``, ``gcivl`` or ``imagination``.
        latent_dim: encoder output ``D``.
        encoder: the encoder architecture (a world model preset's).
        hidden: width of the action head's hidden layers.
        depth: hidden layers of the action head.
        latent_space: ``"own"`` (encoder trained with the policy) or ``"world_model"`` (a frozen copy
            of the world model's encoder: the policy acts on that model's latents).
        world_model: the world model folder the policy was trained through (a record), or ``None``.
    """

    obs_shape: tuple[int, ...]
    action_dim: int
    frameskip: int
    env_id: str | None = None
    method: str = "gcbc"
    latent_dim: int = 128
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    hidden: int = 256
    depth: int = 2
    latent_space: str = "own"
    world_model: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_shape", tuple(int(s) for s in self.obs_shape))
        if len(self.obs_shape) not in (1, 3) or min(self.obs_shape) < 1:
            raise ValueError(f"obs_shape must be (C, H, W) for pixels or (S,) for states, got {self.obs_shape}")
        if self.frameskip < 1 or self.action_dim < 1 or self.action_dim % self.frameskip:
            raise ValueError(f"need frameskip >= 1 dividing action_dim >= 1, got frameskip={self.frameskip}, "
                             f"action_dim={self.action_dim}")
        if self.method not in METHODS:
            raise ValueError(f"Unknown policy method {self.method!r}; available: {', '.join(METHODS)}")
        if self.latent_space not in LATENT_SPACES:
            raise ValueError(f"latent_space must be one of {', '.join(LATENT_SPACES)}, got {self.latent_space!r}")
        if min(self.latent_dim, self.hidden, self.depth) < 1:
            raise ValueError(f"latent_dim, hidden and depth must be >= 1, got {self.latent_dim}, {self.hidden}, "
                             f"{self.depth}")
        if (len(self.obs_shape) == 3) == (self.encoder.kind == "mlp"):
            raise ValueError(f"obs_shape {self.obs_shape} needs encoder kind {'cnn or vit' if len(self.obs_shape) == 3 else 'mlp'}, "
                             f"got {self.encoder.kind!r}")

    @property
    def env_action_dim(self) -> int:
        return self.action_dim // self.frameskip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = "") -> GoalPolicyConfig:
        """Inverse of :meth:`to_dict`, every field type-checked (:func:`forethought._schema.from_json_dict`)."""
        return from_json_dict(cls, d, source=source, written_by=written_by, fix=fix)


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    """``depth`` x (Linear, LayerNorm, GELU) then Linear: ``(N, in_dim) -> (N, out_dim)``."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU()]
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def pair_features(z: Tensor, goal_z: Tensor) -> Tensor:
    """``[z, g, g - z]`` ``(..., 3D)``: the difference makes "how far, which way" one linear map away."""
    return torch.cat([z, goal_z, goal_z - z], dim=-1)


class GoalPolicy(nn.Module):
    """Encoder + action head. ``forward(z, goal_z) -> (B, A)`` normalized model actions.

    Args:
        config: the architecture.
        normalization: the dataset's ``Normalizer.to_dict()`` (JSON-safe), or ``None``.
    """

    def __init__(self, config: GoalPolicyConfig, normalization: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.normalization = normalization
        self.encoder = Encoder(config.obs_shape, config.latent_dim, config.encoder)
        self.head = mlp(3 * config.latent_dim, config.hidden, config.depth, config.action_dim)

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, obs: Tensor) -> Tensor:
        """``(B, T, *obs_shape)`` uint8 pixels or float states -> latents ``(B, T, D)``."""
        want = self.config.obs_shape
        if obs.ndim != 2 + len(want) or tuple(obs.shape[2:]) != want:
            raise ValueError(f"obs must be (B, T, *{want}), got shape {tuple(obs.shape)}")
        return self.encoder(obs)

    def forward(self, z: Tensor, goal_z: Tensor) -> Tensor:
        """``z (B, D)`` current latent, ``goal_z (B, D)`` goal latent -> ``(B, A)`` normalized model action."""
        if z.shape != goal_z.shape or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z and goal_z must both be (B, D={self.latent_dim}), got {tuple(z.shape)} and "
                             f"{tuple(goal_z.shape)}")
        return self.head(pair_features(z, goal_z))

    def act(self, obs: Tensor, goal_obs: Tensor) -> Tensor:
        """``obs, goal_obs (B, *obs_shape)`` -> ``(B, A)``: both frames encoded in one batch."""
        z = self.encode(torch.stack([obs, goal_obs], dim=1))  # (B, 2, D)
        return self(z[:, 0], z[:, 1])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``model.safetensors``, ``config.json`` (+ ``normalization.json``) atomically."""
        return write_model_folder(path, POLICY_TYPE, self.config.to_dict(), self.state_dict(), self.normalization)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> GoalPolicy:
        """Load a folder written by :meth:`save_pretrained`, in eval mode; every file is checked first."""
        folder = open_model_folder(path, POLICY_TYPE, fix=FIX_POLICY)
        config = folder.parse_config(GoalPolicyConfig)
        policy = cls(config, folder.normalization)
        state = folder.read_weights()
        try:
            missing, unexpected = policy.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatch
            raise folder.weights_mismatch(str(e).strip().splitlines()[-1].strip()) from e
        if missing or unexpected:
            raise folder.weights_mismatch(f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return policy.to(device).eval()


def is_policy_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a policy folder or a run folder holding ``model/``) holds a saved :class:`GoalPolicy`."""
    from forethought._files import read_json

    p = Path(path)
    for cfg in (p / "config.json", p / "model" / "config.json"):
        if cfg.is_file():
            meta = read_json(cfg, what="a model folder's config.json", fix=FIX_POLICY)
            return meta.get("model_type") == POLICY_TYPE
    return False


def check_policy_env(policy: GoalPolicy, env_action_dim: int, env_id: str | None = None, *,
                     policy_dir: str | os.PathLike[str] = "the policy") -> None:
    """Refuse a policy whose actions do not fit the env (``env_action_dim``) or that was trained on another env.

    The full check (observation shape too, ``--force``) is :func:`forethought.agent.compat.check_model_env`,
    which the evaluation runs; this one serves library users building a policy agent by hand.
    """
    cfg = policy.config
    if cfg.action_dim != cfg.frameskip * int(env_action_dim):
        raise ValueError(f"{policy_dir}: the policy writes {cfg.action_dim}-d model actions (frameskip {cfg.frameskip} x "
                         f"{cfg.env_action_dim}-d env actions), the env's actions are {env_action_dim}-d; train a policy "
                         "on this env's data")
    if env_id is not None and cfg.env_id is not None and cfg.env_id.rsplit(":", 1)[-1] != env_id.rsplit(":", 1)[-1]:
        raise ValueError(f"{policy_dir}: the policy was trained on {cfg.env_id}, not {env_id}; run it on {cfg.env_id} "
                         "or train a policy on this env's data")
