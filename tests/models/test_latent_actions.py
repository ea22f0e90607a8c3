"""Latent actions: the VQ layer, the inverse model, and the action encoder that folds into the predictor."""

from __future__ import annotations

import copy

import pytest
import torch

from forethought.models import PredictorConfig, WorldModel, WorldModelConfig
from forethought.models.action_encoder import (FoldedActionLinear, action_layer, fit_linear_map, fold_action_encoder,
                                               install_action_encoder)
from forethought.models.latent_actions import InverseModel, LatentActionConfig, shuffled_prediction_gap
from forethought.models.serialization import ModelFolderError
from forethought.models.vq import VectorQuantizer

MOVES = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


# ---------------------------------------------------------------------------------------------- VQ layer
def test_vq_picks_the_nearest_code_and_passes_the_gradient_straight_through():
    vq = VectorQuantizer(3, 2).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]))
    x = torch.tensor([[4.0, 1.0], [0.2, -0.1], [1.0, 4.5]], requires_grad=True)
    out = vq(x)
    assert out.codes.tolist() == [1, 0, 2]
    torch.testing.assert_close(out.q.detach(), vq.codebook[out.codes].detach())
    (out.q * torch.tensor([[1.0, 2.0]])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 2.0]] * 3))  # identity: straight through
    # codebook loss ||sg(x) - e||^2 plus 0.25 * the same distance for the commitment term
    dist = (x.detach() - vq.codebook[out.codes].detach()).pow(2).mean()
    torch.testing.assert_close(out.loss, dist * 1.25)


def test_vq_starts_at_kmeans_centres_of_the_first_batch():
    torch.manual_seed(0)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    x = (centres[torch.arange(400) % 4] + 0.1 * torch.randn(400, 2))
    vq = VectorQuantizer(4, 2).train()
    assert not bool(vq.initialized)
    out = vq(x)
    assert bool(vq.initialized)
    found = sorted(vq.codebook.detach().round().tolist())
    assert found == sorted(centres.tolist())
    assert len(set(out.codes.tolist())) == 4 and out.commitment < 0.05


def test_dead_codes_are_moved_onto_recent_inputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2).train()
    x = torch.randn(64, 2) * 0.1 + torch.tensor([10.0, 10.0])
    vq(x)  # k-means start on this batch
    with torch.no_grad():
        vq.codebook[2:] = torch.tensor([[-50.0, -50.0], [60.0, -60.0]])  # two codes no input will ever pick
    for _ in range(80):
        vq(x)
    assert vq.usage[2:].max() < 0.05 / 4
    assert vq.reset_dead_codes() == 2
    assert (vq.codebook[2:] - 10).abs().max() < 1.0  # now among the inputs
    assert vq.reset_dead_codes() == 0  # a reset code gets a grace period
    assert vq.perplexity(torch.tensor([0, 1, 2, 3])) == pytest.approx(4.0)
    assert vq.perplexity(torch.tensor([1, 1, 1])) == pytest.approx(1.0)


def test_vq_inverse_model_recovers_the_four_moves_of_a_dot():
    """A known discrete action set: a dot moved by one of 4 moves, seen through a fixed linear
    embedding; each of the inverse model's 8 codes (|A| = 8 as Genie) must stand for one move
    (majority-mapping accuracy), and every move must have a code."""
    torch.manual_seed(0)
    embed = torch.randn(2, 32) / 2**0.5
    world = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(2,), action_dim=4, history=1))
    inverse = InverseModel(LatentActionConfig(kind="vq", dim=4, codes=8, latent_dim=32, hidden=64)).train()
    opt = torch.optim.Adam([*inverse.parameters(), *world.predictor.parameters()], lr=1e-3)
    for _ in range(300):
        pos = torch.rand(128, 2) * 4 - 2
        move = torch.randint(0, 4, (128,))
        z, z_next = (pos @ embed)[:, None], ((pos + 0.5 * MOVES[move]) @ embed)[:, None]
        latent = inverse(z, z_next)
        loss = (world.predictor.predict_sequence(z, latent.u) - z_next).pow(2).mean() + latent.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        inverse.after_step()
    pos = torch.rand(512, 2) * 4 - 2
    move = torch.randint(0, 4, (512,))
    codes = inverse.infer((pos @ embed)[:, None], ((pos + 0.5 * MOVES[move]) @ embed)[:, None]).codes[:, 0]
    table = torch.zeros(8, 4, dtype=torch.long).index_put_((codes, move), torch.ones(512, dtype=torch.long),
                                                           accumulate=True)
    accuracy = float(table.max(1).values.sum()) / 512
    assert accuracy > 0.95, table
    assert set(table[table.sum(1) > 0].argmax(1).tolist()) == {0, 1, 2, 3}  # every move has a code


