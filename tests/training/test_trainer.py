"""The generic loop on a real (small) regression objective: learning, exact resume, NaN stop, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forethought.training.checkpoint import list_checkpoints
from forethought.training.config import TrainConfig
from forethought.training.logging import read_metrics
from forethought.training.trainer import NonFiniteLossError, Trainer

from .toy import ToyObjective, run_toy, toy_params

CFG = TrainConfig.preset("tiny", steps=40, batch_size=16, lr=3e-2, warmup_steps=4, ckpt_every=10, log_every=5,
                         eval_every=20)


def _run(out: Path, cfg: TrainConfig = CFG, **kwargs) -> tuple[ToyObjective, Trainer]:
    return run_toy(out, cfg, **kwargs)


def test_training_lowers_the_loss_and_logs(tmp_path: Path) -> None:
    _run(tmp_path, tensorboard=True)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    records = read_metrics(tmp_path)
    train = [r["train/loss"] for r in records if "train/loss" in r]
    assert train[-1] < 0.3 * train[0]
    val = [r for r in records if "val/loss" in r]
    assert [r["step"] for r in val] == [20, 40]
    assert val[-1]["val/pred_loss"] < 0.5
    last = records[-1]
    for key in ("train/lr", "train/grad_norm", "perf/samples_per_s", "diag/x_std", "train/reg"):
        assert key in last
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step_0000030", "step_0000040"]


def test_resume_after_interrupt_matches_uninterrupted_run_exactly(tmp_path: Path) -> None:
    full, _ = _run(tmp_path / "full")
    # Interrupted 7 steps after the checkpoint at step 20: those steps are lost and redone.
    _, partial = _run(tmp_path / "cut", stop_at=27)
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "ckpt")][-1] == "step_0000020"
    resumed, trainer = _run(tmp_path / "cut", resume=True)
    assert resumed.after_steps[0] == 20  # continued at step 20, not from scratch
    for name, value in toy_params(full).items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    # the metrics file reads like one run: redone steps are not duplicated
    steps = [r["step"] for r in read_metrics(tmp_path / "cut")]
    assert steps == sorted(set(steps)) == [r["step"] for r in read_metrics(tmp_path / "full")]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    expected = r"step 25: loss=nan, pred_loss=nan.*last good checkpoint is .*step_0000020"
    with pytest.raises(NonFiniteLossError, match=expected):
        _run(tmp_path, objective=ToyObjective(nan_at=25))
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step_0000010", "step_0000020"]


def test_fresh_run_refuses_to_overwrite_and_resume_refuses_other_settings(tmp_path: Path) -> None:
    _run(tmp_path, stop_at=12)
    with pytest.raises(FileExistsError, match="--resume"):
        _run(tmp_path)
    with pytest.raises(ValueError, match="lr: now 0.5"):
        _run(tmp_path, CFG.replace(lr=0.5), resume=True)


def test_leftover_temp_checkpoint_is_cleaned_on_start(tmp_path: Path) -> None:
    _run(tmp_path, stop_at=12)
    stale = tmp_path / "ckpt" / ".tmp-step_0000020-0badf00d"
    stale.mkdir()
    _run(tmp_path, resume=True)
    assert not stale.exists()
