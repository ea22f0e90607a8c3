"""`forethought train-proposal` on a tiny real world model; a loaded proposal refuses a mismatched model."""

from __future__ import annotations

import json

import pytest
import torch

from forethought.cli import main
from forethought.data.collect import collect
from forethought.models import WorldModel
from forethought.policies import ProposalMismatchError, load_proposal, train_proposal
from forethought.policies.training import ChunkDataset
from forethought.training.adapt import adapt
from forethought.training.api import train

ENV = "forethought/TwoRoom-v0"
TINY = dict(preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("proposal")
    collect(ENV, root / "data", episodes=10, steps=30, policy="smooth", seed=1, progress=False)
    train(root / "data", root / "run", **TINY)
    train_proposal(root / "run", root / "prop", horizon=2, steps=4, width=16, depth=1, diffusion_steps=10,
                   sample_steps=3, batch_size=32, progress=False)
    return root


def test_trained_proposal_loads_for_its_model_and_samples(runs):
    model = WorldModel.from_pretrained(runs / "run" / "model")
    proposal = load_proposal(runs / "prop", model)
    cfg = proposal.config
    assert (cfg.horizon, cfg.action_dim, cfg.latent_dim, cfg.condition) == (2, model.action_dim, model.latent_dim, "goal")
    assert cfg.env_id == ENV and cfg.frameskip == 1 and len(cfg.encoder_fingerprint) == 64
    run = json.loads((runs / "run" / "run.json").read_text())
    assert cfg.stats["episodes"] == len(run["train_episodes"])  # the held-out episodes stay unseen
    z = torch.randn(3, model.latent_dim)
    chunks = proposal.sample(z, z.flip(0), 5, generator=torch.Generator().manual_seed(0))
    assert chunks.shape == (3, 5, 2, model.action_dim) and torch.isfinite(chunks).all()
    low, high = torch.tensor(cfg.action_low), torch.tensor(cfg.action_high)
    assert bool(((chunks >= low - 1e-5) & (chunks <= high + 1e-5)).all())


def test_a_proposal_refuses_another_model_and_keeps_an_adapted_one(runs):
    other = WorldModel.from_pretrained(train(runs / "data", runs / "other", seed=7, **TINY))
    with pytest.raises(ProposalMismatchError, match="another model's latents"):
        load_proposal(runs / "prop", other)
    skip2 = WorldModel.from_pretrained(train(runs / "data", runs / "skip2", frameskip=2, **TINY))
    with pytest.raises(ProposalMismatchError, match="another action space: action_dim 2 .the model: 4."):
        load_proposal(runs / "prop", skip2)
    adapted = WorldModel.from_pretrained(adapt(runs / "run", runs / "data", runs / "adapted", steps=2, progress=False,
                                               tensorboard=False))
    load_proposal(runs / "prop", adapted)  # dynamics-only adaptation keeps the encoder and the action space


def test_chunks_follow_the_window_convention():
    lat = [torch.arange(7.0)[:, None].expand(7, 2)]  # 7 rows: latent of row r is r
    act = [torch.arange(12.0).view(6, 2)]  # 6 env actions of 2 dims
    ds = ChunkDataset(lat, act, horizon=2, frameskip=2, goal_steps=1)
    assert len(ds) == 3  # starts 0, 1, 2: 4 env actions each
    item = ds[1]
    torch.testing.assert_close(item["action"], torch.tensor([[2.0, 3, 4, 5], [6, 7, 8, 9]]))  # 2 env actions per step
    assert item["z"][0] == 1 and item["goal"][0] == 3  # one model step = 2 rows ahead


def test_cli(runs, tmp_path, capsys):
    code = main(["train-proposal", "--model", str(runs / "run"), "--out", str(tmp_path / "p"), "--horizon", "2",
                 "--steps", "2", "--width", "8", "--depth", "1", "--batch-size", "16", "--condition", "none",
                 "--no-progress"])
    assert code == 0 and (tmp_path / "p" / "proposal" / "model.safetensors").is_file()
    assert load_proposal(tmp_path / "p").config.condition == "none"
    code = main(["train-proposal", "--model", str(runs / "run"), "--out", str(tmp_path / "q"), "--horizon", "0"])
    assert code == 2 and "forethought train-proposal: --horizon must be >= 1" in capsys.readouterr().err


def test_init_fine_tunes_an_existing_proposal(runs):
    from forethought.policies import load_proposal

    start = load_proposal(runs / "prop")
    out = train_proposal(runs / "run", runs / "tuned", horizon=2, steps=2, batch_size=16, lr=1e-9, init=runs / "prop",
                         progress=False)
    tuned = load_proposal(out)
    assert (tuned.config.width, tuned.config.depth) == (16, 1)  # the architecture of --init, not the defaults
    for a, b in zip(start.parameters(), tuned.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)  # started from it (lr ~ 0)
    with pytest.raises(ValueError, match="--horizon 2"):
        train_proposal(runs / "run", runs / "bad", horizon=3, steps=2, init=runs / "prop", progress=False)
