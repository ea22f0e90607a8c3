"""Multi-step diffusion dynamics: ``p(z_{t+1:t+F} | z_{t-h+1:t}, a_{t-h+1:t-1}, a_{t:t+F-1})`` in a frozen model's latents.

DMPC's dynamics model (Zhou et al. 2025, sec. 3.2): instead of predicting one step and feeding the
prediction back (the JEPA predictor, whose errors compound), a denoising diffusion model samples a
whole chunk of ``F`` future latents at once, given the latent history and the chunk's actions.
It lives in the latent space of a frozen world model's encoder and in its action space (normalized,
frameskip-concatenated model actions), so its folder names the encoder's fingerprint and the
action statistics, and :func:`load_dynamics` refuses any other model.

What is denoised: the displacement of each future latent from the last history latent, per step
and dimension scaled by the training data's spread, ``x0[j] = (z_{t+1+j} - z_t) / delta_std[j]``
``(F, D)``; DDIM clamps it to the training box (widened by a tenth). The network is the shared
temporal-conv denoiser (:mod:`forethought.models.denoiser`) with dilated blocks, fed per step the
action, the running sum of the actions (the displacement a linear system would make) and the
step's position; and conditioned (FiLM) on the last ``h`` latents (normalized with the training
latents' mean and std), the ``h - 1`` actions between them and which of them exist (a history
shorter than ``h`` at the start of an episode is padded and masked, in training as at run time).

Longer horizons than ``F`` are sampled chunk after chunk (each conditioned on the last ``h``
sampled latents); shorter ones pad the actions with the mean action and keep the first steps.

A dynamics folder is ``model.safetensors`` (weights and the data statistics, as buffers) +
``config.json`` (model type ``forethought.DiffusionDynamics``), written atomically.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forethought._schema import from_json_dict
from forethought.models.binding import binding_mismatch
from forethought.models.denoiser import ConvDenoiser
from forethought.models.diffusion import PREDICTIONS, cosine_alpha_bar, ddim_sample, ddpm_loss
from forethought.models.serialization import ModelFolderError, open_model_folder, run_subfolder, write_model_folder

DYNAMICS_TYPE = "forethought.DiffusionDynamics"
DYNAMICS_DIR = "dynamics"  # inside the run folder that `forethought train-dynamics --out` writes
FIX_DYNAMICS = "Train the dynamics again with `forethought train-dynamics --model MODEL --out DIR`"
BOX_MARGIN = 0.1  # the x0 clamp box is the training box widened by this fraction of its width


class DynamicsMismatchError(ModelFolderError):
    """A diffusion dynamics model trained in another model's latents or action space."""


