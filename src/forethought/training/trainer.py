"""The training loop: AdamW, warm-up + cosine, clipping, bf16 autocast, checkpoints, exact resume, DDP.

The trainer knows nothing about world models. It optimizes a `TrainingObjective`: an `nn.Module` whose
`forward(batch)` returns a dict of scalar loss terms with the total under `"loss"` (keys starting
with `_` carry auxiliary tensors, e.g. embeddings for diagnostics, and are not logged). Optional
hooks: `after_step(step)` (EMA target update), `diagnostics(outputs) -> dict[str, float]`
(collapse metrics, called every `log_every` steps on the training batch), and
`extra_state() -> dict` / `load_extra_state(dict)` for JSON-ready state outside the `state_dict`
(e.g. SIGReg's direction counter) that a resumed run must continue from.

Exactness of `resume`: the data order is a function of `(seed, step)` (`ResumableBatchSampler`), the
learning rate a function of `step`, and a checkpoint holds the weights, the optimizer moments and
every RNG state of every rank, captured after step `s` completed (training, evaluation, logging).
Evaluation runs under a forked RNG so it never shifts the training random stream.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from forethought._files import CorruptFileError, written_by
from forethought._hardware import warn_if_emulated_bf16
from forethought.training.checkpoint import (FIX_CHECKPOINT, CheckpointError, RNGState, clean_stale, latest_checkpoint,
                                             list_checkpoints, load_checkpoint, save_checkpoint, verify_checkpoint)
from forethought.training.config import TrainConfig
from forethought.training.distributed import (DistInfo, all_reduce_max, all_reduce_mean, barrier,
                                              broadcast_object, gather_objects)
from forethought.training.logging import MetricsLogger
from forethought.training.sampler import ResumableBatchSampler
from forethought.training.schedule import set_lr, warmup_cosine


class TrainingObjective(Protocol):
    """What the trainer optimizes (an `nn.Module`); not a planning `Objective` (forethought.planning)."""

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scalar loss terms, the total under `"loss"`; `_`-prefixed entries are auxiliary."""
        ...


class NonFiniteLossError(RuntimeError):
    """Training met a NaN/inf loss or gradient; the last good checkpoint is kept untouched."""

    def __init__(self, step: int, terms: dict[str, float], last_checkpoint: Path | None) -> None:
        self.step = step
        self.terms = terms
        self.last_checkpoint = last_checkpoint
        bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
        where = (f"the last good checkpoint is {last_checkpoint}; resume from it" if last_checkpoint
                 else "no checkpoint was written yet; start again")
        super().__init__(f"non-finite value at step {step}: {bad} (all terms: {terms}). Training stopped without "
                         f"saving the bad state. Try a lower lr, grad_clip > 0, or bf16=False: {where}.")


@dataclass(frozen=True)
class TrainResult:
    """What `Trainer.fit` did: steps run, the final checkpoint, the last logged metrics."""

    start_step: int
    final_step: int
    checkpoint: Path | None
    metrics: dict[str, float]


StepCallback = Callable[[int, dict[str, float]], None]


