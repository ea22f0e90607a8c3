"""Distillation: train a :class:`~forethought.speculative.draft.DraftPredictor` to imitate a target.

The draft never sees ground-truth next frames: its regression targets are the target
predictor's own outputs, on two kinds of contexts (both in the frozen target encoder's space):

* dataset windows encoded by the target, teacher-forced (the states a rollout starts from);
* the target's own autoregressive rollouts from those starts, under the dataset's actions and
  then uniformly random actions in the env's box, ``rollout_steps`` long (the imagined states a
  long rollout drifts into, which is where a speculative rollout spends its time).

Nothing is backpropagated into the target; the examples are built once under ``no_grad`` and
the draft is fitted by Adam on them (single-threaded, about two minutes for the TwoRoom
``small`` model with the defaults).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from forethought.speculative.draft import (
    DraftConfig,
    DraftPredictor,
    distillation_loss,
    relative_error,
    save_draft,
    target_fingerprint,
)


@dataclass(frozen=True)
class DistillConfig:
    """Distillation settings.

    Attributes:
        episodes: dataset episodes encoded (one window per episode; fewer = faster).
        rollout_steps: length of the target rollouts whose states are distillation examples.
        max_examples: cap on training examples (subsampled uniformly when exceeded).
        width, depth: draft MLP size (see :class:`DraftConfig`).
        steps, batch_size, lr: Adam on the MSE to the target's predictions (cosine decay).
        val_fraction: fraction of episodes held out to report the draft's one-step error.
        seed: data subset, random actions, init and batch order.
    """

    episodes: int = 600
    rollout_steps: int = 200
    max_examples: int = 200_000
    width: int = 256
    depth: int = 2
    steps: int = 10000
    batch_size: int = 512
    lr: float = 1e-3
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("episodes", "rollout_steps", "max_examples", "width", "depth", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DistillConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"DistillConfig.lr must be > 0 (try 1e-3), got {self.lr}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"DistillConfig.val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class DistillData:
    """Examples ``(context latents (N, h, D), context actions (N, h, A)) -> target next (N, D)``."""

    z: torch.Tensor
    a: torch.Tensor
    y: torch.Tensor


def random_model_actions(model: Any, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Uniform env actions in ``[-1, 1]`` (the built-in envs' box), normalized with the model's stats.

    ``shape = (..., A)`` in model space; without normalization statistics the raw uniform values.
    """
    raw = torch.rand(shape, generator=gen) * 2 - 1
    if not model.normalization:
        return raw
    from forethought.data.normalization import Normalizer

    return Normalizer.from_dict(model.normalization).normalize_action(raw)


def encode_dataset(model: Any, data: str | os.PathLike[str], episodes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One window per episode of ``data``: ``(latents (E, T, D), normalized actions (E, T-1, A))``."""
    from forethought.data.normalization import Normalizer
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset

    store = EpisodeStore.open(data)
    from forethought.data.errors import require_actions

    require_actions(store, "distill needs action labels")
    env_a = int(store.layout["action_dim"])
    if model.action_dim % env_a:
        raise ValueError(f"model action dim {model.action_dim} is not a multiple of the dataset's {env_a}")
    k = model.action_dim // env_a
    span_frames = int(store.episode_lengths.min()) // k + 1  # the longest window every episode has
    if span_frames < model.history + 1:
        raise ValueError(f"episodes of {data} are too short for history {model.history} at frameskip {k}")
    ids = torch.randperm(store.num_episodes, generator=torch.Generator().manual_seed(seed))[:episodes]
    ds = WindowDataset(store, model.history, span_frames - model.history, k, episodes=ids.sort().values.numpy())
    norm = Normalizer.from_dict(model.normalization) if model.normalization else None
    zs, acts = [], []
    with torch.no_grad():
        for i in range(0, len(ds), 32):
            items = [ds[j] for j in range(i, min(i + 32, len(ds)))]
            obs = torch.stack([it["obs"] for it in items])  # (b, T, C, H, W)
            act = torch.stack([it["action"] for it in items])  # (b, T-1, A)
            zs.append(model.encode(obs))
            acts.append(norm.normalize_action(act) if norm is not None else act)
    return torch.cat(zs), torch.cat(acts)


def build_examples(model: Any, z: torch.Tensor, a: torch.Tensor, rollout_steps: int, gen: torch.Generator) -> DistillData:
    """Teacher-forced and rollout examples from encoded windows ``z (E, T, D)``, ``a (E, T-1, A)``."""
    from forethought.models.rollout import autoregressive_rollout

    h = model.history
    E, T, D = z.shape
    with torch.no_grad():
        # Teacher-forced: position t predicts z_{t+1} from z_{t-h+1..t}; keep full contexts only.
        pred = model.predictor.predict_sequence(z[:, :-1], a)  # (E, T-1, D)
        zw = z[:, :-1].unfold(1, h, 1).permute(0, 1, 3, 2)  # (E, T-h, h, D): windows ending at h-1..T-2
        aw = a.unfold(1, h, 1).permute(0, 1, 3, 2)
        ex = [(zw.reshape(-1, h, D), aw.reshape(-1, h, a.shape[-1]), pred[:, h - 1 :].reshape(-1, D))]
        # Rollouts: dataset actions first (half the starts), then random ones.
        acts = random_model_actions(model, (E, rollout_steps, a.shape[-1]), gen)
        n_data = min(rollout_steps, T - h)
        acts[: E // 2, :n_data] = a[: E // 2, h - 1 : h - 1 + n_data]
        roll = autoregressive_rollout(model.predictor, z[:, :h], acts, a[:, : h - 1])  # (E, R, D)
        full_z = torch.cat([z[:, :h], roll], dim=1)  # (E, h + R, D)
        full_a = torch.cat([a[:, : h - 1], acts], dim=1)  # (E, h - 1 + R, A)
        rz = full_z[:, :-1].unfold(1, h, 1).permute(0, 1, 3, 2)  # (E, R, h, D)
        ra = full_a.unfold(1, h, 1).permute(0, 1, 3, 2)
        ex.append((rz.reshape(-1, h, D), ra.reshape(-1, h, a.shape[-1]), roll.reshape(-1, D)))
    return DistillData(*(torch.cat([e[i] for e in ex]).contiguous() for i in range(3)))


def latent_scale(z: torch.Tensor) -> float:
    """``sqrt(E ||z - E z||^2)`` over latents ``(..., D)``: the unit of ``epsilon`` and of errors."""
    flat = z.reshape(-1, z.shape[-1])
    return float((flat - flat.mean(0)).pow(2).sum(-1).mean().sqrt())


def fit_draft(draft: DraftPredictor, train: DistillData, cfg: DistillConfig,
              log: Callable[[str], None] | None = None) -> None:
    """Adam with cosine decay on the MSE to the target's next-latent predictions."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(draft.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    n = train.y.shape[0]
    draft.train()
    for step in range(cfg.steps):
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=gen)
        loss = distillation_loss(draft, train.z[idx], train.a[idx], train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step % 500 == 0 or step == cfg.steps - 1):
            log(f"distill step {step}/{cfg.steps}: mse {loss.item():.3e}")
    draft.eval()


