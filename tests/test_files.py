"""The checked readers (`forethought._files`) and the typed config check (`forethought._schema`).

Each damaged file is made for real (cut short, emptied, replaced by a `torch.save` pickle) and the
error must name the file, say what is wrong and end with the caller's fix.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from forethought._files import (PICKLE_REFUSAL, CorruptFileError, check_safetensors, load_safetensors_into,
                                read_json, read_json_lines, read_safetensors, verify_digest, written_by)
from forethought._schema import ConfigFileError, from_json_dict

FIX = "Do the thing that fixes it"


def _tensors() -> dict[str, torch.Tensor]:
    return {"a": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(5, dtype=torch.int64)}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    save_file(_tensors(), str(path), metadata={"k": json.dumps({"x": 1})})
    return path


def test_a_whole_safetensors_file_reads_back(good: Path) -> None:
    back = read_safetensors(good, fix=FIX)
    assert back.keys() == _tensors().keys() and all(torch.equal(back[k], v) for k, v in _tensors().items())
    header = check_safetensors(good)
    assert header.size == good.stat().st_size and header.json_entry("k") == {"x": 1}
    module = torch.nn.Linear(4, 3)
    save_file({k: v.detach().clone() for k, v in module.state_dict().items()}, str(good))
    fresh = torch.nn.Linear(4, 3)
    assert load_safetensors_into(fresh, good) == ([], [])
    assert torch.equal(fresh.weight, module.weight)


@pytest.mark.parametrize("cut", [20, 60, -1])  # inside the header, inside the data, the last byte
def test_a_truncated_safetensors_file_says_how_many_bytes_are_missing(good: Path, cut: int) -> None:
    data = good.read_bytes()
    good.write_bytes(data[:cut])
    with pytest.raises(CorruptFileError) as err:
        read_safetensors(good, fix=FIX)
    msg = str(err.value)
    assert msg.startswith(f"{good}: truncated: its header") and msg.endswith(f". {FIX}")
    assert f"the file has {len(data[:cut])}" in msg


def test_a_pickle_under_a_safetensors_name_is_refused_without_unpickling(tmp_path: Path) -> None:
    zipped, raw = tmp_path / "zip.safetensors", tmp_path / "raw.safetensors"
    torch.save({"a": torch.ones(3)}, zipped)  # the zip format of torch >= 1.6
    raw.write_bytes(pickle.dumps({"a": [1.0, 2.0]}, protocol=2))
    for path in (zipped, raw):
        with pytest.raises(CorruptFileError, match=f"{path}: a pickle .*{PICKLE_REFUSAL}"):
            read_safetensors(path, fix=FIX)


def test_empty_foreign_and_damaged_safetensors_files(good: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"empty.safetensors: empty file \(0 bytes\).*Do the thing"):
        read_safetensors(empty, fix=FIX)
    text = tmp_path / "text.safetensors"
    text.write_text("these are not tensors, just some text in a file")
    with pytest.raises(CorruptFileError, match="text.safetensors: not a safetensors file"):
        read_safetensors(text)
    data = bytearray(good.read_bytes())
    data[10:14] = b"@@@@"  # inside the JSON header
    good.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="w.safetensors: damaged safetensors header"):
        check_safetensors(good)
    good.write_bytes(bytes(good.read_bytes()) + b"extra")
    with pytest.raises(CorruptFileError):
        check_safetensors(good)
    with pytest.raises(FileNotFoundError, match=f"missing.safetensors: no such file. {FIX}"):
        read_safetensors(tmp_path / "missing.safetensors", fix=FIX)


def test_bad_json_names_the_file_and_the_position(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "a": 1,\n  oops: 2\n}')
    with pytest.raises(CorruptFileError) as err:
        read_json(path, fix=FIX)
    assert str(err.value) == (f"{path}: not valid JSON: Expecting property name enclosed in double quotes at "
                              f"line 3, column 3. {FIX}")
    path.write_text("")
    with pytest.raises(CorruptFileError, match=r"config.json: empty file \(0 bytes\), expected a model config"):
        read_json(path, what="a model config")
    path.write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match="holds a JSON array where a model config should be a JSON object"):
        read_json(path, what="a model config")
    assert read_json(path, expect=list) == [1, 2]
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(CorruptFileError, match="not a text file"):
        read_json(path)


def test_json_lines_tolerate_only_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n\n{"step": 2}\n{"step": 3, "lo')
    assert read_json_lines(path, torn_last_line_ok=True) == [{"step": 1}, {"step": 2}]
    with pytest.raises(CorruptFileError, match="metrics.jsonl: line 4 is not valid JSON"):
        read_json_lines(path)
    path.write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(CorruptFileError, match="line 2 is not valid JSON"):
        read_json_lines(path, torn_last_line_ok=True)


def test_digests_catch_truncation_and_bit_flips(good: Path) -> None:
    from forethought._files import file_digest

    size, digest = good.stat().st_size, file_digest(good)
    verify_digest(good, size, digest)
    data = bytearray(good.read_bytes())
    data[-1] ^= 1
    good.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="SHA-256 mismatch"):
        verify_digest(good, size, digest, fix=FIX)
    good.write_bytes(bytes(data[:-3]))
    with pytest.raises(CorruptFileError, match=f"truncated: it was written with {size} bytes, it has {size - 3}"):
        verify_digest(good, size, digest)


def test_written_by_names_the_version_or_says_it_is_older() -> None:
    assert written_by({"forethought_version": "0.3.1"}) == "forethought 0.3.1"
    assert "older version" in written_by({})


# ------------------------------------------------------------------------------------ schema
@dataclass(frozen=True)
class Inner:
    flag: bool = True
    ratio: float = 1.0


@dataclass(frozen=True)
class Outer:
    size: int
    shape: tuple[int, ...]
    pair: tuple[float, float] = (0.5, 0.5)
    name: str | None = None
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


GOOD = {"size": 3, "shape": [1, 2], "pair": [1, 0.25], "name": None, "inner": {"flag": False, "ratio": 2},
        "maybe": None, "extra": {"anything": [1, "x"]}}


def test_a_valid_dict_builds_the_dataclass_with_tuples_and_floats() -> None:
    out = from_json_dict(Outer, GOOD)
    assert out == Outer(3, (1, 2), (1.0, 0.25), None, Inner(False, 2.0), None, {"anything": [1, "x"]})
    assert isinstance(out.pair[0], float) and isinstance(out.inner.ratio, float)
    assert from_json_dict(Outer, {**GOOD, "maybe": {"flag": True, "ratio": 0.5}}).maybe == Inner(True, 0.5)


@pytest.mark.parametrize("change, expected", [
    ({"size": "32"}, "field 'size' must be an integer, got \"32\" (a string)"),
    ({"size": 32.0}, "field 'size' must be an integer, got 32.0 (a number)"),
    ({"size": True}, "field 'size' must be an integer, got true (a bool)"),
    ({"inner": {"flag": "false", "ratio": 1}}, "field 'inner.flag' must be a bool (true or false), got \"false\""),
    ({"inner": {"flag": 0, "ratio": 1}}, "field 'inner.flag' must be a bool (true or false), got 0 (a number)"),
    ({"inner": {"flag": True, "ratio": True}}, "field 'inner.ratio' must be a number, got true (a bool)"),
    ({"shape": [1, 2.5]}, "field 'shape[1]' must be an integer, got 2.5 (a number)"),
    ({"shape": 3}, "field 'shape' must be a list of integers, got 3 (a number)"),
    ({"pair": [1, 2, 3]}, "field 'pair' must be a list of 2 numbers, got [1, 2, 3] (a list)"),
    ({"name": 5}, "field 'name' must be a string or null, got 5 (a number)"),
    ({"maybe": "no"}, "field 'maybe' must be a JSON object (Inner) or null, got \"no\" (a string)"),
    ({"maybe": {"flag": "yes", "ratio": 1}}, "field 'maybe.flag' must be a bool (true or false), got \"yes\""),
    ({"inner": {"flag": True}}, "missing field 'inner.ratio' (a number)"),
    ({"inner": {"flag": True, "ratio": 1, "colour": "red"}}, "unknown field 'inner.colour'"),
    ({"size": 0}, "size must be >= 1, got 0"),
])
def test_each_wrong_field_is_named_with_its_type_and_value(change: dict, expected: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        from_json_dict(Outer, {**GOOD, **change}, source="m/config.json", written_by="forethought 9.9", fix=FIX)
    msg = str(err.value)
    assert msg.startswith("m/config.json: not a valid Outer: ") and expected in msg, msg
    assert msg.endswith(f"(the file was written by forethought 9.9). {FIX}")


def test_all_problems_are_reported_at_once_and_the_top_level_is_checked() -> None:
    data = {k: v for k, v in GOOD.items() if k != "shape"}
    with pytest.raises(ConfigFileError) as err:
        from_json_dict(Outer, {**data, "size": "3", "colour": 1})
    assert err.value.problems == ["unknown field 'colour' (Outer has no such field: a typo, or a file from a newer "
                                  "version)",
                                  "field 'size' must be an integer, got \"3\" (a string)",
                                  "missing field 'shape' (a list of integers)"]
    with pytest.raises(ConfigFileError, match=r"the top level must be a JSON object \(Outer\), got \[1\] \(a list\)"):
        from_json_dict(Outer, [1])