@dataclass(frozen=True)
class DynamicsConfig:
    """Architecture, diffusion settings, and what ties the dynamics to its world model.

    Attributes:
        latent_dim: ``D`` of the encoder whose latents it predicts.
        action_dim: ``A``, the model action dimension (``frameskip * env_action_dim``).
        horizon: ``F``, future latents per sample.
        history: ``h``, history latents it is conditioned on (at most the world model's).
        width, depth: the denoiser's channels and residual blocks.
        dilation_growth: dilation factor between blocks (2: receptive field 3 + 4 (2^depth - 1) steps).
        diffusion_steps: ``T`` of the training schedule (cosine).
        sample_steps: DDIM steps per sample (denoiser calls per chunk).
        prediction: what the denoiser predicts, ``"x0"`` (the clean chunk; default: a future given its
            actions is nearly deterministic, and few-step sampling stays accurate) or ``"eps"`` (the noise).
        frameskip, env_id: the model's (``None`` when the model does not record them).
        encoder_fingerprint: SHA-256 of the encoder it was trained with ("" = unchecked).
        action_stats: SHA-256 of the model's action normalization statistics ("" = unchecked).
        stats: training record (JSON-safe): data, episodes, windows, final loss.
    """

    latent_dim: int
    action_dim: int
    horizon: int
    history: int = 1
    width: int = 64
    depth: int = 3
    dilation_growth: int = 2
    diffusion_steps: int = 100
    sample_steps: int = 10
    prediction: str = "x0"
    frameskip: int | None = None
    env_id: str | None = None
    encoder_fingerprint: str = ""
    action_stats: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("latent_dim", "action_dim", "horizon", "history", "width", "depth", "dilation_growth",
                     "sample_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DynamicsConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.diffusion_steps or self.sample_steps > self.diffusion_steps:
            raise ValueError(f"need 2 <= diffusion_steps and sample_steps <= diffusion_steps, got "
                             f"{self.diffusion_steps}, {self.sample_steps}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"DynamicsConfig.prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")

    @property
    def cond_dim(self) -> int:
        """History latents, the actions between them, and their mask."""
        h = self.history
        return h * self.latent_dim + (h - 1) * self.action_dim + h

    @property
    def context_dim(self) -> int:
        """Per step: the action, the running sum of the actions, the position."""
        return 2 * self.action_dim + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = "") -> DynamicsConfig:
        """Inverse of :meth:`to_dict`, every field type-checked (:func:`forethought._schema.from_json_dict`)."""
        return from_json_dict(cls, d, source=source, written_by=written_by, fix=fix)


class DiffusionDynamics(nn.Module):
    """``rollout(z_hist (B, L, D), actions (B, N, H, A), a_hist (B, L-1, A)) -> (B, N, H, D)`` sampled latents.

    Train with :meth:`loss` after :meth:`set_statistics` (``forethought train-dynamics``); sample with
    :meth:`predict` (one chunk per history) or :meth:`rollout` (candidates, any horizon).
    """

    def __init__(self, config: DynamicsConfig) -> None:
        super().__init__()
        self.config = config
        D, F = config.latent_dim, config.horizon
        self.denoiser = ConvDenoiser(D, config.cond_dim, config.width, config.depth, context_dim=config.context_dim,
                                     dilation_growth=config.dilation_growth)
        self.alpha_bar = cosine_alpha_bar(config.diffusion_steps)  # a function of the config: not saved
        # Training-data statistics, saved with the weights (set_statistics).
        self.register_buffer("latent_mean", torch.zeros(D))
        self.register_buffer("latent_std", torch.ones(D))
        self.register_buffer("delta_std", torch.ones(F, D))
        self.register_buffer("delta_low", torch.full((F, D), -4.0))
        self.register_buffer("delta_high", torch.full((F, D), 4.0))

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def history(self) -> int:
        return self.config.history

    def set_statistics(self, latent_mean: Tensor, latent_std: Tensor, delta_std: Tensor, delta_low: Tensor,
                       delta_high: Tensor) -> None:
        """The training data's latent mean / std ``(D,)``, and per step the std ``(F, D)`` of the
        displacement ``z_{t+1+j} - z_t`` and the box ``(F, D)`` of the scaled displacement."""
        span = (delta_high - delta_low).clamp_min(1e-6)
        with torch.no_grad():
            self.latent_mean.copy_(latent_mean)
            self.latent_std.copy_(latent_std.clamp_min(1e-6))
            self.delta_std.copy_(delta_std.clamp_min(1e-6))
            self.delta_low.copy_(delta_low - BOX_MARGIN * span)
            self.delta_high.copy_(delta_high + BOX_MARGIN * span)

    # ------------------------------------------------------------------ conditioning
    def pad_history(self, z_hist: Tensor, a_hist: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """``z_hist (B, L, D)``, ``a_hist (B, >= L-1, A)`` or ``None`` (zeros, the mean action) -> the last
        ``h`` latents ``(B, h, D)``, the actions between them ``(B, h-1, A)`` and which latents exist
        ``(B, h)``; a shorter history is padded at the front with zeros (masked)."""
        cfg = self.config
        h, D, A = cfg.history, cfg.latent_dim, cfg.action_dim
        if z_hist.ndim != 3 or z_hist.shape[-1] != D or z_hist.shape[1] < 1:
            raise ValueError(f"z_hist must be (B, L >= 1, D={D}) latents, got shape {tuple(z_hist.shape)}")
        z = z_hist[:, -h:].float()
        B, L = z.shape[:2]
        if a_hist is None or L == 1:
            a = z.new_zeros(B, L - 1, A)
        else:
            if a_hist.ndim != 3 or a_hist.shape[0] != B or a_hist.shape[-1] != A or a_hist.shape[1] < L - 1:
                raise ValueError(f"a_hist must be (B={B}, >= {L - 1}, A={A}) actions between the history latents, "
                                 f"got shape {tuple(a_hist.shape)}")
            a = a_hist[:, a_hist.shape[1] - (L - 1):].float()
        pad = h - L
        hist = torch.cat([z.new_zeros(B, pad, D), z], dim=1)
        past = torch.cat([z.new_zeros(B, pad, A), a], dim=1)
        mask = torch.cat([z.new_zeros(B, pad), z.new_ones(B, L)], dim=1)
        return hist, past, mask

    def _cond(self, hist: Tensor, past: Tensor, mask: Tensor) -> Tensor:
        """The condition vector ``(B, K)`` from a padded history (absent entries zeroed)."""
        zn = (hist - self.latent_mean) / self.latent_std * mask[..., None]  # (B, h, D)
        an = past * mask[:, :-1, None]  # the action leaving an absent latent is absent too
        return torch.cat([zn.flatten(1), an.flatten(1), mask], dim=-1)

    def _context(self, actions: Tensor) -> Tensor:
        """Per-step inputs ``(B, F, 2A + 1)``: the action, the running sum / sqrt(F), the position (j + 1) / F."""
        F = actions.shape[1]
        ramp = torch.arange(1, F + 1, device=actions.device, dtype=actions.dtype) / F
        return torch.cat([actions, actions.cumsum(1) / math.sqrt(F), ramp[None, :, None].expand(actions.shape[0], F, 1)],
                         dim=-1)

    def _eps(self, x: Tensor, t: Tensor, cond: tuple[Tensor, Tensor]) -> Tensor:
        return self.denoiser(x, t, cond[0], cond[1])

    def _eps_grouped(self, x: Tensor, t: Tensor, cond: tuple[Tensor, Tensor]) -> Tensor:
        """Sampling: ``cond = (embedding (G, E), context (M, F, X))``, one embedding per group of ``M / G``
        sequences; every sequence is at the same step ``t``, so the first ``G`` entries stand for the groups."""
        embedding, context = cond
        return self.denoiser(x, t[: embedding.shape[0]], None, context, cond_embedding=embedding)

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """DDPM loss of a batch of windows: ``hist (B, h, D)``, ``past (B, h-1, A)``, ``mask (B, h)``,
        ``actions (B, F, A)`` and the true ``future (B, F, D)`` latents (raw, as the encoder gives them)."""
        cfg = self.config
        future, actions = batch["future"].float(), batch["actions"].float()
        if future.shape[1:] != (cfg.horizon, cfg.latent_dim) or actions.shape[1:] != (cfg.horizon, cfg.action_dim):
            raise ValueError(f"windows must have future (B, F={cfg.horizon}, D={cfg.latent_dim}) and actions "
                             f"(B, F, A={cfg.action_dim}), got {tuple(future.shape)} and {tuple(actions.shape)}")
        hist, past, mask = batch["hist"].float(), batch["past"].float(), batch["mask"].float()
        x0 = (future - hist[:, -1:]) / self.delta_std  # (B, F, D)
        return ddpm_loss(self._eps, x0, (self._cond(hist, past, mask), self._context(actions)), self.alpha_bar,
                         self.config.prediction)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def _sample_chunk(self, last: Tensor, embedding: Tensor, actions: Tensor, noise: Tensor,
                      steps: int | None) -> Tensor:
        """One chunk ``(M, F, D)`` of latents after the last history latents ``last (M, 1, D)``, for
        ``actions (M, F, A)`` from ``noise (M, F, D)``; ``embedding (G, E)``: the condition's embedding
        per group of ``M / G`` consecutive sequences (:meth:`ConvDenoiser.embed_condition`)."""
        x0 = ddim_sample(self._eps_grouped, tuple(noise.shape), (embedding, self._context(actions)), self.alpha_bar,
                         steps or self.config.sample_steps, self.delta_low, self.delta_high, device=noise.device,
                         noise=noise, prediction=self.config.prediction)
        return last + x0 * self.delta_std

    @torch.no_grad()
    def rollout(self, z_hist: Tensor, actions: Tensor, a_hist: Tensor | None = None, *,
                generator: torch.Generator | None = None, steps: int | None = None, shared_noise: bool = True) -> Tensor:
        """Sample ``H`` latents after each history for each of ``N`` candidate action sequences.

        ``z_hist (B, L, D)``, ``actions (B, N, H, A)`` normalized model actions (``actions[:, :, 0]`` takes
        the last history latent to the first predicted one), ``a_hist (B, L-1, A)`` or ``None`` ->
        ``(B, N, H, D)``. ``ceil(H / F)`` chunks, each ``steps`` (default ``config.sample_steps``)
        denoiser calls on all ``B * N`` sequences. ``shared_noise``: every candidate of an episode
        starts from the same noise (common random numbers: candidates differ by their actions only).
        """
        cfg = self.config
        if actions.ndim != 4 or actions.shape[0] != z_hist.shape[0] or actions.shape[-1] != cfg.action_dim:
            raise ValueError(f"actions must be (B={z_hist.shape[0]}, N, H, A={cfg.action_dim}) normalized candidate "
                             f"actions, got shape {tuple(actions.shape)}")
        B, N, H, A = actions.shape
        F, D = cfg.horizon, cfg.latent_dim
        chunks = math.ceil(H / F)
        hist, past, mask = self.pad_history(z_hist, a_hist)
        device = hist.device
        noise = torch.randn((B, 1 if shared_noise else N, chunks, F, D), generator=generator, device=device)
        noise = noise.expand(B, N, chunks, F, D).reshape(B * N, chunks, F, D)
        acts = actions.float().reshape(B * N, H, A)
        if chunks * F > H:  # the last chunk's missing actions: the mean action
            acts = torch.cat([acts, acts.new_zeros(B * N, chunks * F - H, A)], dim=1)
        embedding = self.denoiser.embed_condition(self._cond(hist, past, mask))  # (B, E): once per episode
        hist, past, mask = (x.repeat_interleave(N, dim=0) for x in (hist, past, mask))  # (B N, ...), episode-major
        out = []
        for c in range(chunks):
            a = acts[:, c * F : (c + 1) * F]
            if c > 0:  # later chunks are conditioned on each candidate's own sampled history
                embedding = self.denoiser.embed_condition(self._cond(hist, past, mask))  # (B N, E)
            future = self._sample_chunk(hist[:, -1:], embedding, a, noise[:, c], steps)
            out.append(future)
            if c + 1 < chunks:  # the next chunk's history: the last h latents so far
                h = cfg.history
                hist = torch.cat([hist, future], dim=1)[:, -h:]
                past = torch.cat([past, a], dim=1)[:, past.shape[1] + F - (h - 1):]
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], F)], dim=1)[:, -h:]
        return torch.cat(out, dim=1)[:, :H].view(B, N, H, D)

    @torch.no_grad()
    def predict(self, z_hist: Tensor, actions: Tensor, a_hist: Tensor | None = None, *,
                generator: torch.Generator | None = None, steps: int | None = None) -> Tensor:
        """One sampled future per history: ``z_hist (B, L, D)``, ``actions (B, H, A)`` -> ``(B, H, D)``."""
        return self.rollout(z_hist, actions[:, None], a_hist, generator=generator, steps=steps)[:, 0]


