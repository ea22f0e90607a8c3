"""Multi-step diffusion dynamics on a deterministic linear toy: it learns the future, chains chunks, saves exactly."""

from __future__ import annotations

import json

import pytest
import torch

from forethought.models.diffusion_dynamics import DiffusionDynamics, DynamicsConfig, load_dynamics, save_dynamics
from forethought.training.dynamics import WindowDataset
from tests.models.linear_toy import A, D, F, H, linear_episodes, train_linear_dynamics


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_linear_dynamics(tmp_path_factory.mktemp("dyn") / "run")


def test_windows_follow_the_convention():
    lat = [torch.arange(9.0)[:, None].expand(9, 2)]  # latent of row r is r
    act = [torch.arange(16.0).view(8, 2)]  # 8 env actions of 2 dims
    ds = WindowDataset(lat, act, horizon=2, frameskip=2, history=3)
    assert len(ds) == 5  # current rows 0..4: 4 env actions ahead each
    item = ds[2]  # current row 2: history rows -2 (absent), 0, 2
    torch.testing.assert_close(item["mask"], torch.tensor([0.0, 1, 1]))
    torch.testing.assert_close(item["hist"][:, 0], torch.tensor([0.0, 0, 2]))
    torch.testing.assert_close(item["past"], torch.tensor([[0.0, 0, 0, 0], [0, 1, 2, 3]]))  # rows 0-1 lead 0 -> 2
    torch.testing.assert_close(item["actions"], torch.tensor([[4.0, 5, 6, 7], [8, 9, 10, 11]]))
    torch.testing.assert_close(item["future"][:, 0], torch.tensor([4.0, 6]))


def _truth(latents, actions, start: int, steps: int):
    z_hist = torch.stack([z[start - H + 1 : start + 1] for z in latents])
    a_hist = torch.stack([a[start - H + 1 : start] for a in actions])
    acts = torch.stack([a[start : start + steps] for a in actions])
    future = torch.stack([z[start + 1 : start + 1 + steps] for z in latents])
    return z_hist, a_hist, acts, future


def test_it_predicts_the_linear_future_far_below_a_constant_guess(trained):
    latents, actions = linear_episodes(32, 14, seed=1)  # unseen episodes
    z_hist, a_hist, acts, future = _truth(latents, actions, start=3, steps=2 * F)
    pred = trained.predict(z_hist, acts, a_hist, generator=torch.Generator().manual_seed(0))  # 2 chained chunks
    assert pred.shape == future.shape
    err = (pred - future).pow(2).mean((0, 2))  # (2F,) per step
    constant = (z_hist[:, -1:] - future).pow(2).mean((0, 2))
    assert bool((err[:F] < 0.02 * constant[:F]).all()), (err, constant)  # ~0.002 after 150 steps; untrained: 1
    assert err[F:].mean() < 0.05 * constant[F:].mean()  # the second chunk, from sampled history


def test_candidates_share_noise_and_short_horizons_pad(trained):
    latents, actions = linear_episodes(2, 10, seed=2)
    z_hist, a_hist, acts, _ = _truth(latents, actions, start=1, steps=F)
    cands = torch.stack([acts, acts, -acts], dim=1)  # (B, 3, F, A): two equal candidates
    out = trained.rollout(z_hist, cands, a_hist, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, F, D)
    torch.testing.assert_close(out[:, 0], out[:, 1])  # same actions, same noise: the same future
    short = trained.rollout(z_hist, cands[:, :, :2], a_hist, generator=torch.Generator().manual_seed(0))
    assert short.shape == (2, 3, 2, D)
    one = trained.rollout(z_hist[:, -1:], cands, None, generator=torch.Generator().manual_seed(0))  # L = 1: masked
    assert torch.isfinite(one).all()


def test_save_load_is_exact_and_names_its_type(trained, tmp_path):
    path = save_dynamics(trained, tmp_path / "dyn")
    loaded = load_dynamics(path)
    for k, v in trained.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    latents, actions = linear_episodes(3, 10, seed=3)
    z_hist, a_hist, acts, _ = _truth(latents, actions, start=2, steps=6)
    a = trained.predict(z_hist, acts, a_hist, generator=torch.Generator().manual_seed(5))
    b = loaded.predict(z_hist, acts, a_hist, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    meta = json.loads((path / "config.json").read_text())
    assert meta["model_type"] == "forethought.DiffusionDynamics" and meta["config"]["horizon"] == F
    (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated"):
        load_dynamics(path)


def test_config_checks():
    with pytest.raises(ValueError, match="horizon"):
        DynamicsConfig(latent_dim=D, action_dim=A, horizon=0)
    with pytest.raises(ValueError, match="sample_steps"):
        DynamicsConfig(latent_dim=D, action_dim=A, horizon=F, diffusion_steps=4, sample_steps=5)
    dyn = DiffusionDynamics(DynamicsConfig(latent_dim=D, action_dim=A, horizon=F))
    with pytest.raises(ValueError, match="z_hist must be"):
        dyn.predict(torch.zeros(2, 1, D + 1), torch.zeros(2, F, A))
    with pytest.raises(ValueError, match="actions must be"):
        dyn.rollout(torch.zeros(2, 1, D), torch.zeros(2, F, A))
