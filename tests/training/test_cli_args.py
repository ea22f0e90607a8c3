"""The argparse options the CLI uses, and the exit status of a run that diverges."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from forethought.training.api import EXIT_NON_FINITE, run_from_args
from forethought.training.arguments import add_train_arguments
from forethought.training.checkpoint import list_checkpoints

from .toy import make_dot_store


def _parser() -> argparse.ArgumentParser:
    return add_train_arguments(argparse.ArgumentParser(prog="forethought train"))


def test_options_default_to_the_preset_and_help_has_examples() -> None:
    args = _parser().parse_args(["--data", "d", "--out", "o"])
    assert args.preset == "small" and args.regularizer == "sigreg" and not args.resume
    assert args.lr is None and args.bf16 is None and args.steps is None  # None keeps the preset's value
    assert "forethought train --data data/tworoom --preset small --out runs/tworoom" in _parser().format_help()
    args = _parser().parse_args(["--data", "d", "--out", "o", "--bf16", "--batch-size", "16", "--regularizer", "ema"])
    assert args.bf16 is True and args.batch_size == 16 and args.regularizer == "ema"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--data", "d", "--out", "o", "--regularizer", "sigregg"])


def test_divergence_exits_3_and_keeps_the_last_good_checkpoint(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    data = make_dot_store(tmp_path / "dots", episodes=4)
    out = tmp_path / "run"
    args = _parser().parse_args(["--data", str(data), "--out", str(out), "--preset", "tiny", "--lr", "1e6",
                                 "--grad-clip", "0", "--warmup-steps", "1", "--ckpt-every", "1", "--no-progress",
                                 "--no-tensorboard"])
    assert run_from_args(args) == EXIT_NON_FINITE
    err = capsys.readouterr().err
    assert "non-finite value at step 2" in err and "step_0000001" in err
    assert [p.name for p in list_checkpoints(out / "ckpt")] == ["step_0000001"]
    assert not (out / "model").exists()


def test_the_trained_model_stores_its_frameskip(tmp_path: Path) -> None:
    from forethought.models import WorldModel

    data = make_dot_store(tmp_path / "dots", episodes=4)
    out = tmp_path / "run"
    args = _parser().parse_args(["--data", str(data), "--out", str(out), "--preset", "tiny", "--steps", "2", "--warmup-steps", "1",
                                 "--frameskip", "2", "--no-progress", "--no-tensorboard"])
    assert run_from_args(args) == 0
    config = WorldModel.from_pretrained(out / "model").config
    assert config.frameskip == 2 and config.action_dim % 2 == 0  # what the agent needs, not inferred by division
    from forethought.data import EpisodeStore

    assert config.env_id == EpisodeStore.open(data).meta["env_id"] is not None
