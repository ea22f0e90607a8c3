"""WorldModel: encode, predict, rollout, surprise; save_pretrained / from_pretrained.

Shapes (docs/conventions.md): observations ``(B, T, C, H, W)`` uint8 or ``(B, T, S)`` float32;
actions ``(B, T, A)`` float32 in normalized space, ``A = frameskip * env_action_dim``;
``action[:, j]`` takes frame ``j`` to frame ``j+1``; latents ``(B, T, D)``.

Inputs are validated once per public call (shape, channels, action dim, NaN), with errors that
say what was expected. The NaN check synchronises a GPU; a planner that calls ``rollout`` in a
tight loop on inputs it built itself can set ``model.validate_inputs = False``.

The model does not normalize observations or actions: the caller applies the dataset's
:class:`~forethought.data.normalization.Normalizer`, whose ``to_dict()`` is stored in
``model.normalization`` and saved beside the weights so every consumer uses the same statistics.
BatchNorm in the projector: call ``model.eval()`` for planning and acting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forethought.models.config import WorldModelConfig
from forethought.models.decoder import Decoder
from forethought.models.encoders import Encoder
from forethought.models.predictors import build_predictor
from forethought.models.rollout import rollout_candidates
from forethought.models.serialization import open_model_folder, write_model_folder

MODEL_TYPE = "forethought.WorldModel"


class WorldModel(nn.Module):
    """Action-conditioned latent world model (JEPA style).

    Args:
        config: the architecture.
        normalization: the dataset's ``Normalizer.to_dict()`` (JSON-safe), or ``None``.
    """

    validate_inputs: bool = True

    def __init__(self, config: WorldModelConfig, normalization: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.normalization = normalization
        self.encoder = Encoder(config.obs_shape, config.latent_dim, config.encoder)
        self.predictor = build_predictor(config.latent_dim, config.action_dim, config.history, config.predictor)
        self.decoder = (
            Decoder(config.latent_dim, config.obs_shape, config.decoder) if config.decoder is not None else None
        )
        # Privileged supervision (training) and diagnostics only: the agent never reads it.
        self.readout = nn.Linear(config.latent_dim, config.readout_dim) if config.readout_dim is not None else None
        # Proprioception (optional): normalized sensed state dims, embedded and added to each latent.
        dims = config.proprio_dims
        self.proprio = nn.Linear(len(dims), config.latent_dim) if dims else None

    # ------------------------------------------------------------------ properties
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def history(self) -> int:
        return self.config.history

    def num_parameters(self, part: str | None = None) -> int:
        """Parameter count of the whole model or of ``part`` (``encoder``, ``predictor``, ``decoder``, ``readout``,
        ``proprio``)."""
        module = self if part is None else getattr(self, part)
        return 0 if module is None else sum(p.numel() for p in module.parameters())

    # ------------------------------------------------------------------ validation
    def _check_obs(self, obs: Tensor) -> None:
        want = self.config.obs_shape
        if obs.ndim != 2 + len(want) or tuple(obs.shape[2:]) != want:
            layout = "(B, T, C, H, W) uint8" if self.config.is_pixels else "(B, T, S) float32"
            raise ValueError(f"obs must be {layout} with trailing shape {want}, got shape {tuple(obs.shape)}")
        if obs.is_floating_point() and self.validate_inputs and not torch.isfinite(obs).all():
            raise ValueError("obs contains NaN or inf")
        if not obs.is_floating_point() and obs.dtype != torch.uint8:
            raise ValueError(f"obs must be uint8 pixels or float, got dtype {obs.dtype}")

    def _check_latents(self, z: Tensor, name: str = "z") -> None:
        if z.ndim != 3 or z.shape[-1] != self.latent_dim or z.shape[1] < 1:
            raise ValueError(f"{name} must be (B, T, D={self.latent_dim}) latents, got shape {tuple(z.shape)}")
        if self.validate_inputs and not torch.isfinite(z).all():
            raise ValueError(f"{name} contains NaN or inf")

    def _check_actions(self, a: Tensor, batch: int, steps: int | None, name: str = "actions") -> None:
        if a.ndim != 3 or a.shape[-1] != self.action_dim or a.shape[0] != batch:
            raise ValueError(
                f"{name} must be (B={batch}, T, A={self.action_dim}) normalized actions "
                f"(A = frameskip * env action dim), got shape {tuple(a.shape)}"
            )
        if steps is not None and a.shape[1] != steps:
            raise ValueError(f"{name} must have {steps} steps, got {a.shape[1]} (shape {tuple(a.shape)})")
        if self.validate_inputs and not torch.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")

    # ------------------------------------------------------------------ the verbs
    def encode(self, obs: Tensor, proprio: Tensor | None = None) -> Tensor:
        """``(B, T, *obs_shape)`` -> latents ``(B, T, D)``.

        A model with ``config.proprio_dims`` also needs ``proprio (B, T, P)``: the normalized
        values of those state dims at the same frames (:meth:`proprio_from_state` makes them from
        raw states); frame ``t``'s proprio enters latent ``t`` only.
        """
        self._check_obs(obs)
        z = self.encoder(obs)
        if self.proprio is None:
            if proprio is not None:
                raise ValueError("this model takes no proprio (config.proprio_dims is None); pass pixels only")
            return z
        P = len(self.config.proprio_dims or ())
        if proprio is None:
            raise ValueError(f"this model was trained with proprioception (state dims {self.config.proprio_dims}): "
                             f"pass proprio (B, T, {P}), e.g. model.proprio_from_state(states)")
        if tuple(proprio.shape) != (*z.shape[:2], P):
            raise ValueError(f"proprio must be (B, T, P) = {(*z.shape[:2], P)}, got shape {tuple(proprio.shape)}")
        if self.validate_inputs and not torch.isfinite(proprio).all():
            raise ValueError("proprio contains NaN or inf")
        return z + self.proprio(proprio.to(z.dtype))

    def proprio_from_state(self, state: Tensor) -> Tensor:
        """Raw env states ``(..., S)`` -> the normalized proprio ``(..., P)`` that :meth:`encode` takes."""
        dims = self._proprio_dims()
        if state.shape[-1] <= max(dims):
            raise ValueError(f"state has {state.shape[-1]} dims but proprio_dims is {dims}")
        return self.normalize_proprio(state[..., list(dims)])

    def normalize_proprio(self, proprio: Tensor) -> Tensor:
        """Raw sensed values ``(..., P)`` (the state dims ``config.proprio_dims``, env units) -> normalized."""
        dims = self._proprio_dims()
        if proprio.shape[-1] != len(dims):
            raise ValueError(f"proprio must have P={len(dims)} values (state dims {dims}), got shape "
                             f"{tuple(proprio.shape)}")
        if self.normalization is None or self.normalization.get("state") is None:
            raise ValueError("this model has no state normalization statistics; it cannot read proprio")
        stats = self.normalization["state"]
        mean = torch.as_tensor(stats["mean"], dtype=torch.float32, device=proprio.device)[list(dims)]
        std = torch.as_tensor(stats["std"], dtype=torch.float32, device=proprio.device)[list(dims)]
        return (proprio.float() - mean) / std

    def _proprio_dims(self) -> tuple[int, ...]:
        if self.config.proprio_dims is None:
            raise ValueError("this model takes no proprio (config.proprio_dims is None)")
        return self.config.proprio_dims

    def predict_sequence(self, z: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced: ``z (B, T, D)``, ``actions (B, T, A)`` -> ``(B, T, D)``.

        Position ``t`` predicts ``z_{t+1}`` from the last ``h`` latents up to ``t``.
        """
        self._check_latents(z)
        self._check_actions(actions, z.shape[0], z.shape[1])
        return self.predictor.predict_sequence(z, actions)

    def predict(self, z: Tensor, actions: Tensor) -> Tensor:
        """Next latent: ``z (B, L, D)``, ``actions (B, L, A)`` -> ``(B, D)``.

        ``actions[:, -1]`` takes the last history frame to the predicted one; only the last ``h``
        steps are used when ``L > h``.
        """
        self._check_latents(z)
        self._check_actions(actions, z.shape[0], z.shape[1])
        h = self.history
        return self.predictor.predict_sequence(z[:, -h:], actions[:, -h:])[:, -1]

    def rollout(self, z: Tensor, actions: Tensor, past_actions: Tensor | None = None) -> Tensor:
        """Imagine ``H`` steps: ``z (B, L, D)``, ``actions (B, H, A)`` -> ``(B, H, D)``.

        ``actions[:, 0]`` takes the last history frame to the first imagined one.
        ``past_actions (B, >= L-1, A)`` are the actions between the history frames (the last
        ``min(L, h) - 1`` are used); ``None`` means zeros (the mean normalized action), which is
        exact only for ``h = 1``. Batched: ``B`` can be episodes times candidates. In eval mode a
        transformer predictor keeps a KV cache (1.9x faster at H = 50, B = 1), equal to the
        step-by-step :func:`~forethought.models.rollout.autoregressive_rollout` to float rounding.
        Speculative rollouts: :func:`forethought.speculative.speculative_rollout`.
        """
        self._check_latents(z)
        self._check_actions(actions, z.shape[0], None)
        if past_actions is not None:
            self._check_actions(past_actions, z.shape[0], None, name="past_actions")
        return rollout_candidates(self.predictor, z, actions[:, None], past_actions, fast=not self.training)[:, 0]

    def rollout_candidates(
        self, z: Tensor, actions: Tensor, past_actions: Tensor | None = None, fast: bool = True
    ) -> Tensor:
        """Imagine ``N`` candidate futures per history: ``z (B, L, D)``, ``actions (B, N, H, A)`` -> ``(B, N, H, D)``.

        Equal (to float tolerance) to :meth:`rollout` on the history repeated ``N`` times, which is
        what ``fast=False`` does. ``fast=True`` (eval mode, transformer predictor) runs the tokens
        that only depend on the real history once per episode and computes each action's
        conditioning once (a transformer's KV-cached ``rollout_candidates``). Planners use
        :class:`~forethought.models.fast_rollout.CandidateRollout`, the same rollout with the weights
        cast once.
        """
        self._check_latents(z)
        if actions.ndim != 4 or actions.shape[0] != z.shape[0] or actions.shape[-1] != self.action_dim:
            raise ValueError(
                f"actions must be (B={z.shape[0]}, N, H, A={self.action_dim}) normalized candidate actions, "
                f"got shape {tuple(actions.shape)}"
            )
        if self.validate_inputs and not torch.isfinite(actions).all():
            raise ValueError("actions contains NaN or inf")
        if past_actions is not None:
            self._check_actions(past_actions, z.shape[0], None, name="past_actions")
        return rollout_candidates(self.predictor, z, actions, past_actions, fast=fast and not self.training)

    def surprise(self, obs: Tensor, actions: Tensor, proprio: Tensor | None = None) -> Tensor:
        """Per-step prediction error ``(B, T-1)``: ``mean_d (pred_{t+1} - enc(o_{t+1}))^2``.

        ``obs (B, T, ...)``, ``actions (B, T-1, A)``. It compares the prediction from the past and
        the action against the observation, not consecutive embeddings, so an action-inconsistent
        transition scores high while a fast but predicted one does not.
        ``proprio (B, T, P)`` for a model with proprioception (see :meth:`encode`).
        """
        if obs.ndim >= 2 and obs.shape[1] < 2:
            raise ValueError(f"surprise needs at least 2 frames, got obs shape {tuple(obs.shape)}")
        z = self.encode(obs, proprio)
        self._check_actions(actions, obs.shape[0], obs.shape[1] - 1)
        pred = self.predictor.predict_sequence(z[:, :-1], actions)
        return (pred - z[:, 1:]).pow(2).mean(-1)

    def read_state(self, z: Tensor) -> Tensor:
        """``(B, T, D)`` latents -> ``(B, T, S)`` the readout head's estimate of the normalized true state.

        Trained with ``--state-weight`` (privileged supervision of the encoder, reported as such);
        denormalize with ``Normalizer.from_dict(model.normalization).denormalize_state``.
        """
        if self.readout is None:
            raise ValueError("this model has no state readout; train it with --state-weight > 0")
        self._check_latents(z)
        return self.readout(z)

    def decode(self, z: Tensor) -> Tensor:
        """``(B, T, D)`` -> ``(B, T, C, H, W)`` pixels in ``[0, 1]`` (needs a decoder)."""
        if self.decoder is None:
            raise ValueError("this model has no decoder; build it with WorldModelConfig(decoder=DecoderConfig())")
        self._check_latents(z)
        return self.decoder(z)

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``model.safetensors``, ``config.json`` (+ ``normalization.json``) atomically."""
        return write_model_folder(path, MODEL_TYPE, self.config.to_dict(), self.state_dict(), self.normalization)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> WorldModel:
        """Load a folder written by :meth:`save_pretrained` (safetensors only), in eval mode.

        Every file is checked before it is used; a bad one raises a ``ValueError`` naming it and
        what to do (see :mod:`forethought.models.serialization`).
        """
        folder = open_model_folder(path, MODEL_TYPE)
        config = folder.parse_config(WorldModelConfig)
        state = folder.read_weights()
        model = cls(config, folder.normalization)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatch
            raise folder.weights_mismatch(str(e).strip().splitlines()[-1].strip()) from e
        if missing or unexpected:
            raise folder.weights_mismatch(f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.to(device).eval()