class Trainer:
    """Optimizes `objective` on `train_set` (validation on `val_set`) into the run folder `run_dir`.

    Datasets return dicts of arrays/tensors that the default collate stacks to `(B, ...)`.
    `dist` describes this process (see `init_distributed`); with `world_size > 1` the objective is
    wrapped in DistributedDataParallel and every rank reads its slice of each global batch.
    `on_step(step, metrics)` is called on every rank after each completed step (tests use it to
    interrupt a run); `metrics` is non-empty on log steps.
    """

    def __init__(self, objective: nn.Module, train_set: Dataset, config: TrainConfig, run_dir: str | Path, *,
                 val_set: Dataset | None = None, dist: DistInfo | None = None, progress: bool = True,
                 tensorboard: bool = True, on_step: StepCallback | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.cfg = config
        self.dist = dist or DistInfo()
        self.run_dir = Path(run_dir)
        self.ckpt_root = self.run_dir / "ckpt"
        if self.dist.distributed and self.dist.device.type == "cuda":
            # The projector's BatchNorm then normalizes with global-batch statistics, as on one device
            # (SyncBatchNorm has no CPU kernel: under gloo each rank uses its local batch).
            objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
        self.objective = objective.to(self.dist.device)
        self.train_set = train_set
        self.val_set = val_set
        self.progress = progress
        self.tensorboard = tensorboard
        self.on_step = on_step
        self.meta = meta or {}
        params = [p for p in self.objective.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the objective has no trainable parameters")
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay)
        self.model: nn.Module = self.objective
        if self.dist.distributed:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids)

    # ---------------------------------------------------------------- the loop
    def fit(self, resume: bool = False) -> TrainResult:
        """Train to `config.steps`; with `resume`, continue exactly from the newest checkpoint."""
        cfg, dist = self.cfg, self.dist
        start_step = self._restore(resume)
        logger = MetricsLogger(self.run_dir, tensorboard=self.tensorboard, start_step=start_step) \
            if dist.is_main else None
        if dist.is_main:
            (self.run_dir / "train_config.json").write_text(cfg.to_json())
        last_ckpt = latest_checkpoint(self.ckpt_root)
        metrics: dict[str, float] = {}
        if start_step >= cfg.steps:
            if logger:
                logger.close()
            return TrainResult(start_step, start_step, last_ckpt, metrics)
        batches = self._train_batches(start_step)
        bar = _progress_bar(cfg.steps, start_step, enabled=self.progress and dist.is_main)
        autocast = _autocast(dist.device, cfg.bf16)
        if cfg.bf16 and dist.is_main:
            warn_if_emulated_bf16(dist.device.type)
        t_last, n_last = time.perf_counter(), start_step
        postfix: dict[str, str] = {}
        self.model.train()
        try:
            for step in range(start_step, cfg.steps):
                lr = warmup_cosine(step, base_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                                   min_lr_ratio=cfg.min_lr_ratio)
                set_lr(self.optimizer, lr)
                batch = _to_device(next(batches), dist.device)
                with autocast:
                    out = self.model(batch)
                terms = {k: v for k, v in out.items() if not k.startswith("_")}
                if "loss" not in terms:
                    raise KeyError(f"the objective must return the total under 'loss', got keys {sorted(out)}")
                self.optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip if cfg.grad_clip > 0
                                                           else float("inf"))
                # One check (one GPU sync, one all-reduce) for the loss terms and the gradient, before
                # the optimizer step: a bad step never reaches the weights.
                self._check_finite(step + 1, {**terms, "grad_norm": grad_norm}, last_ckpt)
                self.optimizer.step()
                if hasattr(self.objective, "after_step"):
                    self.objective.after_step(step)
                done = step + 1
                metrics = {}
                if cfg.log_every and (done % cfg.log_every == 0 or done == cfg.steps):
                    now = time.perf_counter()
                    metrics = self._train_metrics(terms, out, lr, grad_norm)
                    metrics["perf/samples_per_s"] = (done - n_last) * cfg.batch_size / max(now - t_last, 1e-9)
                    t_last, n_last = now, done
                t_extra = time.perf_counter()
                if cfg.eval_every and self.val_set is not None and (done % cfg.eval_every == 0
                                                                    or done == cfg.steps):
                    metrics.update(self.validate())
                if logger and metrics:
                    logger.log(done, metrics)
                if bar is not None:
                    bar.update(1)
                    if "train/loss" in metrics:
                        postfix["loss"] = f"{metrics['train/loss']:.4f}"
                        postfix["samples/s"] = f"{metrics['perf/samples_per_s']:.0f}"
                    if "val/loss" in metrics:
                        postfix["val"] = f"{metrics['val/loss']:.4f}"
                    bar.set_postfix(postfix, refresh=False)
                if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps:
                    last_ckpt = self.save(done)
                t_last += time.perf_counter() - t_extra  # samples/s counts training time only
                if self.on_step is not None:
                    self.on_step(done, metrics)
        finally:
            if bar is not None:
                bar.close()
            if logger:
                logger.close()
        return TrainResult(start_step, cfg.steps, last_ckpt, metrics)

    # ---------------------------------------------------------------- pieces
    def _train_batches(self, start_step: int) -> Iterator[dict[str, Any]]:
        sampler = ResumableBatchSampler(len(self.train_set), self.cfg.batch_size, seed=self.cfg.seed,
                                        start_step=start_step, end_step=self.cfg.steps, rank=self.dist.rank,
                                        world_size=self.dist.world_size)
        # A private generator: creating the iterator must not draw from the global torch RNG (which
        # is part of the checkpoint), or a resumed run would drift from an uninterrupted one.
        loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                            generator=torch.Generator().manual_seed(self.cfg.seed),
                            pin_memory=self.dist.device.type == "cuda",
                            persistent_workers=False)
        return iter(loader)

    def _check_finite(self, step: int, terms: dict[str, Tensor], last_ckpt: Path | None) -> None:
        values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        bad = (~torch.isfinite(values)).any().float()
        # Every rank must stop together, or the healthy ones hang in the next all-reduce.
        if all_reduce_max(bad.reshape(1), self.dist).item() > 0:
            raise NonFiniteLossError(step, {k: float(v) for k, v in zip(terms, values.tolist())}, last_ckpt)

    def _train_metrics(self, terms: dict[str, Tensor], out: dict[str, Tensor], lr: float,
                       grad_norm: Tensor) -> dict[str, float]:
        names = list(terms)
        values = all_reduce_mean(torch.stack([terms[k].detach().float().reshape(()) for k in names]), self.dist)
        metrics = {f"train/{k}": float(v) for k, v in zip(names, values.tolist())}
        metrics["train/lr"] = lr
        metrics["train/grad_norm"] = float(grad_norm)
        if hasattr(self.objective, "diagnostics"):
            with torch.no_grad():
                metrics.update({f"diag/{k}": float(v) for k, v in self.objective.diagnostics(out).items()})
        return metrics

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss terms over `eval_batches` fixed validation batches, as `val/<term>`."""
        if self.val_set is None:
            return {}
        n = len(self.val_set)
        world = self.dist.world_size
        global_batch = min(self.cfg.batch_size, n // world * world)
        if global_batch == 0:
            return {}
        sampler = ResumableBatchSampler(n, global_batch, seed=self.cfg.seed + 1, start_step=0,
                                        end_step=min(self.cfg.eval_batches, max(1, n // global_batch)),
                                        rank=self.dist.rank, world_size=world)
        loader = DataLoader(self.val_set, batch_sampler=sampler, num_workers=0)
        totals: dict[str, float] = {}
        count = 0
        devices = [self.dist.device] if self.dist.device.type == "cuda" else []
        was_training = self.objective.training
        self.objective.eval()
        # Forked RNG: whatever randomness evaluation uses (SIGReg directions...) leaves training's alone.
        with torch.random.fork_rng(devices=devices), _autocast(self.dist.device, self.cfg.bf16):
            for batch in loader:
                out = self.objective(_to_device(batch, self.dist.device))
                for k, v in out.items():
                    if not k.startswith("_"):
                        totals[k] = totals.get(k, 0.0) + float(v.detach().float())
                count += 1
        self.objective.train(was_training)
        names = sorted(totals)
        means = all_reduce_mean(torch.tensor([totals[k] / count for k in names], dtype=torch.float64), self.dist)
        return {f"val/{k}": float(v) for k, v in zip(names, means.tolist())}

    def save(self, step: int) -> Path | None:
        """Checkpoint after `step` completed steps (collective: call on every rank; rank 0 writes)."""
        states = gather_objects(RNGState.capture(), self.dist)
        path = None
        if self.dist.is_main:
            extra = self.objective.extra_state() if hasattr(self.objective, "extra_state") else {}
            meta = {"sampler_position": step, "world_size": self.dist.world_size,
                    "train_config": self.cfg.to_dict(), "objective_state": extra, **self.meta}
            path = save_checkpoint(self.ckpt_root, step, self.objective, self.optimizer, states, meta,
                                   keep=self.cfg.keep_checkpoints)
        barrier(self.dist)
        return broadcast_object(path, self.dist)

    def _newest_verified(self, found: list[Path]) -> tuple[Path, dict[str, Any]]:
        """The newest checkpoint whose files verify, and its `trainer.json`; warns about each one skipped."""
        skipped: list[tuple[Path, CorruptFileError]] = []
        for path in reversed(found):
            try:
                meta = verify_checkpoint(path)
            except CorruptFileError as e:
                skipped.append((path, e))
                continue
            if self.dist.is_main:
                for bad, err in skipped:
                    warnings.warn(f"skipping damaged checkpoint {bad.name} ({err.path}: {err.problem}); resuming "
                                  f"from {path.name}, the newest checkpoint that verifies", stacklevel=4)
            return path, meta
        details = "; ".join(f"{err.path}: {err.problem}" for _, err in skipped)
        raise CheckpointError(f"{self.ckpt_root}: no checkpoint verifies ({details}). Start the run again without "
                              f"--resume in a new --out folder (or delete {self.ckpt_root})")

    def _restore(self, resume: bool) -> int:
        """Load the newest checkpoint when resuming; returns the step to start from."""
        if self.dist.is_main:
            clean_stale(self.ckpt_root)
        barrier(self.dist)
        found = list_checkpoints(self.ckpt_root)
        if not resume:
            if found:
                raise FileExistsError(f"{self.run_dir} already holds checkpoints ({found[-1].name}); pass "
                                      f"resume=True (--resume) to continue it, or choose a new output folder")
            return 0
        if not found:
            if self.dist.is_main:  # a fresh run under --resume is normal (make demo does it): say so, quietly
                print(f"no checkpoint in {self.ckpt_root} yet: starting from step 0", file=sys.stderr)
            return 0
        path, trainer_meta = self._newest_verified(found)
        saved = TrainConfig.from_dict(trainer_meta.get("train_config"), source=str(path / "trainer.json"),
                                      written_by=written_by(trainer_meta), fix=FIX_CHECKPOINT)
        mismatch = self.cfg.resume_mismatches(saved)
        if mismatch:
            details = ", ".join(f"{k}: now {a!r}, saved {b!r}" for k, (a, b) in mismatch.items())
            raise ValueError(f"cannot resume {self.run_dir} exactly, the settings differ ({details}); use the "
                             f"original settings or a new output folder")
        if saved.steps != self.cfg.steps:
            warnings.warn(f"resuming with steps={self.cfg.steps} (saved run: {saved.steps}): the cosine schedule "
                          f"changes from here on", stacklevel=3)
        meta, states = load_checkpoint(path, self.objective, self.optimizer)
        if hasattr(self.objective, "load_extra_state"):
            self.objective.load_extra_state(meta.get("objective_state", {}))
        if len(states) == self.dist.world_size:
            states[self.dist.rank].restore()
        else:
            warnings.warn(f"checkpoint written by {len(states)} process(es), resuming on {self.dist.world_size}: "
                          f"data order is kept, random streams are not", stacklevel=3)
            states[0].restore()
        return int(meta["sampler_position"])


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def _progress_bar(total: int, initial: int, *, enabled: bool) -> Any:
    if not enabled:
        return None
    from forethought._progress import progress

    # The bar shows the ETA from the step rate; samples/s and the loss go in the postfix.
    return progress(total=total, initial=initial, unit="step", dynamic_ncols=True, desc="train")
