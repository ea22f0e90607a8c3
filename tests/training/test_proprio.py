"""Proprioception (--proprio-dims): sensed state dims embedded into each latent, causal, saved, fed by eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.data import EpisodeStore
from forethought.data.collect import collect
from forethought.models import WorldModel, WorldModelConfig
from forethought.training.api import train


def _tiny(proprio_dims=(0,)) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", (3, 16, 16), action_dim=2, proprio_dims=proprio_dims)
    model = WorldModel(cfg, normalization={"action": {"mean": [0.0, 0.0], "std": [1.0, 1.0], "std_floor": 1e-6},
                                           "state": {"mean": [10.0, 0.0], "std": [2.0, 1.0], "std_floor": 1e-6}})
    return model.eval()


def test_proprio_enters_its_own_frame_only_and_predictions_after_it():
    model = _tiny()
    obs = torch.randint(0, 255, (1, 4, 3, 16, 16), dtype=torch.uint8)
    actions = torch.randn(1, 4, 2)
    p = torch.randn(1, 4, 1)
    p2 = p.clone()
    p2[:, 2] += 3.0  # change frame 2's sensed value only
    with torch.no_grad():
        z, z2 = model.encode(obs, p), model.encode(obs, p2)
        assert torch.equal(z[:, [0, 1, 3]], z2[:, [0, 1, 3]]) and not torch.allclose(z[:, 2], z2[:, 2])
        pred, pred2 = model.predict_sequence(z, actions), model.predict_sequence(z2, actions)
    # position t predicts frame t+1 from frames <= t: frames 0 and 1 do not see frame 2's proprio
    assert torch.equal(pred[:, :2], pred2[:, :2]) and not torch.allclose(pred[:, 2:], pred2[:, 2:])


def test_proprio_is_required_normalized_and_checked():
    model = _tiny()
    obs = torch.zeros(2, 1, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"proprioception \(state dims \(0,\)\).*pass proprio"):
        model.encode(obs)
    with pytest.raises(ValueError, match=r"proprio must be \(B, T, P\)"):
        model.encode(obs, torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(obs, torch.full((2, 1, 1), float("nan")))
    # state dim 0 has mean 10, std 2 in the stored statistics
    assert torch.allclose(model.proprio_from_state(torch.tensor([[14.0, 5.0]])), torch.tensor([[2.0]]))
    plain = _tiny(None)
    with pytest.raises(ValueError, match="takes no proprio"):
        plain.encode(obs, torch.zeros(2, 1, 1))
    with pytest.raises(ValueError, match="proprio_dims must be distinct"):
        WorldModelConfig.preset("tiny", (3, 16, 16), action_dim=2, proprio_dims=(0, 0))


@pytest.fixture(scope="module")
def proprio_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("proprio")
    collect("forethought/TwoRoom-v0", root / "data", episodes=12, steps=30, policy="smooth", seed=3, progress=False,
            env_kwargs={"image_size": 16})
    model_dir = train(root / "data", root / "run", preset="tiny", steps=30, warmup_steps=2, progress=False,
                      tensorboard=False, frameskip=1, batch_size=8, model_overrides={"proprio_dims": (1,)})
    return root, model_dir


def test_trained_with_proprio_saves_loads_and_refuses_a_bad_index(proprio_run, tmp_path):
    root, model_dir = proprio_run
    model = WorldModel.from_pretrained(model_dir)
    assert model.config.proprio_dims == (1,) and model.proprio is not None
    ep = EpisodeStore.open(root / "data").episode(0)
    obs = torch.as_tensor(ep.obs[:3]).permute(0, 3, 1, 2)[None]
    p = model.proprio_from_state(torch.as_tensor(ep.state[:3])[None])
    again = WorldModel.from_pretrained(model_dir)
    with torch.no_grad():
        assert torch.equal(model.encode(obs, p), again.encode(obs, p))
    with pytest.raises(ValueError, match=r"--proprio-dims \[5\] but the stored state has 2 dims"):
        train(root / "data", tmp_path / "bad", preset="tiny", steps=3, warmup_steps=1, progress=False,
              tensorboard=False, frameskip=1, batch_size=8, model_overrides={"proprio_dims": (5,)})


def test_eval_feeds_the_sensed_dims_only(proprio_run):
    from gymnasium.spaces import Box

    from forethought.agent import MPCAgent
    from forethought.evaluation.protocol import evaluate
    from forethought.evaluation.tasks import sample_tasks
    from forethought.planning import make_planner

    root, model_dir = proprio_run
    model = WorldModel.from_pretrained(model_dir)
    agent = MPCAgent(model, make_planner("cem", samples=8, iterations=2, seed=0),
                     action_space=Box(-1.0, 1.0, (2,), np.float32), horizon=2)
    assert agent.proprio_dims == (1,)
    with pytest.raises(ValueError, match=r"senses state dims \(1,\).*pass their raw values"):
        agent.reset(np.zeros((16, 16, 3), np.uint8))
    seen = []
    act = agent.act
    agent.act = lambda obs, proprio=None: (seen.append(proprio), act(obs, proprio=proprio))[1]
    store = EpisodeStore.open(root / "data")
    tasks = sample_tasks(store, [0, 1], 2, goal_offset=5)
    result = evaluate(agent, "forethought/TwoRoom-v0", {"image_size": 16}, tasks, budget=3)
    assert len(result.episodes) == 2
    assert all(p.shape == (2, 1) for p in seen)  # one sensed dim per episode, never the whole state
