"""Draft predictor: distillation beats the copy-last start, folders round-trip, foreign targets are refused."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore
from forethought.models import WorldModel
from forethought.models.config import WorldModelConfig
from forethought.models.serialization import ModelFolderError
from forethought.speculative.arguments import add_distill_arguments, run_distill_from_args
from forethought.speculative.distill import DistillConfig, build_examples, distill, encode_dataset
from forethought.speculative.draft import (
    DraftConfig,
    DraftMismatchError,
    DraftPredictor,
    load_draft,
    relative_error,
    save_draft,
    target_fingerprint,
)

S_DIM, ACT = 5, 2


@pytest.fixture
def setup(tmp_path):
    """A vector-observation dataset (8 episodes x 16 steps) and a tiny model with non-trivial dynamics."""
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(tmp_path / "ds", meta={"env_id": "synthetic"}, obs_shape=(S_DIM,),
                                obs_dtype=np.float32, action_dim=ACT, state_dim=None)
    for i in range(8):
        t = 16
        store.append_episode(Episode.from_steps(
            obs=rng.normal(size=(t + 1, S_DIM)).astype(np.float32), action=rng.uniform(-1, 1, (t, ACT)).astype(np.float32),
            reward=np.zeros(t), terminated=np.zeros(t, bool), truncated=np.zeros(t, bool), seed=i))
    norm = store.save_stats()
    store.close()
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.preset("tiny", (S_DIM,), ACT, latent_dim=8), norm.to_dict())
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "model")
    return tmp_path, WorldModel.from_pretrained(tmp_path / "model")


def test_distillation_beats_the_copy_last_draft(setup):
    tmp, model = setup
    cfg = DistillConfig(episodes=8, rollout_steps=12, steps=300, batch_size=128, width=64, val_fraction=0.25)
    draft = distill(model, tmp / "ds", cfg)
    z, a = encode_dataset(model, tmp / "ds", 8, seed=1)
    ex = build_examples(model, z, a, 12, torch.Generator().manual_seed(0))
    scale = draft.config.latent_scale
    with torch.no_grad():
        trained = relative_error(draft.step(ex.z, ex.a), ex.y, scale).mean()
        copy_last = relative_error(DraftPredictor(draft.config).step(ex.z, ex.a), ex.y, scale).mean()
    assert trained < 0.5 * copy_last
    assert draft.config.target_fingerprint == target_fingerprint(model)
    assert draft.config.stats["train_examples"] > 0 and np.isfinite(draft.config.stats["val_rel_error_mean"])


def test_cli_distill_saves_a_draft_that_only_loads_with_its_target(setup, capsys):
    tmp, model = setup
    parser = add_distill_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--model", str(tmp / "model"), "--data", str(tmp / "ds"), "--out", str(tmp / "draft"),
                              "--episodes", "8", "--rollout-steps", "8", "--steps", "50", "--width", "32"])
    assert run_distill_from_args(args) == 0
    assert "draft saved to" in capsys.readouterr().out
    draft = load_draft(tmp / "draft", target=model)
    x, a = torch.randn(3, 3, 8), torch.randn(3, 3, ACT)
    again = load_draft(tmp / "draft")
    assert torch.equal(draft.step(x, a), again.step(x, a))  # save -> load is exact
    other = WorldModel.from_pretrained(tmp / "model")
    with torch.no_grad():
        other.predictor.head.bias.add_(1e-3)  # any change to the target's weights
    with pytest.raises(DraftMismatchError, match="different target"):
        load_draft(tmp / "draft", target=other)
    bad = parser.parse_args(["--model", str(tmp / "nope"), "--data", str(tmp / "ds"), "--out", str(tmp / "d2")])
    assert run_distill_from_args(bad) == 2


def test_draft_config_and_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="width"):
        DraftConfig(8, 2, 3, width=0)
    with pytest.raises(ValueError, match="latent_scale"):
        DraftConfig(8, 2, 3, latent_scale=0.0)
    with pytest.raises(ModelFolderError):
        load_draft(tmp_path / "missing")
    draft = DraftPredictor(DraftConfig(8, 2, 3))
    save_draft(draft, tmp_path / "d")
    model = WorldModel(WorldModelConfig.preset("tiny", (S_DIM,), 4, latent_dim=8))  # action dim 4, not 2
    with pytest.raises(DraftMismatchError, match="action_dim"):
        load_draft(tmp_path / "d", target=model)


def test_draft_predict_sequence_matches_step():
    draft = DraftPredictor(DraftConfig(8, 2, 3))
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z, a = torch.randn(2, 6, 8), torch.randn(2, 6, 2)
    seq = draft.predict_sequence(z, a)
    torch.testing.assert_close(seq[:, 4], draft.step(z[:, 2:5], a[:, 2:5]))  # full-context position
