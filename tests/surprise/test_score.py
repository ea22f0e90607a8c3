"""Surprise scores: agreement with WorldModel.surprise and with explicit rollouts, bad input, and a
trained model telling its own data from a teleport."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.models import WorldModel, WorldModelConfig
from forethought.surprise import (SurpriseCalibration, UncalibratedError, clip_scores, k_step_predictions,
                                  make_perturbation, paired_clips, surprise_scores)
from forethought.surprise.metrics import auroc

from .conftest import ENV_ID, ENV_KWARGS, FRAMESKIP


def _random_model(history: int = 2) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 32, 32), action_dim=4, history=history)
    model = WorldModel(cfg)
    with torch.no_grad():  # a predictor that does something: the residual head starts at zero
        for p in model.predictor.parameters():
            p.normal_(0, 0.2)
    return model.eval()


def _inputs(B: int = 2, T: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    obs = torch.randint(0, 256, (B, T, 3, 32, 32), dtype=torch.uint8, generator=g)
    return obs, torch.randn(B, T - 1, 4, generator=g)


def test_one_step_raw_scores_equal_world_model_surprise() -> None:
    model = _random_model()
    obs, actions = _inputs()
    torch.testing.assert_close(surprise_scores(model, obs, actions), model.surprise(obs, actions))


def test_calibration_normalizes_the_residual() -> None:
    model = _random_model()
    obs, actions = _inputs()
    D = model.latent_dim
    scale = torch.linspace(0.5, 2.0, D)
    mean, whitener = torch.full((D,), 0.1), torch.diag(torch.linspace(1.0, 3.0, D))
    cal = SurpriseCalibration(scale, {1: mean}, {1: whitener}, thresholds={})
    with torch.no_grad():
        z = model.encode(obs)
        r = model.predict_sequence(z[:, :-1], actions) - z[:, 1:]
    torch.testing.assert_close(surprise_scores(model, obs, actions, cal, kind="diag"), (r / scale).pow(2).mean(-1))
    torch.testing.assert_close(surprise_scores(model, obs, actions, cal),
                               ((r - mean) * torch.linspace(1.0, 3.0, D)).pow(2).mean(-1))
    with pytest.raises(UncalibratedError, match="--steps 1 2"):
        surprise_scores(model, obs, actions, cal, steps=2)


@pytest.mark.parametrize("steps", [2, 3])
def test_k_step_prediction_is_the_rollout_from_k_frames_back(steps: int) -> None:
    model = _random_model(history=2)
    obs, actions = _inputs(T=8)
    with torch.no_grad():
        z = model.encode(obs)
        preds = k_step_predictions(model, z, actions, steps)
        t = 5  # frame t+1 = 6, imagined from frame s = 6 - steps with the history (frames s-1, s)
        s = t + 1 - steps
        want = model.rollout(z[:, s - 1 : s + 1], actions[:, s : t + 1], actions[:, s - 1 : s])[:, -1]
        early = model.rollout(z[:, :1], actions[:, :1])[:, -1]  # frame 1: only one step is available
    torch.testing.assert_close(preds[:, t], want)
    torch.testing.assert_close(preds[:, 0], early)


def test_bad_input_says_what_is_wrong() -> None:
    model = _random_model()
    obs, actions = _inputs()
    with pytest.raises(ValueError, match="trailing shape"):
        surprise_scores(model, obs[..., :16], actions)  # frames of the wrong size
    with pytest.raises(ValueError, match="trailing shape"):
        surprise_scores(model, obs[:, :, :1], actions)  # wrong channels
    with pytest.raises(ValueError, match="A=4"):
        surprise_scores(model, obs, actions[..., :3])  # wrong action dim
    with pytest.raises(ValueError, match="T-1=6"):
        surprise_scores(model, obs, actions[:, :4])
    bad = actions.clone()
    bad[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        surprise_scores(model, obs, bad)
    with pytest.raises(ValueError, match="at least 2 frames"):
        surprise_scores(model, obs[:, :1], actions[:, :0])


def test_trained_model_scores_its_data_low_and_a_teleport_high(trained) -> None:
    env = make(ENV_ID, **ENV_KWARGS)
    policy = make_policy("smooth", env.action_space)
    pairs = [paired_clips(env, policy, make_perturbation("teleport"), 500 + i, 12, FRAMESKIP, 5) for i in range(12)]
    normal = clip_scores(trained.model, [a for a, _ in pairs], trained.normalizer, None)
    moved = clip_scores(trained.model, [b for _, b in pairs], trained.normalizer, None)
    event = pairs[0][1].event
    np.testing.assert_allclose(normal[:, :event], moved[:, :event], rtol=1e-5)  # identical before the event
    assert auroc(normal[:, event], moved[:, event]) > 0.95
    assert np.median(moved[:, event]) > 10 * np.median(normal)
