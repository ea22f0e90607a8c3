"""Shared fixtures of the training tests: a small, real regression objective (not a mock).

The objective has what makes exact resume hard: dropout and an explicit `torch.rand` draw (the
global RNG stream must be restored), a BatchNorm (buffers), and AdamW moments.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearData(torch.utils.data.Dataset):
    """`y = x @ w` with fixed `w`: a task whose loss must go down."""

    def __init__(self, n: int = 256, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.linspace(-1.0, 1.0, 6).unsqueeze(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


class ToyObjective(nn.Module):
    """Regression loss plus a random-weighted penalty; `nan_at` makes the loss NaN from that call on."""

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 1))
        self.nan_at = nan_at
        self.calls = 0
        self.after_steps: list[int] = []

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.training:
            self.calls += 1
        pred_loss = (self.net(batch["x"]) - batch["y"]).pow(2).mean()
        reg = self.net[0].weight.pow(2).mean() * torch.rand(())  # consumes the global RNG on purpose
        if self.nan_at is not None and self.training and self.calls >= self.nan_at:
            pred_loss = pred_loss * float("nan")
        return {"loss": pred_loss + 0.01 * reg, "pred_loss": pred_loss, "reg": reg, "_h": batch["x"]}

    def after_step(self, step: int) -> None:
        self.after_steps.append(step)

    def diagnostics(self, out: dict[str, Tensor]) -> dict[str, float]:
        return {"x_std": float(out["_h"].std())}


def toy_params(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Interrupt(Exception):
    """Raised from `on_step` to stop a run the way a kill would (after that step, before the next)."""


def stop_after(step: int | None):
    """An `on_step` callback that raises `Interrupt` after `step` (never when `step` is None)."""

    def on_step(done: int, metrics: dict) -> None:
        if done == step:
            raise Interrupt

    return on_step


def run_toy(out, cfg, *, resume: bool = False, stop_at: int | None = None, objective: ToyObjective | None = None,
            tensorboard: bool = False):
    """Train `objective` (default a fresh `ToyObjective`) on `LinearData` into `out`; stop after step
    `stop_at` when given. Returns `(objective, trainer)`."""
    from forethought.training.trainer import Trainer

    torch.manual_seed(cfg.seed)  # as `train()` does before building the model
    objective = objective or ToyObjective()

    trainer = Trainer(objective, LinearData(256), cfg, out, val_set=LinearData(64, seed=1), progress=False,
                      tensorboard=tensorboard, on_step=stop_after(stop_at))
    try:
        trainer.fit(resume=resume)
    except Interrupt:
        pass
    return objective, trainer


def make_dot_store(path, episodes: int = 10, steps: int = 20, size: int = 16, seed: int = 0):
    """A real episode store: a 2x2 dot on a `size`x`size` image, moved by a 2-D action in [-1, 1].

    Its dynamics are learnable in a few dozen steps (the next frame depends on the action), which is
    what the "loss goes down" test needs, and it builds in well under a second.
    """
    import numpy as np

    from forethought.data.episode import Episode
    from forethought.data.store import EpisodeStore

    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path, meta={"env_id": "test/Dot-v0"}, obs_shape=(size, size, 3), obs_dtype=np.uint8,
                                action_dim=2, state_dim=2)
    for ep in range(episodes):
        pos = rng.uniform(2, size - 3, size=2)
        actions = rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
        states = [pos.copy()]
        for a in actions:
            pos = np.clip(pos + 1.5 * a, 0, size - 2)
            states.append(pos.copy())
        states = np.asarray(states)
        obs = np.zeros((steps + 1, size, size, 3), dtype=np.uint8)
        for t, (x, y) in enumerate(states.astype(int)):
            obs[t, y:y + 2, x:x + 2] = (255, 128, 0)
        store.append_episode(Episode.from_steps(obs, actions, np.zeros(steps), np.zeros(steps, bool),
                                                np.zeros(steps, bool), state=states, seed=ep))
    store.save_stats()
    store.close()
    return path
