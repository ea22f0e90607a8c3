"""Stage 1 without actions (`pretrain`) and stage 2 from it (`train --init`), on real tiny stores and models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from forethought.cli import main
from forethought.data.errors import ActionFreeError
from forethought.data.store import EpisodeStore
from forethought.models import WorldModel
from forethought.models.latent_actions import InverseModel
from forethought.training.logging import read_metrics
from forethought.training.pretrain import labelled_episodes, pretrain
from forethought.training.stage2 import train_from_init

from .toy import Interrupt, make_dot_store, stop_after

FAST = dict(progress=False, tensorboard=False)
TINY = dict(preset="tiny", latent_dim=4, codes=4, inverse_hidden=32, **FAST)


def _drop_actions(src: Path, dst: Path) -> Path:
    """An action-free copy of a store (what `collect --drop-actions` would have written)."""
    store = EpisodeStore.open(src)
    out = EpisodeStore.create(dst, meta=dict(store.meta), obs_shape=tuple(store.layout["obs_shape"]),
                              obs_dtype=np.uint8, action_dim=0, state_dim=store.layout["state_dim"])
    out.append_episodes([store.episode(i).without_actions() for i in range(len(store))])
    out.save_stats()
    out.close()
    return dst


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("latent")
    labelled = make_dot_store(root / "dots", episodes=10, steps=20)
    return labelled, _drop_actions(labelled, root / "video")


@pytest.fixture(scope="module")
def stage1(stores, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stage1") / "run"
    pretrain(stores[1], out, latent="continuous", steps=12, warmup_steps=2, log_every=4, eval_every=6, **TINY)
    return out


def test_pretrain_on_frames_alone_saves_a_loadable_model_and_inverse_model(stage1, stores):
    model = WorldModel.from_pretrained(stage1 / "model")
    inverse = InverseModel.from_pretrained(stage1 / "inverse")
    assert model.action_dim == inverse.dim == 4 and model.config.frameskip is None
    assert model.normalization["action"] is None and model.normalization["state"] is not None
    assert inverse.config.kind == "continuous" and inverse.config.latent_dim == model.latent_dim
    assert inverse.config.frameskip == 1 and inverse.action_head is None
    run = json.loads((stage1 / "run.json").read_text())
    assert run["stage"] == "pretrain" and run["latent"] == inverse.config.to_dict() and not run["dataset_has_actions"]
    records = read_metrics(stage1)
    last = records[-1]
    for key in ("train/pred_loss", "train/reg", "train/latent_loss", "train/kl", "diag/controllability",
                "diag/controllability_ratio", "val/controllability", "val/pred_loss"):
        assert key in last, key
    assert last["train/pred_loss"] < records[0]["train/pred_loss"]


def test_vq_pretraining_with_label_supervision_and_exact_resume(stores, tmp_path):
    opts = dict(latent="vq", label_fraction=0.25, steps=8, warmup_steps=2, ckpt_every=4, eval_every=4, log_every=2,
                **TINY)
    pretrain(stores[0], tmp_path / "full", **opts)

    with pytest.raises(Interrupt):
        pretrain(stores[0], tmp_path / "cut", on_step=stop_after(6), **opts)
    pretrain(stores[0], tmp_path / "cut", resume=True, **opts)
    for part in ("model", "inverse"):
        full = load_file(str(tmp_path / "full" / part / "model.safetensors"))
        cut = load_file(str(tmp_path / "cut" / part / "model.safetensors"))
        for name in full:
            torch.testing.assert_close(cut[name], full[name], rtol=0, atol=1e-6, msg=f"{part}.{name}")
    run = json.loads((tmp_path / "full" / "run.json").read_text())
    assert 1 <= len(run["labelled_episodes"]) < len(run["train_episodes"])
    assert set(run["labelled_episodes"]) <= set(run["train_episodes"])
    inverse = InverseModel.from_pretrained(tmp_path / "full" / "inverse")
    assert inverse.config.label_dim == 2 and bool(inverse.quantizer.initialized)
    last = read_metrics(tmp_path / "full")[-1]
    assert "train/label_loss" in last and "diag/code_perplexity" in last and "val/label_loss" in last


def test_label_supervision_needs_actions(stores, tmp_path):
    with pytest.raises(ActionFreeError, match="--label-fraction"):
        pretrain(stores[1], tmp_path / "run", label_fraction=0.1, steps=2, warmup_steps=0, **TINY)
    assert labelled_episodes(list(range(40)), 0.025, 0) == labelled_episodes(list(range(40)), 0.025, 0)
    assert len(labelled_episodes(list(range(40)), 0.025, 0)) == 1 and labelled_episodes([1, 2], 0.0, 0) == []


def test_stage2_starts_from_stage1_and_saves_an_ordinary_model(stage1, stores, tmp_path):
    s1 = WorldModel.from_pretrained(stage1 / "model")
    path = train_from_init(stage1, stores[0], tmp_path / "s2", preset="tiny", steps=4, warmup_steps=1, episodes=6,
                           freeze_encoder=True, **FAST)
    s2 = WorldModel.from_pretrained(path)
    assert s2.action_dim == 2 and s2.config.frameskip == 1 and s2.config.env_id == "test/Dot-v0"
    assert s2.normalization["action"]["count"] == 6 * 20  # statistics of the 6 labelled episodes used
    for (name, a), (_, b) in zip(s1.encoder.state_dict().items(), s2.encoder.state_dict().items()):
        assert torch.equal(a, b), name  # frozen: weights and BatchNorm statistics
    trunk = {k: v for k, v in s1.predictor.state_dict().items() if not k.startswith("action_embed.0.")}
    assert any(not torch.equal(v, s2.predictor.state_dict()[k]) for k, v in trunk.items())  # fine-tuned
    run = json.loads((tmp_path / "s2" / "run.json").read_text())
    assert run["stage2"]["episodes"] == 6 and run["stage2"]["trained"] == ["action_encoder", "predictor"]
    assert max(run["train_episodes"] + run["val_episodes"]) < 6
    assert run["parts"]["encoder"] == run["init"]["parts"]["encoder"]
    assert -1.0 <= run["stage2"]["action_encoder_init_r2"] <= 1.0


def test_stage2_with_a_frozen_predictor_trains_only_the_action_encoder(stage1, stores, tmp_path):
    s1 = WorldModel.from_pretrained(stage1 / "model")
    code = main(["train", "--init", str(stage1), "--data", str(stores[0]), "--out", str(tmp_path / "s2"), "--preset",
                 "tiny", "--steps", "3", "--warmup-steps", "1", "--freeze-encoder", "--freeze-predictor",
                 "--no-progress", "--no-tensorboard"])
    assert code == 0
    s2 = WorldModel.from_pretrained(tmp_path / "s2" / "model")
    for k, v in s1.predictor.state_dict().items():
        if not k.startswith("action_embed.0."):
            assert torch.equal(v, s2.predictor.state_dict()[k]), k
    # the folded first action layer is the stage-1 layer after a linear map of the 2-d actions
    w1, w2 = s1.predictor.action_embed[0].weight, s2.predictor.action_embed[0].weight
    assert w2.shape == (w1.shape[0], 2)
    run = json.loads((tmp_path / "s2" / "run.json").read_text())
    assert run["stage2"]["trained"] == ["action_encoder"] and run["stage2"]["trainable_parameters"] == 4 * 2 + 4


def test_stage2_refuses_what_it_cannot_use(stage1, stores, tmp_path, capsys):
    code = main(["train", "--init", str(stores[0]), "--data", str(stores[0]), "--out", str(tmp_path / "a"),
                 "--preset", "tiny"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("forethought train: --init:") and "forethought pretrain" in err
    code = main(["train", "--init", str(stage1), "--data", str(stores[1]), "--out", str(tmp_path / "b"),
                 "--preset", "tiny"])
    err = capsys.readouterr().err
    assert code == 2 and "the dataset has no actions" in err
    code = main(["train", "--init", str(stage1), "--data", str(stores[0]), "--out", str(tmp_path / "c"),
                 "--preset", "tiny", "--frameskip", "2"])
    assert code == 2 and "--frameskip: 2 differs from the pretrained run's 1" in capsys.readouterr().err
    code = main(["train", "--data", str(stores[0]), "--out", str(tmp_path / "d"), "--freeze-encoder"])
    assert code == 2 and "need --init" in capsys.readouterr().err


def test_train_on_the_first_episodes_only(stores, tmp_path):
    from forethought.training.api import train

    train(stores[0], tmp_path / "run", preset="tiny", steps=2, warmup_steps=0, episodes=4, **FAST)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert sorted(run["train_episodes"] + run["val_episodes"]) == [0, 1, 2, 3] and run["episodes"] == 4
    model = WorldModel.from_pretrained(tmp_path / "run" / "model")
    assert model.normalization["action"]["count"] == 4 * 20
