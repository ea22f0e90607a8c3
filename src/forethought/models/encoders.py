"""Observation encoders: CNN (64x64 pixels), ViT (larger images), MLP (state vectors).

Every encoder is a backbone (observation -> feature vector) followed by a :class:`Projector` with
BatchNorm to the latent, as in LeWM. The BatchNorm matters: a LayerNorm after mean-pooled tokens
starts with embeddings that are nearly identical across images (std ~0.002), SIGReg's gradient is
then ~0 and training never leaves collapse (docs/design.md, pitfalls). With BatchNorm the fresh
embeddings are spread out across the batch by construction.

Pixel preprocessing lives here: uint8 ``[0, 255]`` -> float ``[-1, 1]``. Float pixel input is taken
to be in ``[0, 1]`` already.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.models.layers import Block

ENCODER_KINDS = ("cnn", "vit", "mlp")


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder backbone and projector.

    Attributes:
        kind: ``"cnn"`` (pixels, 64x64 and similar), ``"vit"`` (pixels, larger images) or ``"mlp"``
            (state vectors).
        channels: CNN output channels per stride-2 conv layer (each halves the resolution).
        patch_size: ViT patch side in pixels; the image side must be a multiple of it.
        width: ViT token width, or MLP hidden width.
        depth: ViT blocks, or MLP hidden layers.
        heads: ViT attention heads (must divide ``width``).
        mlp_ratio: ViT MLP hidden width as a multiple of ``width``.
        projector_hidden: hidden width of the BatchNorm projector to the latent.
    """

    kind: str = "cnn"
    channels: tuple[int, ...] = (32, 64, 128, 128)
    patch_size: int = 8
    width: int = 192
    depth: int = 2
    heads: int = 3
    mlp_ratio: float = 4.0
    projector_hidden: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"Unknown encoder kind {self.kind!r}; available: {', '.join(ENCODER_KINDS)}")
        if self.kind == "cnn" and (not self.channels or min(self.channels) < 1):
            raise ValueError(f"EncoderConfig.channels must be non-empty positive ints, got {self.channels}")
        for name in ("patch_size", "width", "depth", "heads", "projector_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.kind == "vit" and self.width % self.heads != 0:
            raise ValueError(
                f"ViT width {self.width} must be divisible by heads {self.heads}; e.g. width=192, heads=3"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"EncoderConfig.mlp_ratio must be positive, got {self.mlp_ratio}")


def preprocess_pixels(obs: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` (or float ``[0, 1]``) pixels -> float ``[-1, 1]``, same shape."""
    if obs.dtype == torch.uint8:
        return obs.float().mul_(2.0 / 255.0).sub_(1.0)
    return obs.float() * 2.0 - 1.0


class CNNBackbone(nn.Module):
    """Strided CNN, ``(N, C, H, W) -> (N, F)`` with ``F = channels[-1] * ceil(H/2^L) * ceil(W/2^L)``.

    The features are flattened, not pooled: the position of things in the image (where the agent
    is) is what a control world model needs most. GroupNorm keeps activations O(1) at init without
    tying samples in the batch together.
    """

    def __init__(self, in_channels: int, height: int, width: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
                nn.GroupNorm(min(8, c_out), c_out),
                nn.GELU(),
            ]
            c_in = c_out
        self.net = nn.Sequential(*layers)
        h, w = height, width
        for _ in channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.out_dim = channels[-1] * h * w

    def forward(self, x: Tensor) -> Tensor:
        # channels_last lets oneDNN/cuDNN pick their NHWC kernels: ~2x faster fp32 train steps on a
        # CPU (bench/models.py). flatten still reads the logical (C, H, W) order.
        return self.net(x.contiguous(memory_format=torch.channels_last)).flatten(1)


class ViTBackbone(nn.Module):
    """ViT with a CLS token, ``(N, C, H, W) -> (N, width)`` (the final-LayerNormed CLS token)."""

    def __init__(self, in_channels: int, height: int, width_px: int, cfg: EncoderConfig) -> None:
        super().__init__()
        p = cfg.patch_size
        if height % p or width_px % p:
            raise ValueError(
                f"image size {height}x{width_px} is not a multiple of patch_size {p}; "
                f"choose a patch_size that divides both sides"
            )
        n_tokens = (height // p) * (width_px // p)
        self.patch = nn.Conv2d(in_channels, cfg.width, kernel_size=p, stride=p)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos = nn.Parameter(torch.zeros(1, n_tokens + 1, cfg.width))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.out_dim = cfg.width

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (N, n_tokens, width)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0])


class MLPBackbone(nn.Module):
    """State MLP, ``(N, S) -> (N, width)``: ``depth`` x (Linear, LayerNorm, GELU)."""

    def __init__(self, state_dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = state_dim
        for _ in range(cfg.depth):
            layers += [nn.Linear(d, cfg.width), nn.LayerNorm(cfg.width), nn.GELU()]
            d = cfg.width
        self.net = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Projector(nn.Module):
    """LeWM projector ``Linear -> BatchNorm1d -> GELU -> Linear``, ``(N, F) -> (N, D)``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, out_dim)
        # GELU of a standard normal has variance ~0.35 around its mean; scale fc2 so that fresh
        # embeddings have per-dimension std ~1, the target distribution of SIGReg.
        nn.init.normal_(self.fc2.weight, std=1.0 / math.sqrt(0.35 * hidden))
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.bn(self.fc1(x))))


class Encoder(nn.Module):
    """Backbone + projector: ``(B, T, *obs_shape) -> (B, T, D)``.

    ``obs_shape`` is ``(C, H, W)`` for pixels (uint8 or float in ``[0, 1]``) or ``(S,)`` for states.
    Frames are encoded independently (time is folded into the batch), so BatchNorm sees ``B*T``
    samples.
    """

    def __init__(self, obs_shape: tuple[int, ...], latent_dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.pixels = len(self.obs_shape) == 3
        if self.pixels and cfg.kind == "mlp":
            raise ValueError(f"obs_shape {obs_shape} is an image; use encoder kind 'cnn' or 'vit', not 'mlp'")
        if not self.pixels and cfg.kind != "mlp":
            raise ValueError(f"obs_shape {obs_shape} is a state vector; use encoder kind 'mlp', not {cfg.kind!r}")
        self.backbone: nn.Module
        if cfg.kind == "cnn":
            self.backbone = CNNBackbone(*self.obs_shape, channels=cfg.channels)
        elif cfg.kind == "vit":
            self.backbone = ViTBackbone(*self.obs_shape, cfg=cfg)
        else:
            self.backbone = MLPBackbone(self.obs_shape[0], cfg)
        self.projector = Projector(self.backbone.out_dim, cfg.projector_hidden, latent_dim)
        self.latent_dim = latent_dim

    def forward(self, obs: Tensor) -> Tensor:
        B, T = obs.shape[:2]
        x = obs.reshape(B * T, *self.obs_shape)  # fold time into the batch
        x = preprocess_pixels(x) if self.pixels else x.float()
        return self.projector(self.backbone(x)).view(B, T, self.latent_dim)
