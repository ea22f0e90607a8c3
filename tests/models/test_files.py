"""Damaged and mistyped model folders: every case of issue 18, through the library and the CLI.

Each case damages a real saved model folder the way a user could (a copy cut short, a pickle
renamed to model.safetensors, a hand-edited config.json) and checks that
`WorldModel.from_pretrained` raises a ValueError naming the file, what is wrong and what to do,
and that `forethought surprise-calibrate --model DIR` exits 2 with the same message (no traceback).
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from forethought import __version__
from forethought._files import PICKLE_REFUSAL
from forethought.cli import main
from forethought.models import WorldModel, WorldModelConfig
from forethought.models.serialization import FIX_MODEL

FIX = FIX_MODEL.split(",")[0].lower()  # "copy the model folder again"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(4,), action_dim=2))
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "good")


def _copy(saved: Path, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    for f in saved.iterdir():
        (path / f.name).write_bytes(f.read_bytes())
    return path


def _edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        meta = json.loads((path / "config.json").read_text())
        change(meta)
        (path / "config.json").write_text(json.dumps(meta, indent=2))
    return damage


def _truncate(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _pickle(path: Path) -> None:
    torch.save({"w": torch.ones(3)}, path / "model.safetensors")


def _raw_pickle(path: Path) -> None:
    (path / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))


def _empty(path: Path) -> None:
    (path / "model.safetensors").write_bytes(b"")


def _bad_json(path: Path) -> None:
    text = (path / "config.json").read_text()
    (path / "config.json").write_text(text.replace('"latent_dim"', "latent_dim", 1))


def _set(key: str, value: object) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        target = meta["config"]
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    return change


def _drop(key: str) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        *parents, last = key.split(".")
        target = meta
        for p in parents:
            target = target[p]
        del target[last]
    return change


# (name, damage, file named in the message, what must be said)
CASES = [
    ("truncated weights", _truncate, "model.safetensors", r"truncated: its header says \d+ bytes, the file has \d+"),
    ("pickle renamed", _pickle, "model.safetensors", f"a pickle .*{PICKLE_REFUSAL}"),
    ("raw pickle renamed", _raw_pickle, "model.safetensors", f"a pickle .*{PICKLE_REFUSAL}"),
    ("empty weights", _empty, "model.safetensors", r"empty file \(0 bytes\)"),
    ("bad JSON", _bad_json, "config.json", r"not valid JSON: Expecting property name enclosed in double quotes at "
                                           r"line \d+, column \d+"),
    ("latent_dim string", _edit_config(_set("latent_dim", "32")), "config.json",
     r"field 'latent_dim' must be an integer, got \"32\" \(a string\)"),
    ("latent_dim float", _edit_config(_set("latent_dim", 32.0)), "config.json",
     r"field 'latent_dim' must be an integer, got 32.0 \(a number\)"),
    ("residual string", _edit_config(_set("predictor.residual", "false")), "config.json",
     r"field 'predictor.residual' must be a bool \(true or false\), got \"false\" \(a string\)"),
    ("missing field", _edit_config(_drop("config.predictor.depth")), "config.json",
     r"missing field 'predictor.depth' \(an integer\)"),
    ("unknown field", _edit_config(_set("encoder.colour", "red")), "config.json", r"unknown field 'encoder.colour'"),
    ("missing config", _edit_config(_drop("config")), "config.json", r"no \"config\" entry"),
]


@pytest.mark.parametrize("name, damage, file, problem", CASES, ids=[c[0] for c in CASES])
def test_from_pretrained_names_the_file_the_problem_and_the_fix(saved: Path, tmp_path: Path, name: str,
                                                                 damage: Callable[[Path], None], file: str,
                                                                 problem: str) -> None:
    path = _copy(saved, tmp_path)
    WorldModel.from_pretrained(path)  # the copy is good before the damage
    damage(path)
    with pytest.raises(ValueError) as err:
        WorldModel.from_pretrained(path)
    msg = str(err.value)
    assert msg.startswith(str(path / file)), msg
    assert re.search(problem, msg), msg
    if "pickle" not in name:
        assert FIX in msg.lower(), msg
    else:
        assert "save_pretrained" in msg, msg
    if file == "config.json" and name != "bad JSON":
        assert f"forethought {__version__}" in msg, msg  # the version that wrote the file


@pytest.mark.parametrize("name, damage, file, problem", CASES, ids=[c[0] for c in CASES])
def test_the_cli_exits_2_with_the_same_message(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                               name: str, damage: Callable[[Path], None], file: str,
                                               problem: str) -> None:
    path = _copy(saved, tmp_path)
    damage(path)
    code = main(["surprise-calibrate", "--model", str(path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path / file) in err and re.search(problem, err), err
    assert "Traceback" not in err


def test_a_missing_field_is_named_not_reported_as_state_dict_mismatches(saved: Path, tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    _edit_config(_drop("config.predictor.depth"))(path)
    with pytest.raises(ValueError) as err:
        WorldModel.from_pretrained(path)
    assert "missing field" in str(err.value) and "size mismatch" not in str(err.value)
    assert str(err.value).count("\n") == 0  # one line, not a list of 24 tensors


def test_files_without_a_recorded_version_say_an_older_version_wrote_them(saved: Path, tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    meta = json.loads((path / "config.json").read_text())
    assert meta["forethought_version"] == __version__
    _edit_config(lambda m: (m.pop("forethought_version"), _set("history", "3")(m)))(path)
    with pytest.raises(ValueError, match=r"written by an older version of forethought .*Correct it in config.json"):
        WorldModel.from_pretrained(path)


def test_configs_from_before_a_field_existed_still_load(saved: Path, tmp_path: Path) -> None:
    """`frameskip` and `env_id` were added after 0.1: their absence means "unknown", not an error."""
    path = _copy(saved, tmp_path)
    _edit_config(lambda m: (_drop("config.frameskip")(m), _drop("config.env_id")(m)))(path)
    model = WorldModel.from_pretrained(path)
    assert model.config.frameskip is None and model.config.env_id is None


def test_a_draft_folder_gets_the_same_checks(tmp_path: Path) -> None:
    from forethought.speculative.draft import DraftConfig, DraftPredictor, load_draft, save_draft

    path = save_draft(DraftPredictor(DraftConfig(8, 2, 3)), tmp_path / "draft")
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["depth"] = 2.0
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"draft/config.json: not a valid DraftConfig: field 'depth' must be an "
                                         r"integer, got 2.0 .*forethought distill"):
        load_draft(path)
    meta["config"]["depth"] = 2
    (path / "config.json").write_text(json.dumps(meta))
    _truncate(path)
    with pytest.raises(ValueError, match=r"draft/model.safetensors: truncated: .*Distill the draft again"):
        load_draft(path)
