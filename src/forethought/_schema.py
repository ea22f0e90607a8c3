"""Checking a dict read from a JSON file against a dataclass, field by field, before building it.

JSON has fewer types than Python and hand-edited files have every mistake: ``"latent_dim": "32"``,
``32.0``, ``"residual": "false"`` (a non-empty string, so true). :func:`from_json_dict` checks each
value against the field's type hint and builds the dataclass only when all of them fit:

* ``bool`` takes only ``true``/``false``; ``int`` only integers (not ``32.0``, ``"32"`` or a bool);
  ``float`` takes any number but a bool (an int becomes a float); ``str`` only strings;
* ``tuple[int, ...]`` and ``tuple[float, float]`` take JSON arrays (returned as tuples);
  ``dict[str, X]`` takes objects; ``X | None`` also takes ``null``; ``Any`` takes anything;
* a field whose type is a dataclass takes an object checked the same way, recursively.

Every field must be present (files are written with all of them; the caller fills in defaults
for files written before a field existed) and no unknown field may be. All problems are reported
at once by :class:`ConfigFileError`, each naming the field, the expected type and the value given,
with the file and the version that wrote it. Errors raised by the dataclass's own checks
(``__post_init__``) are reported the same way.

This is a layer-0 utility: it imports nothing from ``forethought``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar, Union

T = TypeVar("T")


class ConfigFileError(ValueError):
    """A config read from a file has wrong, missing or unknown fields (or fails its own checks)."""

    def __init__(self, source: str, cls_name: str, problems: list[str], written_by: str = "", fix: str = "") -> None:
        self.source = source
        self.problems = problems
        where = f"{source}: " if source else ""
        by = f" (the file was written by {written_by})" if written_by else ""
        what = "; ".join(problems)
        super().__init__(f"{where}not a valid {cls_name}: {what}{by}" + (f". {fix}" if fix else ""))


def from_json_dict(cls: type[T], data: Any, *, source: str = "", written_by: str = "", fix: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` after checking every field's type (module docstring).

    Args:
        source: the file ``data`` came from, named in messages.
        written_by: who wrote it, e.g. ``"forethought 0.2.0"``, named in messages.
        fix: the sentence saying what to do, appended to messages.
    Raises:
        ConfigFileError: a wrong type, a missing or unknown field, or the dataclass's own check failed.
    """
    problems: list[str] = []
    value = _convert(cls, data, "", problems)
    if problems:
        raise ConfigFileError(source, cls.__name__, problems, written_by, fix)
    return value  # type: ignore[return-value]


def _convert(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    """``value`` converted to ``tp``, or ``None`` after appending to ``problems``."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _convert_dataclass(tp, value, where, problems)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:  # the first that fits
            trial: list[str] = []
            converted = _convert(option, value, where, trial)
            if not trial:
                return converted
        # One option and a value of its kind (an object for a dataclass, a list for a tuple): its
        # own problems say more than "must be X or null".
        if len(options) == 1 and _same_kind(options[0], value):
            problems.extend(trial)
        else:
            problems.append(_wrong(where, tp, value))
        return None
    if tp is bool:
        return value if isinstance(value, bool) else _fail(problems, where, tp, value)
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _fail(problems, where, tp, value)
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _fail(problems, where, tp, value)
    if tp is str:
        return value if isinstance(value, str) else _fail(problems, where, tp, value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return _fail(problems, where, tp, value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis) and len(value) != len(args):
            return _fail(problems, where, tp, value)
        item_types = [args[0]] * len(value) if (origin is list or args[1:] == (Ellipsis,)) else list(args)
        before = len(problems)
        items = [_convert(t, v, f"{where}[{i}]", problems) for i, (t, v) in enumerate(zip(item_types, value))]
        if len(problems) > before:
            return None
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return _fail(problems, where, tp, value)
        if not args:
            return dict(value)
        return {k: _convert(args[1], v, f"{where}.{k}", problems) for k, v in value.items()}
    raise TypeError(f"from_json_dict cannot check fields of type {tp!r} ({where}); extend forethought/_schema.py")


def _convert_dataclass(cls: type, value: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        return _fail(problems, where, cls, value)
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    prefix = f"{where}." if where else ""
    for key in sorted(set(value) - names):
        problems.append(f"unknown field '{prefix}{key}' ({cls.__name__} has no such field: a typo, or a file "
                        "from a newer version)")
    before = len(problems)
    kwargs = {}
    for f in fields:
        if f.name not in value:
            problems.append(f"missing field '{prefix}{f.name}' ({_describe(hints[f.name])})")
            continue
        kwargs[f.name] = _convert(hints[f.name], value[f.name], prefix + f.name, problems)
    if len(problems) > before or set(value) - names:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        problems.append(f"{where + ': ' if where else ''}{e}")
        return None


def _same_kind(tp: Any, value: Any) -> bool:
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict or tp is dict:
        return isinstance(value, dict)
    return typing.get_origin(tp) in (tuple, list) and isinstance(value, (list, tuple))


def _fail(problems: list[str], where: str, tp: Any, value: Any) -> None:
    problems.append(_wrong(where, tp, value))
    return None


def _wrong(where: str, tp: Any, value: Any) -> str:
    subject = f"field '{where}'" if where else "the top level"
    return f"{subject} must be {_describe(tp)}, got {_show(value)}"


def _describe(tp: Any) -> str:
    """``int`` -> "an integer", ``tuple[int, ...]`` -> "a list of integers", ..."""
    if dataclasses.is_dataclass(tp):
        return f"a JSON object ({tp.__name__})"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        options = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {_plural(args[0])}"
    if origin is dict or tp is dict:
        return "a JSON object"
    simple = {bool: "a bool (true or false)", int: "an integer", float: "a number", str: "a string", Any: "any value"}
    return simple.get(tp, repr(tp))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "bools"}.get(tp, f"values ({_describe(tp)})")


def _show(value: Any) -> str:
    """The value as it appears in JSON, with its JSON kind: ``"32" (a string)``, ``32.0 (a number)``."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = ("a bool" if isinstance(value, bool) else "a string" if isinstance(value, str) else
            "null" if value is None else "a JSON object" if isinstance(value, dict) else
            "a list" if isinstance(value, (list, tuple)) else "a number" if isinstance(value, (int, float)) else
            type(value).__name__)
    return text if kind == "null" else f"{text} ({kind})"
