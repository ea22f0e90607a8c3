"""`forethought train-dynamics` on a tiny real world model; loaded dynamics refuse a mismatched model."""

from __future__ import annotations

import json

import pytest
import torch

from forethought.cli import main
from forethought.data.collect import collect
from forethought.models import WorldModel
from forethought.models.diffusion_dynamics import DynamicsMismatchError, load_dynamics
from forethought.training.adapt import adapt
from forethought.training.api import train
from forethought.training.dynamics import train_dynamics

ENV = "forethought/TwoRoom-v0"
TINY = dict(preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
SMALL_DYN = ("--steps", "3", "--width", "8", "--depth", "1", "--diffusion-steps", "10", "--sample-steps", "2",
             "--batch-size", "16", "--no-progress")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamics")
    collect(ENV, root / "data", episodes=10, steps=30, policy="smooth", seed=1, progress=False)
    train(root / "data", root / "run", **TINY)
    assert main(["train-dynamics", "--model", str(root / "run"), "--horizon", "3", "--out", str(root / "dyn"),
                 *SMALL_DYN]) == 0
    return root


def test_trained_dynamics_name_their_model_and_use_training_episodes_only(runs):
    model = WorldModel.from_pretrained(runs / "run" / "model")
    dyn = load_dynamics(runs / "dyn", model)  # the --out folder or its dynamics/ both load
    cfg = dyn.config
    assert (cfg.horizon, cfg.history, cfg.latent_dim, cfg.action_dim) == (3, model.history, model.latent_dim,
                                                                          model.action_dim)
    assert cfg.env_id == ENV and cfg.frameskip == 1 and len(cfg.encoder_fingerprint) == 64 and cfg.action_stats
    run = json.loads((runs / "run" / "run.json").read_text())
    assert cfg.stats["episodes"] == len(run["train_episodes"]) < 10  # the held-out episodes stay unseen
    assert cfg.stats["windows"] == cfg.stats["episodes"] * (30 - 3 + 1) and cfg.stats["steps"] == 3
    assert (runs / "dyn" / "metrics.jsonl").is_file() and (runs / "dyn" / "ckpt").is_dir()  # the trainer's run folder
    z = torch.randn(2, 1, model.latent_dim)
    out = dyn.rollout(z, torch.zeros(2, 4, 5, model.action_dim), generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 4, 5, model.latent_dim) and torch.isfinite(out).all()  # 2 chained chunks


def test_dynamics_refuse_another_model_and_keep_an_adapted_one(runs):
    other = WorldModel.from_pretrained(train(runs / "data", runs / "other", seed=7, **TINY))
    with pytest.raises(DynamicsMismatchError, match="another model's latents .encoder fingerprint"):
        load_dynamics(runs / "dyn", other)
    skip2 = WorldModel.from_pretrained(train(runs / "data", runs / "skip2", frameskip=2, **TINY))
    with pytest.raises(DynamicsMismatchError, match="another action space: action_dim 2 .the model: 4."):
        load_dynamics(runs / "dyn", skip2)
    adapted = WorldModel.from_pretrained(adapt(runs / "run", runs / "data", runs / "adapted", steps=2, progress=False,
                                               tensorboard=False))
    load_dynamics(runs / "dyn", adapted)  # dynamics-only adaptation keeps the encoder and the action space


def test_init_and_bad_options(runs, tmp_path, capsys):
    start = load_dynamics(runs / "dyn")
    tuned = load_dynamics(train_dynamics(runs / "run", tmp_path / "tuned", horizon=3, steps=2, lr=1e-9,
                                         batch_size=16, init=runs / "dyn", progress=False))
    assert (tuned.config.width, tuned.config.depth) == (8, 1)  # the architecture of --init
    for (name, a), b in zip(start.state_dict().items(), tuned.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)  # started from it (lr ~ 0), same statistics
    with pytest.raises(ValueError, match="--horizon 3"):
        train_dynamics(runs / "run", tmp_path / "bad", horizon=4, steps=2, init=runs / "dyn", progress=False)
    assert main(["train-dynamics", "--model", str(runs / "run"), "--out", str(tmp_path / "h"), "--history", "9",
                 *SMALL_DYN]) == 2
    assert "forethought train-dynamics: --history must be in [1, 3]" in capsys.readouterr().err
    assert main(["train-dynamics", "--model", str(runs / "run"), "--out", str(tmp_path / "f"), "--horizon", "40",
                 *SMALL_DYN]) == 2
    assert "no episode has 40 env steps" in capsys.readouterr().err
