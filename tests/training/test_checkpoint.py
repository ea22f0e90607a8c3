from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import forethought.training.checkpoint as ckpt_mod
from forethought.training.checkpoint import (RNGState, clean_stale, latest_checkpoint, list_checkpoints,
                                             load_checkpoint, save_checkpoint)

from .toy import LinearData, ToyObjective, toy_params


def _trained(seed: int = 0) -> tuple[ToyObjective, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = ToyObjective()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = LinearData(32)
    for _ in range(3):
        opt.zero_grad()
        model({"x": data.x, "y": data.y})["loss"].backward()
        opt.step()
    return model, opt


def test_round_trip_restores_weights_optimizer_and_every_rng(tmp_path: Path) -> None:
    model, opt = _trained()
    torch.manual_seed(11), np.random.seed(12), random.seed(13)
    state = RNGState.capture()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = save_checkpoint(tmp_path, 7, model, opt, [state], {"note": "x"})
    assert path.name == "step_0000007" and latest_checkpoint(tmp_path) == path

    torch.manual_seed(99)
    fresh = ToyObjective()
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    meta, states = load_checkpoint(path, fresh, fresh_opt)
    assert meta["step"] == 7 and meta["note"] == "x"
    for k, v in toy_params(model).items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    a, b = opt.state_dict(), fresh_opt.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for name, value in a["state"][idx].items():
            assert torch.equal(value, b["state"][idx][name])
    states[0].restore()
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, opt = _trained()
    path = save_checkpoint(tmp_path, 1, model, opt, [RNGState.capture()], {})
    for f in path.iterdir():  # no pickle stream and no torch zip archive on disk
        head = f.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"PK", f

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a checkpoint")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    fresh = ToyObjective()
    load_checkpoint(path, fresh, torch.optim.AdamW(fresh.parameters()))


def test_crash_mid_save_keeps_previous_and_leftovers_are_ignored_then_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, opt = _trained()
    good = save_checkpoint(tmp_path, 10, model, opt, [RNGState.capture()], {})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "_write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 20, model, opt, [RNGState.capture()], {})
    assert list_checkpoints(tmp_path) == [good]
    monkeypatch.undo()

    # A hard kill leaves a temp folder behind (and a step folder without trainer.json is incomplete).
    leftover = tmp_path / ".tmp-step_0000020-deadbeef"
    leftover.mkdir()
    (leftover / "module.safetensors").write_bytes(b"partial")
    (tmp_path / "step_0000030").mkdir()
    assert latest_checkpoint(tmp_path) == good
    assert clean_stale(tmp_path) == [leftover]
    assert not leftover.exists() and good.exists()


def test_prunes_oldest_only_after_new_one_is_complete(tmp_path: Path) -> None:
    model, opt = _trained()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model, opt, [RNGState.capture()], {}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003", "step_0000004"]
    save_checkpoint(tmp_path, 4, model, opt, [RNGState.capture()], {}, keep=2)  # same step again: replaced
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003", "step_0000004"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_wrong_model_is_a_clear_error(tmp_path: Path) -> None:
    model, opt = _trained()
    path = save_checkpoint(tmp_path, 1, model, opt, [RNGState.capture()], {})
    with pytest.raises(ckpt_mod.CheckpointError, match="does not fit this model"):
        load_checkpoint(path, torch.nn.Linear(6, 1))
