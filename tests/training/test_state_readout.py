"""--state-weight: an auxiliary readout of the true state from each latent (privileged supervision)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forethought.data import EpisodeStore, Normalizer
from forethought.data.collect import collect
from forethought.models import WorldModel
from forethought.training.api import train


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> EpisodeStore:
    path = tmp_path_factory.mktemp("readout") / "tworoom"
    collect("forethought/TwoRoom-v0", path, episodes=16, steps=40, policy="smooth", seed=5, progress=False)
    return EpisodeStore.open(path)


def _readout_error(model: WorldModel, store: EpisodeStore, episode: int) -> float:
    """Normalized MSE of the readout on one episode's frames (1.0 = predicting the mean state)."""
    ep = store.episode(episode)
    norm = Normalizer.from_dict(model.normalization)
    with torch.no_grad():
        z = model.encode(torch.as_tensor(ep.obs).permute(0, 3, 1, 2)[None])
        est = model.read_state(z)[0].numpy()
    return float(np.mean((est - norm.normalize_state(ep.state)) ** 2))


def test_state_readout_trains_is_saved_and_reads_the_state(store, tmp_path):
    common = dict(preset="tiny", steps=120, warmup_steps=5, progress=False, tensorboard=False, frameskip=1,
                  batch_size=16)
    model_dir = train(store.path, tmp_path / "with", state_weight=1.0, **common)
    model = WorldModel.from_pretrained(model_dir)
    assert model.config.readout_dim == 2 and model.readout is not None  # TwoRoom's state is (x, y)
    metrics = [json.loads(line) for line in (tmp_path / "with" / "metrics.jsonl").read_text().splitlines()]
    assert any("train/state_loss" in m for m in metrics)
    held_out = json.loads((tmp_path / "with" / "run.json").read_text())["val_episodes"][0]
    assert _readout_error(model, store, held_out) < 0.3  # far below the mean-state baseline of 1.0
    plain = WorldModel.from_pretrained(train(store.path, tmp_path / "without", **common))
    assert plain.readout is None and plain.config.readout_dim is None
    with pytest.raises(ValueError, match="state-weight"):
        plain.read_state(torch.zeros(1, 1, plain.latent_dim))


def test_recon_weight_adds_a_decoder_that_is_saved_and_trains_the_encoder(store, tmp_path):
    """--recon-weight: a pixel decoder trained through the encoder (not privileged: no state is read)."""
    common = dict(preset="tiny", steps=4, warmup_steps=0, progress=False, tensorboard=False, frameskip=1,
                  batch_size=4)
    model = WorldModel.from_pretrained(train(store.path, tmp_path / "recon", recon_weight=1.0, **common))
    assert model.decoder is not None and model.readout is None
    config = json.loads((tmp_path / "recon" / "train_config.json").read_text())
    assert config["recon_weight"] == 1.0
    metrics = [json.loads(line) for line in (tmp_path / "recon" / "metrics.jsonl").read_text().splitlines()]
    assert any("train/recon_loss" in m for m in metrics)
    with torch.no_grad():
        frames = model.decode(model.encode(torch.zeros(1, 2, 3, 64, 64, dtype=torch.uint8)))
    assert frames.shape == (1, 2, 3, 64, 64)
    with pytest.raises(ValueError, match="recon_weight must be a finite number >= 0"):
        train(store.path, tmp_path / "bad", recon_weight=-1.0, **common)