# ---------------------------------------------------------------------------------------------- inverse model
@pytest.mark.parametrize("kind", ["continuous", "vq"])
def test_inverse_model_shapes_modes_and_save_load(kind, tmp_path):
    torch.manual_seed(0)
    inv = InverseModel(LatentActionConfig(kind=kind, dim=3, codes=5, latent_dim=16, hidden=32, label_dim=4)).train()
    z, z_next = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    latent = inv(z, z_next)
    assert latent.u.shape == latent.mean.shape == (2, 6, 3) and latent.loss.ndim == 0
    assert (latent.codes is None) == (kind == "continuous")
    if kind == "continuous":  # noisy while training, the mean in eval mode
        assert not torch.equal(latent.u, latent.mean)
        assert latent.metrics["kl"] > 0
    assert torch.equal(inv.infer(z, z_next).u, inv.infer(z, z_next).mean)
    assert inv.predict_action(latent).shape == (2, 6, 4)
    inv.save_pretrained(tmp_path / "inv")
    back = InverseModel.from_pretrained(tmp_path / "inv")
    assert back.config == inv.config and not back.training
    torch.testing.assert_close(back.infer(z, z_next).mean, inv.infer(z, z_next).mean)
    with pytest.raises(ModelFolderError, match="forethought.InverseModel"):
        WorldModel.from_pretrained(tmp_path / "inv")


def test_latent_action_config_refuses_bad_values():
    with pytest.raises(ValueError, match="--latent"):
        LatentActionConfig(kind="gumbel")
    with pytest.raises(ValueError, match="--codes"):
        LatentActionConfig(kind="vq", codes=1)
    assert LatentActionConfig(kind="vq", codes=8).bits == 3.0


def test_controllability_is_zero_for_a_predictor_that_ignores_the_action():
    torch.manual_seed(0)
    world = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(2,), action_dim=3, history=2))
    z, u = torch.randn(8, 4, 32), torch.randn(8, 3, 3)
    with torch.no_grad():
        gap, _ = shuffled_prediction_gap(world.predictor, z, u)  # AdaLN-zero: a fresh predictor ignores actions
    assert abs(float(gap)) < 1e-9
    for p in world.predictor.parameters():
        torch.nn.init.normal_(p, std=0.3)
    with torch.no_grad():
        gap, mse = shuffled_prediction_gap(world.predictor, z, u)
    assert float(gap) > 0.01 * float(mse)
    with pytest.raises(ValueError, match="at least 2"):
        shuffled_prediction_gap(world.predictor, z[:1], u[:1])


# ---------------------------------------------------------------------------------------------- action encoder
@pytest.mark.parametrize("kind", ["transformer", "mlp"])
def test_action_encoder_folds_exactly_into_an_ordinary_model(kind, tmp_path):
    torch.manual_seed(0)
    over = {} if kind == "transformer" else {"predictor": PredictorConfig(kind="mlp", width=32, depth=1)}
    stage1 = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(2,), action_dim=4, frameskip=None, **over))
    for p in stage1.parameters():
        torch.nn.init.normal_(p, std=0.2)
    stage2 = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(2,), action_dim=6, frameskip=3, **over))
    container, index, _ = action_layer(stage1.predictor, 32)
    encoder = torch.nn.Linear(6, 4)
    state = {k: v for k, v in stage1.state_dict().items() if not k.startswith(("predictor.action_embed.0.",
                                                                               "predictor.net.0."))}
    stage2.load_state_dict(state, strict=False)
    layer = install_action_encoder(stage2.predictor, copy.deepcopy(container[index]), encoder, 32)
    assert isinstance(layer, FoldedActionLinear)
    z, a = torch.randn(2, 4, 32), torch.randn(2, 4, 6)
    with torch.no_grad():
        unfolded = stage2.predictor.predict_sequence(z, a)
        if kind == "transformer":  # the stage-1 predictor fed the encoded actions: the same function
            torch.testing.assert_close(unfolded, stage1.predictor.predict_sequence(z, encoder(a)))
    assert fold_action_encoder(stage2.predictor, 32) and not fold_action_encoder(stage2.predictor, 32)
    assert type(action_layer(stage2.predictor, 32)[0][0]) is torch.nn.Linear
    stage2.save_pretrained(tmp_path / "m")
    loaded = WorldModel.from_pretrained(tmp_path / "m")
    with torch.no_grad():
        torch.testing.assert_close(loaded.predictor.predict_sequence(z, a), unfolded, atol=1e-5, rtol=1e-5)


def test_fit_linear_map_recovers_a_known_map():
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    w_true, b_true = torch.randn(3, 5), torch.tensor([1.0, -2.0, 0.5])
    w, b, r2 = fit_linear_map(x, x @ w_true.T + b_true)
    torch.testing.assert_close(w, w_true, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(b, b_true, atol=1e-3, rtol=1e-3)
    assert r2 > 0.999
    assert fit_linear_map(x, torch.randn(200, 2))[2] < 0.1
