from __future__ import annotations

import math

import pytest

from forethought.training.config import TrainConfig
from forethought.training.schedule import warmup_cosine


@pytest.mark.parametrize("name", ["tiny", "small", "medium", "base"])
def test_presets_are_valid_and_round_trip(name: str) -> None:
    cfg = TrainConfig.preset(name)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.window == cfg.history + cfg.horizon


def test_preset_overrides_apply_and_none_is_ignored() -> None:
    cfg = TrainConfig.preset("tiny", steps=123, lr=None, regularizer="vicreg")
    assert cfg.steps == 123 and cfg.regularizer == "vicreg"
    assert cfg.lr == TrainConfig.preset("tiny").lr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"regularizer": "sigregg"}, "available: sigreg, vicreg, ema, none"),
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"warmup_steps": 60}, "warmup_steps"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"betas": (0.9, 1.5)}, "betas"),
    ],
)
def test_invalid_configs_say_how_to_fix(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.preset("tiny", **changes)


def test_unknown_field_and_preset() -> None:
    with pytest.raises(TypeError, match="Unknown TrainConfig field"):
        TrainConfig.preset("tiny", stepz=3)
    with pytest.raises(ValueError, match="available: tiny, small, medium, base"):
        TrainConfig.preset("huge")


def test_resume_mismatches_ignore_logging_knobs_only() -> None:
    a = TrainConfig.preset("tiny")
    assert a.resume_mismatches(a.replace(log_every=1, ckpt_every=3, num_workers=2, steps=500)) == {}
    assert set(a.resume_mismatches(a.replace(lr=0.5, seed=3))) == {"lr", "seed"}


def test_warmup_is_linear_then_cosine_to_floor() -> None:
    kw = dict(base_lr=1.0, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    warm = [warmup_cosine(s, **kw) for s in range(10)]
    assert warm == pytest.approx([(s + 1) / 10 for s in range(10)])
    decay = [warmup_cosine(s, **kw) for s in range(10, 110)]
    assert decay[0] == pytest.approx(1.0)
    assert decay[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    # halfway through the decay the cosine sits halfway between peak and floor
    assert warmup_cosine(10 + 99 // 2, **kw) == pytest.approx(0.55, abs=0.02)
    assert warmup_cosine(500, **kw) == pytest.approx(0.1)
    assert not math.isnan(warmup_cosine(0, base_lr=1.0, warmup_steps=0, total_steps=1))
