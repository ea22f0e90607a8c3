"""Prediction losses, the combined JEPA loss, and the regularizer factory."""

from __future__ import annotations

import pytest
import torch

from forethought.models import DecoderConfig, PredictorConfig, TransformerPredictor, WorldModel, WorldModelConfig
from forethought.objectives import (
    JEPALoss,
    Regularizer,
    SIGReg,
    make_regularizer,
    rollout_loss,
    teacher_forced_loss,
)


class ShiftByAction:
    """An exact predictor for z_{t+1} = z_t + a_t (D = A): a real component, not a mock."""

    history = 2

    def predict_sequence(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return z + a


def _trajectory(B: int = 3, T: int = 5, D: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randn(B, T - 1, D)
    z0 = torch.randn(B, 1, D)
    return torch.cat([z0, z0 + a.cumsum(1)], dim=1), a


def test_losses_are_zero_for_the_exact_predictor_and_see_misalignment() -> None:
    z, a = _trajectory()
    p = ShiftByAction()
    assert teacher_forced_loss(p, z, a) < 1e-10  # cumsum rounding
    assert rollout_loss(p, z, a, context=2) < 1e-10
    # Regressing onto the wrong frame (t+2) or using the wrong action gives a clear error.
    assert teacher_forced_loss(p, z[:, :-1], a[:, 1:]) > 0.1
    assert teacher_forced_loss(p, z, a.roll(1, dims=1)) > 0.1


def test_loss_input_errors() -> None:
    z, a = _trajectory()
    with pytest.raises(ValueError, match=r"\(B, T-1, A\)"):
        teacher_forced_loss(ShiftByAction(), z, a[:, :-1])
    with pytest.raises(ValueError, match="context"):
        rollout_loss(ShiftByAction(), z, a, context=5)


def test_rollout_loss_backpropagates_through_time() -> None:
    p = TransformerPredictor(4, 4, 2, PredictorConfig(width=16, heads=2))
    z, a = _trajectory()
    z.requires_grad_()
    rollout_loss(p, z, a, context=2, target=z.detach()).backward()
    # Gradients reach the predictor and, through the rollout, the context latents.
    assert p.head.weight.grad.abs().sum() > 0 and z.grad[:, 1].abs().sum() > 0


def test_make_regularizer() -> None:
    reg = make_regularizer("sigreg", num_projections=8)
    assert isinstance(reg, SIGReg) and isinstance(reg, Regularizer) and reg.weight == 0.09
    assert make_regularizer("vicreg", weight=2.0).weight == 2.0
    assert make_regularizer("none")(torch.randn(4, 2, 3)) == 0.0
    assert make_regularizer("ema").needs_target_encoder
    with pytest.raises(ValueError, match="available: sigreg, vicreg, ema, none"):
        make_regularizer("sigrerg")
    with pytest.raises(ValueError, match="bad arguments"):
        make_regularizer("sigreg", projections=3)


def _decoder_model() -> tuple[WorldModel, torch.Tensor, torch.Tensor]:
    """A tiny pixel model with a decoder, a batch of frames ``(4, 6, 3, 32, 32)`` and actions ``(4, 5, 2)``."""
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 32, 32), action_dim=2, decoder=DecoderConfig(channels=(8, 8)))
    return WorldModel(cfg), torch.randint(0, 256, (4, 6, 3, 32, 32), dtype=torch.uint8), torch.randn(4, 5, 2)


def test_jepa_loss_all_regularizers_and_detached_decoder() -> None:
    model, obs, acts = _decoder_model()
    for name in ("sigreg", "vicreg", "none"):
        loss, metrics = JEPALoss(make_regularizer(name), rollout_weight=0.5)(model, obs, acts)
        assert torch.isfinite(loss) and {"loss/prediction", "loss/rollout", "loss/reconstruction"} <= set(metrics)
    ema_reg = make_regularizer("ema")
    with pytest.raises(ValueError, match="needs a target encoder"):
        JEPALoss(ema_reg)
    loss, _ = JEPALoss(ema_reg, target_encoder=ema_reg.make_target(model.encoder))(model, obs, acts)
    assert torch.isfinite(loss)
    # The decoder's loss never reaches the encoder.
    model.zero_grad()
    model.decoder.loss(model.encode(obs), obs).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())


def test_recon_weight_sends_the_pixel_loss_into_the_encoder() -> None:
    model, obs, acts = _decoder_model()
    none = make_regularizer("none")

    def encoder_grad(recon_weight: float) -> torch.Tensor:
        model.zero_grad()
        JEPALoss(none, recon_weight=recon_weight)(model, obs, acts)[0].backward()
        return torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])

    probe, trained = encoder_grad(0.0), encoder_grad(2.0)
    assert not torch.allclose(probe, trained)  # the reconstruction now shapes the encoder
    model.zero_grad()
    rec = model.decoder.loss(model.encode(obs), obs, detach=False)
    rec.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    with pytest.raises(ValueError, match="recon_weight must be >= 0"):
        JEPALoss(none, recon_weight=-1)
    with pytest.raises(ValueError, match="needs a model with a decoder"):
        JEPALoss(none, recon_weight=1.0)(WorldModel(WorldModelConfig.preset("tiny", obs_shape=(3, 32, 32),
                                                                            action_dim=2)), obs, acts)
