"""GoalPolicy: save/load round trips exactly, bad folders are named, and a policy refuses an env it does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forethought.agent.compat import ModelEnvMismatch, check_model_env
from forethought.agent.policy_agent import PolicyAgent
from forethought.data.normalization import Normalizer, NormStats
from forethought.envs import make
from forethought.models import WorldModelConfig
from forethought.models.serialization import ModelFolderError
from forethought.policies.goal_policy import GoalPolicy, GoalPolicyConfig, is_policy_folder

TWOROOM = "forethought/TwoRoom-v0"


def _normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer(NormStats.fit(rng.uniform(-1, 1, (500, 2)) * [1.0, 0.5] + [0.1, 0.0]))


def _policy(frameskip: int = 2, env_id: str | None = TWOROOM) -> GoalPolicy:
    torch.manual_seed(0)
    arch = WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=2 * frameskip)
    cfg = GoalPolicyConfig(obs_shape=(3, 64, 64), action_dim=2 * frameskip, frameskip=frameskip, env_id=env_id,
                           latent_dim=arch.latent_dim, encoder=arch.encoder, hidden=32)
    return GoalPolicy(cfg, _normalizer().to_dict()).eval()


def _frames(n: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_save_load_round_trip_is_exact(tmp_path):
    policy = _policy()
    obs, goal = _frames(), _frames().flip(0)
    path = policy.save_pretrained(tmp_path / "policy")
    assert {p.name for p in path.iterdir()} == {"model.safetensors", "config.json", "normalization.json"}
    loaded = GoalPolicy.from_pretrained(path)
    with torch.no_grad():
        assert torch.equal(policy.act(obs, goal), loaded.act(obs, goal))
    assert loaded.config == policy.config and loaded.normalization == policy.normalization
    assert is_policy_folder(path) and is_policy_folder(tmp_path) is False


def test_a_world_model_folder_is_not_a_policy_and_a_damaged_config_is_named(tmp_path):
    from forethought.models import WorldModel

    WorldModel(WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=4)).save_pretrained(tmp_path / "wm")
    assert not is_policy_folder(tmp_path / "wm")
    with pytest.raises(ModelFolderError, match="expected 'forethought.GoalPolicy'"):
        GoalPolicy.from_pretrained(tmp_path / "wm")
    path = _policy().save_pretrained(tmp_path / "p")
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["hidden"] = "32"
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"config.json.*hidden"):
        GoalPolicy.from_pretrained(path)


def test_a_policy_refuses_an_env_it_does_not_fit(tmp_path):
    policy = _policy(frameskip=2)
    env = make(TWOROOM)
    assert check_model_env(policy, TWOROOM, env, model_dir="p") == []  # the world model's check reads policies too
    with pytest.raises(ModelEnvMismatch, match="trained on forethought/PushT-v0"):
        check_model_env(_policy(env_id="forethought/PushT-v0"), TWOROOM, env, model_dir="p")
    small = make(TWOROOM, image_size=32)
    with pytest.raises(ModelEnvMismatch, match="observations of shape"):
        check_model_env(policy, TWOROOM, small, model_dir="p")
    from gymnasium import spaces

    with pytest.raises(ValueError, match="3-d"):
        PolicyAgent(policy, action_space=spaces.Box(-1, 1, (3,), np.float32))


def test_config_checks_say_what_to_fix():
    from forethought.models.encoders import EncoderConfig

    with pytest.raises(ValueError, match="divid"):
        GoalPolicyConfig(obs_shape=(2,), action_dim=3, frameskip=2, encoder=EncoderConfig(kind="mlp"))
    with pytest.raises(ValueError, match="encoder kind"):
        GoalPolicyConfig(obs_shape=(2,), action_dim=2, frameskip=1)  # the default encoder is a CNN
    with pytest.raises(ValueError, match="Unknown policy method"):
        GoalPolicyConfig(obs_shape=(2,), action_dim=2, frameskip=1, method="ppo", encoder=EncoderConfig(kind="mlp"))


def test_policy_agent_splits_model_actions_into_env_actions_once_per_model_step():
    policy = _policy(frameskip=2)
    env = make(TWOROOM)
    agent = PolicyAgent(policy, action_space=env.action_space)
    frames = [_frames(2).permute(0, 2, 3, 1).numpy() for _ in range(5)]
    agent.reset(frames[0])
    actions = [agent.act(f) for f in frames[1:]]
    assert len(agent.decision_times) == 2  # 4 env steps, frameskip 2
    with torch.no_grad():  # the first decision's model action, denormalized and split time-major
        z = policy.encode(torch.as_tensor(np.stack([frames[1], frames[0]], 1)).permute(0, 1, 4, 2, 3))
        model_action = policy(z[:, 0], z[:, 1]).numpy()
    env_actions = np.clip(agent.normalizer.denormalize_action(model_action).reshape(2, 2, 2), -1, 1)
    np.testing.assert_allclose(np.stack(actions[:2], 1), env_actions, rtol=1e-5, atol=1e-6)
    assert all(a.shape == (2, 2) and a.dtype == np.float32 and np.abs(a).max() <= 1 for a in actions)
    agent.reset(frames[0][0])  # one observation: one action
    assert agent.act(frames[1][0]).shape == (2,)
