"""Training a multi-step diffusion dynamics model in a frozen world model's latent space (`forethought train-dynamics`).

Every row of the used episodes is encoded once by the model's frozen encoder. An example is a
*window*: a current frame at any row ``s``, the ``h - 1`` model frames before it (``k`` rows apart,
``k`` = frameskip; those before the episode's start are padded and masked, as at the start of an
episode at run time), the model actions between them, the ``F`` model actions from ``s`` on
(``F * k`` env actions, normalized with the model's statistics) and the ``F`` latents they lead to.
Only windows whose whole future lies inside the episode are used (an episode of ``R`` env steps has
``R - F k + 1`` of them). The data statistics the model is scaled by (latent mean and std, the
spread and box of the displacements per step) are computed on the same windows before training.
The loop is the ordinary :class:`~forethought.training.trainer.Trainer` (checkpoints, ``--resume``,
``metrics.jsonl``). On the model's own dataset only the run's *training* episodes are used.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forethought.models.binding import model_binding
from forethought.models.diffusion_dynamics import (DYNAMICS_DIR, DiffusionDynamics, DynamicsConfig, load_dynamics,
                                                   save_dynamics)
from forethought.training.fit import fit_module
from forethought.training.latents import LatentChunks, encode_rows, part_episodes


class WindowDataset(LatentChunks):
    """``{"hist": (h, D), "past": (h-1, A), "mask": (h,), "actions": (F, A), "future": (F, D)}`` windows.

    Args: those of :class:`~forethought.training.latents.LatentChunks` (``F`` model steps predicted), and
        history: ``h`` model frames of history.
    """

    def __init__(self, latents: list[Tensor], actions: list[Tensor], horizon: int, frameskip: int,
                 history: int) -> None:
        super().__init__(latents, actions, horizon, frameskip)
        self.h = int(history)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        e, s = (int(v) for v in self.index[i])
        z, a, k, h = self.latents[e], self.actions[e], self.k, self.h
        n = min(h, s // k + 1)  # history frames inside the episode: rows s - (n-1) k, ..., s
        first = s - (n - 1) * k
        hist = z.new_zeros(h, z.shape[1])
        hist[h - n :] = z[first : s + 1 : k]
        mask = torch.zeros(h)
        mask[h - n :] = 1.0
        past = a.new_zeros(h - 1, a.shape[1] * k)  # the model actions between the history frames
        if n > 1:
            past[h - n :] = a[first:s].reshape(n - 1, -1)  # k consecutive env actions make one model action
        return {"hist": hist, "past": past, "mask": mask, "actions": a[s : s + self.F * k].reshape(self.F, -1),
                "future": z[s + k : s + self.F * k + 1 : k]}

    def statistics(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Latent mean / std ``(D,)`` over every row, and per step the std ``(F, D)`` of the displacement
        ``z_{s+(j+1)k} - z_s`` over every window and the box ``(F, D)`` of the displacement over that std."""
        every = torch.cat(self.latents).double()
        steps = torch.arange(1, self.F + 1) * self.k
        deltas = []
        for e, z in enumerate(self.latents):
            starts = torch.as_tensor(self.index[self.index[:, 0] == e][:, 1])
            if len(starts):
                deltas.append((z[starts[:, None] + steps[None]] - z[starts][:, None]).double())  # (S, F, D)
        d = torch.cat(deltas)
        std = d.std(0).clamp_min(1e-6) if len(d) > 1 else torch.ones_like(d[0])
        scaled = d / std
        return (every.mean(0).float(), every.std(0).float(), std.float(), scaled.amin(0).float(),
                scaled.amax(0).float())


class DynamicsLoss(nn.Module):
    """What the trainer optimizes: ``forward(batch) -> {"loss": DDPM loss}``."""

    def __init__(self, dynamics: DiffusionDynamics) -> None:
        super().__init__()
        self.dynamics = dynamics

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"loss": self.dynamics.loss(batch)}


