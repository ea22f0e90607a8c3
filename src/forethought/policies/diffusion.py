"""Moved to :mod:`forethought.models.diffusion` (shared with the diffusion dynamics); re-exported here."""

from forethought.models.diffusion import Denoiser, cosine_alpha_bar, ddim_sample, ddim_timesteps, ddpm_loss

__all__ = ["Denoiser", "cosine_alpha_bar", "ddim_sample", "ddim_timesteps", "ddpm_loss"]
