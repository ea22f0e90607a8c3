"""A damaged newest checkpoint: `verify_checkpoint` finds it, `--resume` falls back and says so.

Damage is real (a file cut short, one bit flipped, a file deleted), and the resumed run must end
with exactly the weights of a run that was never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forethought._files import CorruptFileError
from forethought.cli import main
from forethought.training.checkpoint import CheckpointError, list_checkpoints, verify_checkpoint
from forethought.training.config import TrainConfig

from .toy import Interrupt, ToyObjective, make_dot_store, run_toy, toy_params

CFG = TrainConfig.preset("tiny", steps=30, batch_size=16, lr=3e-2, warmup_steps=4, ckpt_every=10, log_every=5,
                         eval_every=10)


def _run(out: Path, **kwargs) -> ToyObjective:
    return run_toy(out, CFG, **kwargs)[0]


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size - 7])


def _flip_a_bit(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x10
    file.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> ToyObjective:
    return _run(tmp_path_factory.mktemp("full"))


@pytest.mark.parametrize("damage, file, problem", [
    (_truncate, "module.safetensors", "truncated: it was written with"),
    (_flip_a_bit, "optimizer.safetensors", r"damaged: its contents differ from what was written \(SHA-256 mismatch\)"),
    (lambda f: f.unlink(), "rng.json", "missing from the checkpoint"),
])
def test_resume_skips_a_damaged_newest_checkpoint_and_says_so(full: ToyObjective, tmp_path: Path, damage, file: str,
                                                               problem: str) -> None:
    _run(tmp_path, stop_at=27)  # checkpoints at steps 10 and 20, killed 7 steps later
    newest = list_checkpoints(tmp_path / "ckpt")[-1]
    assert newest.name == "step_0000020"
    damage(newest / file)
    with pytest.warns(UserWarning, match=rf"skipping damaged checkpoint step_0000020 \(.*{file}: {problem}.*\); "
                                         r"resuming from step_0000010"):
        resumed = _run(tmp_path, resume=True)
    assert resumed.after_steps[0] == 10  # continued from the older checkpoint, not from scratch
    for name, value in toy_params(full).items():
        torch.testing.assert_close(toy_params(resumed)[name], value, rtol=0, atol=0, msg=name)


def test_resume_refuses_when_no_checkpoint_verifies(tmp_path: Path) -> None:
    _run(tmp_path, stop_at=27)
    for ckpt in list_checkpoints(tmp_path / "ckpt"):
        _truncate(ckpt / "rng.safetensors")
    with pytest.raises(CheckpointError, match=r"no checkpoint verifies \(.*step_0000020/rng.safetensors: truncated.*"
                                              r"step_0000010/rng.safetensors: truncated.*\)\. Start the run again"):
        _run(tmp_path, resume=True)


def test_verify_checks_structure_of_checkpoints_written_before_digests(tmp_path: Path) -> None:
    _run(tmp_path, stop_at=12)
    ckpt = list_checkpoints(tmp_path / "ckpt")[-1]
    meta = verify_checkpoint(ckpt)
    assert set(meta["files"]) == {"module.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors",
                                  "rng.json"}
    del meta["files"]  # as written before the digests were recorded
    (ckpt / "trainer.json").write_text(json.dumps(meta))
    assert "files" not in verify_checkpoint(ckpt)
    _truncate(ckpt / "module.safetensors")
    with pytest.raises(CorruptFileError, match=r"module.safetensors: truncated: its header says \d+ bytes"):
        verify_checkpoint(ckpt)
    (ckpt / "module.safetensors").write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty file"):
        verify_checkpoint(ckpt)
    (ckpt / "trainer.json").write_text('{"format_version": 1,')
    with pytest.raises(CorruptFileError, match=r"trainer.json: not valid JSON: .* at line 1, column 22"):
        verify_checkpoint(ckpt)


def test_a_mistyped_train_config_in_a_checkpoint_is_named(tmp_path: Path) -> None:
    _run(tmp_path, stop_at=12)
    ckpt = list_checkpoints(tmp_path / "ckpt")[-1]
    meta = json.loads((ckpt / "trainer.json").read_text())
    meta["train_config"]["bf16"] = "false"
    (ckpt / "trainer.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"step_0000010/trainer.json: not a valid TrainConfig: field 'bf16' must be a "
                                         r"bool \(true or false\), got \"false\" \(a string\) \(the file was written "
                                         r"by forethought "):
        _run(tmp_path, resume=True)


def test_the_train_command_resumes_from_the_previous_checkpoint(tmp_path: Path) -> None:
    data = make_dot_store(tmp_path / "dots", episodes=6, steps=12)
    args = ["train", "--data", str(data), "--preset", "tiny", "--steps", "8", "--warmup-steps", "2",
            "--ckpt-every", "2", "--eval-every", "4", "--log-every", "2", "--no-progress", "--no-tensorboard"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0

    from forethought.training.api import train

    def stop(step: int, metrics: dict) -> None:
        if step == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(data, tmp_path / "cut", preset="tiny", steps=8, warmup_steps=2, ckpt_every=2, eval_every=4,
              log_every=2, progress=False, tensorboard=False, on_step=stop)
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "ckpt")] == ["step_0000002", "step_0000004"]
    _truncate(tmp_path / "cut" / "ckpt" / "step_0000004" / "module.safetensors")
    with pytest.warns(UserWarning, match=r"skipping damaged checkpoint step_0000004 .*truncated.*resuming from "
                                         r"step_0000002"):
        assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    full = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)