def train_dynamics(model: str | Path, out: str | Path, *, data: str | Path | None = None, horizon: int = 5,
                   steps: int = 2000, history: int | None = None, episodes: int | None = None, width: int = 64,
                   depth: int = 3, dilation_growth: int = 2, diffusion_steps: int = 100, sample_steps: int = 10,
                   batch_size: int = 256, lr: float = 1e-3, seed: int = 0, device: str | None = None,
                   progress: bool = True, tensorboard: bool = False, resume: bool = False,
                   init: str | Path | None = None) -> Path:
    """Train diffusion dynamics for the world model at ``model`` (run or model folder) on ``data``
    (default: the run's dataset, its training episodes only); returns ``<out>/dynamics``.

    ``history`` (default: the model's) is at most the model's (the agent keeps that many frames);
    ``episodes`` keeps the first N usable episodes. ``init``: fine-tune these dynamics (trained for the
    same model) instead of starting from scratch; their architecture and statistics are kept.
    """
    from forethought.data.normalization import Normalizer
    from forethought.data.store import EpisodeStore
    from forethought.models import WorldModel
    from forethought.training.distributed import resolve_device
    from forethought.training.run_folder import RunPaths

    paths = RunPaths.resolve(model, data)
    if paths.data is None:
        raise ValueError("--data: the model folder has no run.json naming its dataset; pass the dataset")
    dev = resolve_device(device)
    wm = WorldModel.from_pretrained(paths.model, device=dev)
    if wm.normalization is None:
        raise ValueError(f"{paths.model}: the model carries no normalization statistics (its action space)")
    history = wm.history if history is None else history
    if not 1 <= history <= wm.history:
        raise ValueError(f"--history must be in [1, {wm.history}] (the model's history: the agent keeps that many "
                         f"frames), got {history}")
    store = EpisodeStore.open(paths.data)
    ids, note = part_episodes(paths.run, paths.data, store.num_episodes, episodes)
    latents, raw = encode_rows(wm, store, ids, dev)
    normalizer = Normalizer.from_dict(wm.normalization)
    actions = [normalizer.normalize_action(a) for a in raw]
    frameskip = getattr(wm.config, "frameskip", None) or max(1, wm.action_dim // raw[0].shape[-1])
    if frameskip * actions[0].shape[-1] != wm.action_dim:
        raise ValueError(f"{paths.data}: its actions give {frameskip * actions[0].shape[-1]}-d model actions, the model "
                         f"takes {wm.action_dim}; use the model's dataset (or one of the same env)")
    start = None
    if init is not None:
        start = load_dynamics(init, wm)  # refuses dynamics of another model
        c = start.config
        if c.horizon != horizon or c.history != history:
            raise ValueError(f"--init {init}: dynamics with horizon {c.horizon} and history {c.history}; pass "
                             f"--horizon {c.horizon} --history {c.history}")
        width, depth, dilation_growth, diffusion_steps = c.width, c.depth, c.dilation_growth, c.diffusion_steps
    dataset = WindowDataset(latents, actions, horizon, frameskip, history)
    config = DynamicsConfig(horizon=horizon, history=history, width=width, depth=depth,
                            dilation_growth=dilation_growth, diffusion_steps=diffusion_steps, sample_steps=sample_steps,
                            **model_binding(wm))
    torch.manual_seed(seed)
    dynamics = DiffusionDynamics(config).to(dev)
    if start is not None:
        dynamics.load_state_dict(start.state_dict())  # its statistics too: the parent's scale
    else:
        dynamics.set_statistics(*(t.to(dev) for t in dataset.statistics()))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"model": str(paths.model.resolve()), "data": str(Path(paths.data).resolve()),
                              "episodes": len(ids), "episodes_note": note, "windows": len(dataset),
                              "dynamics": DYNAMICS_DIR, "init": str(Path(init).resolve()) if init is not None else None}
    (out / "run.json").write_text(json.dumps(record, indent=1))
    metrics = fit_module(DynamicsLoss(dynamics), dataset, out, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                         device=str(dev), progress=progress, tensorboard=tensorboard, resume=resume,
                         meta={"kind": "dynamics"}, command="forethought train-dynamics")
    dynamics.config = dataclasses.replace(config, stats={**record, "steps": steps,
                                                         "final_loss": metrics.get("train/loss")})
    return save_dynamics(dynamics.cpu(), out / DYNAMICS_DIR)
