"""Linear probes: how much of the true state can be read linearly from a world model's embedding.

A probe is fitted on embeddings of training episodes and scored on held-out episodes, so a high
R² means the latent space carries the state, not that the probe memorized frames. Ridge regression
in closed form (standardized inputs, intercept unpenalized) keeps it deterministic and fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from forethought.objectives.diagnostics import effective_rank


@dataclass(frozen=True)
class ProbeResult:
    """R² of a ridge probe per state dimension, on held-out data, plus latent-collapse diagnostics."""

    r2: tuple[float, ...]
    r2_mean: float
    effective_rank: float
    latent_dim: int
    mean_dim_std: float
    num_train: int
    num_test: int

    def to_dict(self) -> dict:
        return {
            "r2": list(self.r2),
            "r2_mean": self.r2_mean,
            "effective_rank": self.effective_rank,
            "latent_dim": self.latent_dim,
            "mean_dim_std": self.mean_dim_std,
            "num_train": self.num_train,
            "num_test": self.num_test,
        }


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``y ≈ ((x - mu) / sd) @ w + b``. x: (N, D), y: (N, S). Returns (w, b, mu, sd)."""
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected x (N, D) and y (N, S) with the same N, got {x.shape} and {y.shape}")
    mu, sd = x.mean(0), x.std(0) + 1e-8
    xs = (x - mu) / sd
    b = y.mean(0)
    gram = xs.T @ xs + alpha * len(xs) * np.eye(xs.shape[1])
    w = np.linalg.solve(gram, xs.T @ (y - b))
    return w, b, mu, sd


def r2_score(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column. y, pred: (N, S) -> (S,)."""
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0) + 1e-12
    return 1.0 - ss_res / ss_tot


def _targets(state: np.ndarray, dims: Sequence[int], angle_dims: Sequence[int]) -> np.ndarray:
    """(N, S) -> (N, S') with the chosen columns, each angle column expanded to (cos, sin)."""
    cols = []
    for d in dims:
        cols.extend([np.cos(state[:, d]), np.sin(state[:, d])] if d in angle_dims else [state[:, d]])
    return np.stack(cols, axis=1)


@torch.no_grad()
def embed_episodes(model, store, episodes: Sequence[int], *, batch_size: int = 256, stride: int = 1):
    """Encode every ``stride``-th frame of the given episodes.

    Returns (z (N, D) float64, state (N, S) float64). ``model.encode`` takes (B, T, ...) frames.
    """
    model.eval()
    zs, states = [], []
    for i in episodes:
        ep = store.episode(int(i))
        if ep.state is None:
            raise ValueError("probing needs the true state; this dataset stores none")
        obs = torch.as_tensor(ep.obs[::stride])
        if obs.ndim == 4:  # pixels (T, H, W, C) -> (T, C, H, W)
            obs = obs.permute(0, 3, 1, 2)
        sensed = getattr(model, "proprio", None) is not None  # a model with proprioception also gets those dims
        proprio = model.proprio_from_state(torch.as_tensor(ep.state[::stride])) if sensed else None
        for start in range(0, len(obs), batch_size):
            chunk = obs[start : start + batch_size].unsqueeze(0)  # (1, t, ...)
            p = None if proprio is None else proprio[start : start + batch_size].unsqueeze(0)
            z = model.encode(chunk) if p is None else model.encode(chunk, p)
            zs.append(z[0].double().numpy())
        states.append(np.asarray(ep.state[::stride], dtype=np.float64))
    return np.concatenate(zs), np.concatenate(states)


def linear_probe(
    model,
    store,
    train_episodes: Sequence[int],
    test_episodes: Sequence[int],
    *,
    state_dims: Sequence[int] | None = None,
    angle_dims: Sequence[int] = (),
    stride: int = 1,
    alpha: float = 1e-3,
) -> ProbeResult:
    """Fit a ridge probe embedding -> true state on ``train_episodes``, score R² on ``test_episodes``.

    ``state_dims`` selects state columns; each column in ``angle_dims`` (also in ``state_dims``, if
    given) is probed as its (cos, sin) pair, since a wrapped angle is not a linear target.
    """
    z_tr, s_tr = embed_episodes(model, store, train_episodes, stride=stride)
    z_te, s_te = embed_episodes(model, store, test_episodes, stride=stride)
    dims = list(range(s_tr.shape[1])) if state_dims is None else list(state_dims)
    s_tr, s_te = (_targets(s, dims, angle_dims) for s in (s_tr, s_te))
    w, b, mu, sd = fit_ridge(z_tr, s_tr, alpha)
    r2 = r2_score(s_te, ((z_te - mu) / sd) @ w + b)
    z_t = torch.as_tensor(z_te, dtype=torch.float32)
    return ProbeResult(
        r2=tuple(float(v) for v in r2),
        r2_mean=float(r2.mean()),
        effective_rank=float(effective_rank(z_t)),
        latent_dim=int(z_te.shape[1]),
        mean_dim_std=float(z_t.std(0).mean()),
        num_train=len(z_tr),
        num_test=len(z_te),
    )