def distill(model: Any, data: str | os.PathLike[str], cfg: DistillConfig = DistillConfig(),
            log: Callable[[str], None] | None = None) -> DraftPredictor:
    """Distill a draft for ``model`` (a :class:`~forethought.models.WorldModel`) on dataset ``data``.

    The model is put in eval mode and left unchanged. The returned draft's config records the
    target's fingerprint, the latent scale and held-out one-step errors (relative to that scale).
    """
    t0 = time.perf_counter()
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    z, a = encode_dataset(model, data, cfg.episodes, cfg.seed)
    n_val = max(1, int(round(cfg.val_fraction * z.shape[0])))
    if z.shape[0] - n_val < 1:
        raise ValueError(f"distillation needs at least 2 episodes, got {z.shape[0]}; raise DistillConfig.episodes")
    scale = latent_scale(z)
    train = build_examples(model, z[n_val:], a[n_val:], cfg.rollout_steps, gen)
    val = build_examples(model, z[:n_val], a[:n_val], cfg.rollout_steps, gen)
    if train.y.shape[0] > cfg.max_examples:
        keep = torch.randperm(train.y.shape[0], generator=gen)[: cfg.max_examples]
        train = DistillData(train.z[keep], train.a[keep], train.y[keep])
    if log is not None:
        log(f"{train.y.shape[0]} training examples, latent scale {scale:.3f} ({time.perf_counter() - t0:.1f}s)")
    base = DraftConfig(model.latent_dim, model.action_dim, model.history, cfg.width, cfg.depth,
                       target_fingerprint(model), scale)
    torch.manual_seed(cfg.seed)
    draft = DraftPredictor(base)
    fit_draft(draft, train, cfg, log)
    with torch.no_grad():
        err = relative_error(draft.step(val.z, val.a), val.y, scale)
    stats = {"val_rel_error_mean": float(err.mean()), "val_rel_error_p90": float(err.quantile(0.9)),
             "train_examples": int(train.y.shape[0]), "episodes": int(z.shape[0]),
             "rollout_steps": cfg.rollout_steps, "steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1)}
    final = DraftPredictor(DraftConfig(**{**base.to_dict(), "stats": stats}))
    final.load_state_dict(draft.state_dict())
    return final.eval()


def distill_to_folder(model_path: str | os.PathLike[str], data: str | os.PathLike[str],
                      out: str | os.PathLike[str], cfg: DistillConfig = DistillConfig(),
                      log: Callable[[str], None] | None = None) -> Path:
    """Load ``model_path``, distill on ``data``, save the draft folder at ``out`` (atomic)."""
    from forethought.models import WorldModel

    model = WorldModel.from_pretrained(model_path)
    return save_draft(distill(model, data, cfg, log), out)
