"""Optional pixel decoder, for looking at what the latents hold (pictures only).

By default it is trained on *detached* latents: its reconstruction loss never reaches the encoder,
so the world model's representation is the one the JEPA objective shapes, and the decoder is a
probe. With ``TrainConfig.recon_weight > 0`` (``train --recon-weight``) the loss reaches the
encoder: an auxiliary signal that keeps in the latent what is in the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class DecoderConfig:
    """Transposed-CNN decoder.

    Attributes:
        channels: channels of each upsampling stage, from the coarsest; each stage doubles the
            resolution, so the image side must be a multiple of ``2 ** len(channels)``.
    """

    channels: tuple[int, ...] = (128, 64, 32, 16)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"DecoderConfig.channels must be non-empty positive ints, got {self.channels}")


class Decoder(nn.Module):
    """``(B, T, D)`` latents -> ``(B, T, C, H, W)`` pixels in ``[0, 1]``."""

    def __init__(self, latent_dim: int, obs_shape: tuple[int, ...], cfg: DecoderConfig) -> None:
        super().__init__()
        if len(obs_shape) != 3:
            raise ValueError(f"the decoder is for pixel observations (C, H, W), got obs_shape {obs_shape}")
        C, H, W = obs_shape
        f = 2 ** len(cfg.channels)
        if H % f or W % f:
            raise ValueError(f"image {H}x{W} is not a multiple of {f}; use fewer DecoderConfig.channels")
        self.obs_shape = (C, H, W)
        self.seed_shape = (cfg.channels[0], H // f, W // f)
        self.fc = nn.Linear(latent_dim, cfg.channels[0] * (H // f) * (W // f))
        layers: list[nn.Module] = []
        chans = (*cfg.channels, cfg.channels[-1])
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
                nn.GroupNorm(min(8, c_out), c_out),
                nn.GELU(),
            ]
        layers.append(nn.Conv2d(chans[-1], C, kernel_size=3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        B, T, D = z.shape
        x = self.fc(z.reshape(B * T, D)).view(B * T, *self.seed_shape)
        return self.net(x).sigmoid().view(B, T, *self.obs_shape)

    def loss(self, z: Tensor, obs: Tensor, detach: bool = True) -> Tensor:
        """MSE in ``[0, 1]`` pixel space between ``decode(z)`` and ``obs (B, T, C, H, W)``; ``z`` is
        detached unless ``detach=False`` (then the loss trains the encoder too)."""
        target = obs.float() / 255.0 if not obs.is_floating_point() else obs.float()
        return F.mse_loss(self(z.detach() if detach else z), target)
