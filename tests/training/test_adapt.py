"""`forethought adapt`: dynamics-only fine-tuning leaves the encoder bit-identical; the new run loads and plans."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forethought.cli import main
from forethought.data.collect import collect
from forethought.models import WorldModel
from forethought.training.adapt import adapt, part_fingerprints
from forethought.training.api import train

from .toy import make_dot_store

ENV = "forethought/TwoRoom-v0"


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A tiny TwoRoom run with a state readout, and play data of the same env with a dead x motor."""
    root = tmp_path_factory.mktemp("adapt")
    collect(ENV, root / "data", episodes=10, steps=30, policy="smooth", seed=1, progress=False)
    collect(ENV, root / "weak", episodes=6, steps=30, policy="smooth", seed=100, env_kwargs={"motor_gain": [0.0, 1.0]},
            progress=False)
    train(root / "data", root / "run", preset="tiny", steps=3, warmup_steps=0, state_weight=1.0, progress=False,
          tensorboard=False)
    return root


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_dynamics_only_keeps_the_encoder_bit_identical_and_plans(parent):
    before = WorldModel.from_pretrained(parent / "run" / "model")
    out = adapt(parent / "run", parent / "weak", parent / "dyn", only="dynamics", steps=4, progress=False,
                tensorboard=False)
    after = WorldModel.from_pretrained(out)
    for part in ("encoder", "readout"):  # weights and BatchNorm statistics, bit for bit
        a, b = _state(getattr(before, part)), _state(getattr(after, part))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    assert any(not torch.equal(p, q) for p, q in zip(before.predictor.parameters(), after.predictor.parameters()))
    assert after.normalization == before.normalization  # the parent's action space

    info = json.loads((parent / "dyn" / "run.json").read_text())
    assert info["parent"]["model"] == str((parent / "run" / "model").resolve())
    assert info["data"] == str((parent / "weak").resolve())
    assert info["adapt"]["only"] == "dynamics" and info["adapt"]["trained"] == ["predictor"]
    assert set(info["adapt"]["frozen"]) == {"encoder", "readout"}
    assert info["parts"]["encoder"] == info["parent"]["parts"]["encoder"] == part_fingerprints(after)["encoder"]
    assert info["parts"]["predictor"] != info["parent"]["parts"]["predictor"]
    assert 0 < info["adapt"]["trainable_parameters"] < after.num_parameters()

    from forethought.agent import MPCAgent
    from forethought.envs import make
    from forethought.planning import make_planner

    env = make(ENV, motor_gain=[0.0, 1.0])
    obs, _ = env.reset(seed=0)
    agent = MPCAgent(after, make_planner("cem", samples=8, iterations=2), action_space=env.action_space, horizon=2)
    agent.reset(env.unwrapped.render_goal())
    assert env.action_space.contains(agent.act(obs))


def test_only_all_trains_the_encoder_and_episodes_limits_the_data(parent):
    out = adapt(parent / "run", parent / "weak", parent / "all", only="all", steps=3, episodes=3, progress=False,
                tensorboard=False)
    before, after = WorldModel.from_pretrained(parent / "run" / "model"), WorldModel.from_pretrained(out)
    assert any(not torch.equal(p, q) for p, q in zip(before.encoder.parameters(), after.encoder.parameters()))
    info = json.loads((parent / "all" / "run.json").read_text())
    assert sorted(info["train_episodes"] + info["val_episodes"]) == [0, 1, 2]
    assert info["adapt"]["frozen"] == []


def test_refusals(parent, tmp_path, capsys):
    dot = make_dot_store(tmp_path / "dot", episodes=3, steps=10)
    with pytest.raises(ValueError, match="test/Dot-v0"):
        adapt(parent / "run", dot, tmp_path / "x", steps=2, progress=False, tensorboard=False)
    code = main(["adapt", "--model", str(parent / "run"), "--data", str(parent / "weak"), "--out", str(tmp_path / "y"),
                 "--episodes", "99", "--steps", "2", "--no-progress"])
    assert code == 2 and "forethought adapt: --episodes must be in [1, 6]" in capsys.readouterr().err
    code = main(["adapt", "--model", str(parent / "run"), "--data", str(parent / "weak"), "--out", str(tmp_path / "z"),
                 "--steps", "2", "--no-progress", "--no-tensorboard", "--lr", "1e-4"])
    assert code == 0 and (tmp_path / "z" / "model" / "config.json").is_file()
    assert np.isclose(json.loads((tmp_path / "z" / "train_config.json").read_text())["lr"], 1e-4)
