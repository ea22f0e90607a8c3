"""Linear probe: recovers linear structure exactly, scores held-out data, expands angles."""

from __future__ import annotations

import numpy as np
import torch

from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore
from forethought.evaluation.probe import _targets, fit_ridge, linear_probe, r2_score


def build_store(path, lengths):
    """Pixel episodes whose pixel (0, 0, 1) holds the row index; state = (row / 2, sin(row))."""
    store = EpisodeStore.create(path, meta={"env_id": "synthetic"}, obs_shape=(4, 5, 3), obs_dtype=np.uint8,
                                action_dim=2, state_dim=2)
    for t in lengths:
        rows = np.arange(t + 1)
        obs = np.zeros((t + 1, 4, 5, 3), np.uint8)
        obs[:, 0, 0, 1] = rows
        store.append_episode(Episode.from_steps(
            obs=obs, action=np.zeros((t, 2), np.float32), reward=np.zeros(t), terminated=np.zeros(t, bool),
            truncated=np.zeros(t, bool), state=np.stack([rows / 2, np.sin(rows)], axis=1)))
    return store


class FlattenEncoder(torch.nn.Module):
    """A world-model stand-in whose embedding is the raw pixels: `encode (B,T,C,H,W) -> (B,T,C*H*W)`."""

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.flatten(2).float()


def test_ridge_recovers_a_linear_map_and_r2_is_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    w_true = rng.normal(size=(6, 2))
    y = x @ w_true + 3.0
    w, b, mu, sd = fit_ridge(x, y, alpha=1e-9)
    np.testing.assert_allclose(((x - mu) / sd) @ w + b, y, atol=1e-5)
    assert np.all(r2_score(y, ((x - mu) / sd) @ w + b) > 0.999999)
    assert np.all(r2_score(y, np.zeros_like(y) + y.mean(0)) < 1e-9)  # predicting the mean scores 0


def test_angles_are_probed_as_cos_sin():
    state = np.array([[1.0, 0.0], [2.0, np.pi / 2]])
    t = _targets(state, [0, 1], angle_dims=[1])
    np.testing.assert_allclose(t, [[1.0, 1.0, 0.0], [2.0, 0.0, 1.0]], atol=1e-12)


def test_probe_reads_what_the_embedding_holds_on_held_out_episodes(tmp_path):
    # row / 2 is linear in the embedding, sin(row) is not (and the probe must say so on held-out data).
    build_store(tmp_path / "ds", lengths=(20, 18, 22, 19, 21, 20)).close()
    store = EpisodeStore.open(tmp_path / "ds")
    result = linear_probe(FlattenEncoder(), store, [0, 1, 2, 3], [4, 5])
    assert result.r2[0] > 0.999
    assert result.r2[1] < 0.5
    assert result.num_test == 21 + 22 and result.latent_dim == 4 * 5 * 3