# --------------------------------------------------------------------------- what ties it to a model, folders
def check_dynamics_for(dynamics: DiffusionDynamics, model: Any) -> None:
    """Raise :class:`DynamicsMismatchError` unless ``dynamics`` was trained in ``model``'s latents (latent
    dim, encoder weights) and action space (action dim, frameskip, env, action statistics)."""
    fix = ("train dynamics for this model with `forethought train-dynamics --model MODEL ...` (a model adapted with "
           "`forethought adapt --only dynamics` keeps its parent's encoder, so its dynamics still fit)")
    mismatch = binding_mismatch(dynamics.config, model)
    if mismatch is None:
        return
    kind, detail = mismatch
    if kind == "space":
        raise DynamicsMismatchError(f"the diffusion dynamics were trained for another action space: {detail}; {fix}")
    raise DynamicsMismatchError(f"the diffusion dynamics were trained in another model's latents ({detail}); {fix}")


def save_dynamics(dynamics: DiffusionDynamics, path: str | os.PathLike[str]) -> Path:
    """Write ``model.safetensors`` (weights and statistics) + ``config.json`` atomically (never pickle)."""
    return write_model_folder(path, DYNAMICS_TYPE, dynamics.config.to_dict(), dynamics.state_dict(), None)


def dynamics_folder(path: str | os.PathLike[str]) -> Path:
    """The dynamics folder at ``path``: the folder itself, or ``path/dynamics`` (a train-dynamics run)."""
    return run_subfolder(path, DYNAMICS_DIR)


def load_dynamics(path: str | os.PathLike[str], model: Any | None = None,
                  device: str | torch.device = "cpu") -> DiffusionDynamics:
    """Load a dynamics folder (or the ``--out`` folder of train-dynamics) in eval mode; with ``model``,
    refuse dynamics trained in another model's latents or action space."""
    folder = open_model_folder(dynamics_folder(path), DYNAMICS_TYPE, fix=FIX_DYNAMICS)
    dynamics = DiffusionDynamics(folder.parse_config(DynamicsConfig))
    folder.load_into(dynamics)
    if model is not None:
        check_dynamics_for(dynamics, model)
    return dynamics.to(device).eval()
