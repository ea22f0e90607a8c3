"""One update of the online agent's world model: which episodes, fine-tune, keep or roll back.

:func:`choose_episodes` picks the data: the ``recent`` latest episodes plus ``replay`` older ones
drawn at random, all from the episodes since the detector's estimated change point when surprise
triggered the update (the old world would contradict the new one), from all of memory on a
schedule; a ``held_out`` fraction of them is kept aside. :func:`run_update` fine-tunes a copy of
the predictor on the rest (:data:`~forethought.online.finetune.DynamicsUpdate`), compares the
held-out one-step prediction error before and after, and writes the new version's model folder
only when the error went down (``accepted``); otherwise the update is ``rolled_back`` and the
model in use stays. An exception while fine-tuning gives ``failed`` with its message. Nothing here
touches the live model or the commit point: the agent swaps and commits (:mod:`forethought.online.agent`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from forethought.models import WorldModel
from forethought.models.serialization import write_model_folder
from forethought.models.world_model import MODEL_TYPE
from forethought.online.config import UpdateConfig
from forethought.online.finetune import DynamicsUpdate
from forethought.surprise.clips import Clip


@dataclass(frozen=True)
class Selection:
    """The episodes of one update (memory indices)."""

    train: list[int]
    held_out: list[int]
    recent: list[int]
    replay: list[int]
    first: int  # the oldest episode that could be chosen (the change point, or 0)

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train, "held_out": self.held_out, "recent": self.recent, "replay": self.replay,
                "since_episode": self.first}


def choose_episodes(num_episodes: int, first: int, cfg: UpdateConfig, seed: int) -> Selection | None:
    """Recent + replayed episodes from ``[first, num_episodes)``, a held-out part aside; ``None`` when
    fewer than 2 are available (one to train on, one to judge by)."""
    pool = list(range(max(0, first), num_episodes))
    if len(pool) < 2:
        return None
    rng = np.random.default_rng([seed, num_episodes])
    recent, older = pool[-cfg.recent:], pool[: max(0, len(pool) - cfg.recent)]
    replay = sorted(int(i) for i in rng.choice(older, min(cfg.replay, len(older)), replace=False)) if older else []
    chosen = sorted(recent + replay)
    k = min(len(chosen) - 1, max(1, int(round(cfg.held_out * len(chosen)))))
    held = sorted(int(i) for i in rng.choice(chosen, k, replace=False))
    return Selection([i for i in chosen if i not in held], held, recent, replay, max(0, first))


@dataclass
class UpdateOutcome:
    """What an update attempt produced: its record, and the new weights when accepted."""

    record: dict[str, Any]
    predictor_state: dict[str, torch.Tensor] | None = None
    version_dir: Path | None = None
    error: BaseException | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.record["outcome"] == "accepted"


def save_version(model: WorldModel, predictor_state: dict[str, torch.Tensor], path: Path) -> Path:
    """A model folder of ``model`` with its predictor replaced by ``predictor_state`` (written atomically)."""
    state = {k: v for k, v in model.state_dict().items()}
    state.update({f"predictor.{k}": v for k, v in predictor_state.items()})
    return write_model_folder(path, MODEL_TYPE, model.config.to_dict(), state, model.normalization)


def run_update(model: WorldModel, train: Sequence[Clip], held_out: Sequence[Clip], *, selection: Selection,
               attempt: int, current_version: int, reason: str, cfg: UpdateConfig, finetune: DynamicsUpdate,
               run_dir: Path, version_dir: Path, after_episode: int, on_step: Any = None) -> UpdateOutcome:
    """Fine-tune, judge on the held-out episodes, write the version folder if kept (module docstring)."""
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "update": attempt, "reason": reason, "after_episode": after_episode, "previous_version": current_version,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "episodes": selection.to_dict(),
        "run_dir": str(run_dir), "settings": {"steps": cfg.update_steps, "batch": cfg.update_batch,
                                              "lr": cfg.update_lr, "horizon": cfg.update_horizon,
                                              "rollout_weight": cfg.rollout_weight}}
    try:
        result = finetune(model, train, held_out, run_dir=run_dir, steps=cfg.update_steps, batch_size=cfg.update_batch,
                          lr=cfg.update_lr, horizon=cfg.update_horizon, rollout_weight=cfg.rollout_weight,
                          seed=cfg.seed + attempt, on_step=on_step)
    except Exception as e:  # a failed update is logged and the agent carries on with the model it has
        record.update(outcome="failed", version=current_version, error=f"{type(e).__name__}: {e}",
                      seconds=time.perf_counter() - t0)
        return UpdateOutcome(record, error=e)
    accepted = result.error_after < result.error_before
    record.update(outcome="accepted" if accepted else "rolled_back", version=attempt if accepted else current_version,
                  error_before=result.error_before, error_after=result.error_after,
                  train_windows=result.train_windows, held_out_windows=result.held_out_windows,
                  final_loss=result.final_loss, finetune_seconds=result.seconds)
    if accepted:
        save_version(model, result.predictor_state, version_dir)
        record["model_dir"] = str(version_dir)
    record["seconds"] = time.perf_counter() - t0
    return UpdateOutcome(record, result.predictor_state if accepted else None, version_dir if accepted else None)
