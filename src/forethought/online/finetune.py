"""Fine-tune only the predictor (the dynamics) on episodes, with the encoder frozen.

The encoder is frozen, so every frame is encoded once per update and training runs on latent
windows: ``history + horizon`` consecutive model frames ``z (T, D)`` and the ``T - 1`` normalized
model actions between them. The loss is the training loss's prediction term
(:func:`forethought.objectives.prediction.teacher_forced_loss`, plus the rollout loss if asked),
optimized by the project's :class:`~forethought.training.trainer.Trainer` (AdamW, warm-up + cosine,
clipping, non-finite checks) on a *copy* of the predictor: the live model is untouched until the
caller swaps the result in.

:data:`DynamicsUpdate` is the seam: anything with :func:`finetune_predictor`'s signature can replace
it (e.g. the ``forethought adapt`` recipe), and the online agent does not change.
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch
from torch import Tensor, nn

from forethought.data.normalization import Normalizer
from forethought.models import WorldModel
from forethought.objectives.prediction import rollout_loss, teacher_forced_loss
from forethought.surprise.calibration import clip_latents
from forethought.surprise.clips import Clip


@dataclass
class LatentEpisodes:
    """Encoded episodes, grouped by length: each group ``(z (E, T, D), actions (E, T-1, A))``."""

    groups: list[tuple[Tensor, Tensor]]

    @property
    def episodes(self) -> int:
        return sum(z.shape[0] for z, _ in self.groups)


@torch.no_grad()
def encode_clips(model: WorldModel, clips: Sequence[Clip], normalizer: Normalizer) -> LatentEpisodes:
    """Encode clips (episodes at the model's rate) once, grouped by length (they batch per length)."""
    by_length: dict[int, list[Clip]] = {}
    for c in clips:
        by_length.setdefault(len(c), []).append(c)
    groups = [tuple(t.cpu() for t in clip_latents(model, group, normalizer)) for _, group in sorted(by_length.items())]
    return LatentEpisodes(groups)  # type: ignore[arg-type]


class LatentWindows(torch.utils.data.Dataset):
    """Every window of ``window`` consecutive frames of every episode: ``{"z": (W, D), "action": (W-1, A)}``."""

    def __init__(self, episodes: LatentEpisodes, window: int) -> None:
        if window < 2:
            raise ValueError(f"a training window needs >= 2 frames, got {window}")
        self.episodes, self.window = episodes, window
        self.index = [(g, e, s) for g, (z, _) in enumerate(episodes.groups) for e in range(z.shape[0])
                      for s in range(z.shape[1] - window + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        g, e, s = self.index[i]
        z, a = self.episodes.groups[g]
        return {"z": z[e, s : s + self.window], "action": a[e, s : s + self.window - 1]}

    def batches(self, size: int = 256) -> list[dict[str, Tensor]]:
        """All windows in order, ``size`` at a time (for evaluation)."""
        out = []
        for lo in range(0, len(self), size):
            items = [self[i] for i in range(lo, min(lo + size, len(self)))]
            out.append({k: torch.stack([it[k] for it in items]) for k in items[0]})
        return out


class PredictorObjective(nn.Module):
    """The trainer's objective: the prediction loss of ``predictor`` on latent windows (encoder frozen)."""

    def __init__(self, predictor: nn.Module, history: int, rollout_weight: float = 0.0) -> None:
        super().__init__()
        self.predictor, self.history, self.rollout_weight = predictor, int(history), float(rollout_weight)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        z, a = batch["z"].float(), batch["action"].float()  # (B, W, D), (B, W-1, A)
        pred = teacher_forced_loss(self.predictor, z, a)
        out = {"loss": pred, "pred_loss": pred.detach()}
        if self.rollout_weight:
            roll = rollout_loss(self.predictor, z, a, context=min(self.history, z.shape[1] - 1))
            out["loss"] = pred + self.rollout_weight * roll
            out["rollout_loss"] = roll.detach()
        return out


@torch.no_grad()
def prediction_error(predictor: nn.Module, windows: LatentWindows) -> float:
    """Mean one-step (teacher-forced) squared latent error over every window, in eval mode."""
    was = predictor.training
    predictor.eval()
    total, count = 0.0, 0
    try:
        for batch in windows.batches():
            device = next(predictor.parameters()).device
            n = batch["z"].shape[0]
            total += float(teacher_forced_loss(predictor, batch["z"].to(device), batch["action"].to(device))) * n
            count += n
    finally:
        predictor.train(was)
    if count == 0:
        raise ValueError("no windows to measure prediction error on: the held-out episodes are shorter than a window")
    return total / count


@dataclass
class FinetuneResult:
    """A fine-tuned copy of the predictor and what was measured around it."""

    predictor_state: dict[str, Tensor]
    error_before: float  # held-out one-step prediction error of the predictor given
    error_after: float  # ... and of the fine-tuned copy, on the same windows
    train_windows: int
    held_out_windows: int
    steps: int
    final_loss: float
    seconds: float


class DynamicsUpdate(Protocol):
    """Fine-tunes the dynamics of ``model`` on ``train`` clips; measures it on ``held_out`` clips.

    Must leave ``model`` unchanged (the online agent swaps the returned weights in itself).
    """

    def __call__(self, model: WorldModel, train: Sequence[Clip], held_out: Sequence[Clip], *, run_dir: Path,
                 steps: int, batch_size: int, lr: float, horizon: int, rollout_weight: float, seed: int,
                 on_step: Any = None) -> FinetuneResult: ...


def finetune_predictor(model: WorldModel, train: Sequence[Clip], held_out: Sequence[Clip], *, run_dir: Path,
                       steps: int = 300, batch_size: int = 32, lr: float = 3e-4, horizon: int = 1,
                       rollout_weight: float = 0.0, seed: int = 0, on_step: Any = None) -> FinetuneResult:
    """The default :class:`DynamicsUpdate`: the predictor fine-tuned by the Trainer into ``run_dir``.

    ``run_dir`` receives the trainer's ``train_config.json`` and ``metrics.jsonl`` (its checkpoint
    is removed afterwards: the caller saves the model version it keeps). ``on_step(step, metrics)``
    is the trainer's callback (tests raise from it to crash an update midway).
    """
    from forethought.training.config import TrainConfig
    from forethought.training.distributed import DistInfo
    from forethought.training.trainer import Trainer

    t0 = time.perf_counter()
    if model.normalization is None:
        raise ValueError("the model carries no normalization statistics; it was not saved by `forethought train`")
    normalizer = Normalizer.from_dict(model.normalization)
    window = model.history + horizon
    train_set = LatentWindows(encode_clips(model, train, normalizer), window)
    held_set = LatentWindows(encode_clips(model, held_out, normalizer), window)
    if len(train_set) == 0:
        raise ValueError(f"the {len(train)} training episodes have no window of {window} model frames; "
                         "lower --update-horizon or run longer episodes")
    device = next(model.parameters()).device
    candidate = copy.deepcopy(model.predictor).to(device)
    candidate.requires_grad_(True)
    objective = PredictorObjective(candidate, model.history, rollout_weight)
    cfg = TrainConfig(steps=steps, batch_size=min(batch_size, len(train_set)), lr=lr,
                      warmup_steps=min(max(1, steps // 10), steps - 1), ckpt_every=0, keep_checkpoints=1,
                      log_every=max(1, steps // 10), eval_every=0, history=model.history, horizon=horizon,
                      frameskip=int(getattr(model.config, "frameskip", None) or 1), regularizer="none",
                      rollout_weight=rollout_weight, val_fraction=0.0, seed=seed)
    run_dir = Path(run_dir)
    if run_dir.exists():  # a crashed attempt's leftovers: the trainer refuses a folder with checkpoints
        shutil.rmtree(run_dir)
    error_before = prediction_error(model.predictor, held_set)
    trainer = Trainer(objective, train_set, cfg, run_dir, dist=DistInfo(device=device), progress=False,
                      tensorboard=False, on_step=on_step)
    result = trainer.fit()
    shutil.rmtree(run_dir / "ckpt", ignore_errors=True)
    candidate.eval()
    return FinetuneResult(
        predictor_state={k: v.detach().clone() for k, v in candidate.state_dict().items()},
        error_before=error_before, error_after=prediction_error(candidate, held_set),
        train_windows=len(train_set), held_out_windows=len(held_set), steps=steps,
        final_loss=float(result.metrics.get("train/loss", float("nan"))), seconds=time.perf_counter() - t0)
