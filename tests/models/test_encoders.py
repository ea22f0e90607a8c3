"""Encoders: fresh embeddings are spread out (the LayerNorm-projector pitfall), shapes, validation."""

from __future__ import annotations

import pytest
import torch

from forethought.models import Encoder, EncoderConfig, WorldModel, WorldModelConfig
from forethought.models.encoders import preprocess_pixels


def _square_images(n: int, size: int = 64) -> torch.Tensor:
    """Different images: a bright square at n different places on a dark background, (n, 1, 3, H, W)."""
    g = torch.Generator().manual_seed(0)
    imgs = torch.full((n, 3, size, size), 20, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(0, size - 12, (2,), generator=g).tolist()
        imgs[i, :, r : r + 12, c : c + 12] = 230
    return imgs[:, None]


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_fresh_embeddings_are_spread_across_images(kind: str) -> None:
    torch.manual_seed(0)
    cfg = EncoderConfig(kind=kind, channels=(16, 32, 32, 32), width=64, depth=2, heads=2, projector_hidden=128)
    enc = Encoder((3, 64, 64), 32, cfg)
    z = enc(_square_images(64))[:, 0]  # (64, 32)
    std = z.std(dim=0)
    # A LayerNorm projector after pooling gives ~0.002 here; the BatchNorm projector gives ~1.
    assert std.mean() > 0.5, std.mean()
    assert std.min() > 0.1, std.min()
    # Eval mode once the running statistics have seen the data (momentum=None: exact average).
    enc.projector.bn.reset_running_stats()
    enc.projector.bn.momentum = None
    with torch.no_grad():
        enc(_square_images(64))
    enc.eval()
    assert enc(_square_images(64))[:, 0].std(dim=0).mean() > 0.5


def test_preset_models_spread_embeddings() -> None:
    for name in ("tiny", "small"):
        model = WorldModel(WorldModelConfig.preset(name, obs_shape=(3, 64, 64), action_dim=4))
        z = model.encode(_square_images(32).expand(32, 2, 3, 64, 64).contiguous())
        assert z.shape == (32, 2, model.latent_dim)
        assert z.reshape(-1, model.latent_dim).std(dim=0).mean() > 0.5


def test_state_encoder_shapes_and_spread() -> None:
    enc = Encoder((7,), 16, EncoderConfig(kind="mlp", width=32, depth=2, projector_hidden=32))
    z = enc(torch.randn(8, 5, 7))
    assert z.shape == (8, 5, 16)
    assert z.reshape(-1, 16).std(dim=0).mean() > 0.5


def test_pixel_preprocessing_range() -> None:
    x = torch.tensor([0, 255], dtype=torch.uint8)
    assert preprocess_pixels(x).tolist() == [-1.0, 1.0]
    assert preprocess_pixels(torch.tensor([0.0, 1.0])).tolist() == [-1.0, 1.0]


def test_vit_on_larger_images_and_patch_check() -> None:
    enc = Encoder((3, 96, 96), 8, EncoderConfig(kind="vit", patch_size=16, width=32, depth=1, heads=2))
    assert enc(torch.zeros(2, 1, 3, 96, 96, dtype=torch.uint8)).shape == (2, 1, 8)
    with pytest.raises(ValueError, match="patch_size"):
        Encoder((3, 100, 100), 8, EncoderConfig(kind="vit", patch_size=16, width=32, heads=2))


def test_encoder_config_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="available: cnn, vit, mlp"):
        EncoderConfig(kind="resnet")
    with pytest.raises(ValueError, match="divisible by heads"):
        EncoderConfig(kind="vit", width=100, heads=3)
    with pytest.raises(ValueError, match="use encoder kind 'mlp'"):
        Encoder((5,), 8, EncoderConfig(kind="cnn"))
    with pytest.raises(ValueError, match="'cnn' or 'vit'"):
        Encoder((3, 64, 64), 8, EncoderConfig(kind="mlp"))
