"""Moved to :mod:`forethought.models.denoiser` (shared with the diffusion dynamics); re-exported here."""

from forethought.models.denoiser import ConvDenoiser, step_embedding

__all__ = ["ConvDenoiser", "step_embedding"]
