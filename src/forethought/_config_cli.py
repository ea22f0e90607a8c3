"""Command-line options generated from a config dataclass, so every default and help text lives once.

A field becomes ``--field-name``; its ``metadata`` carries the help text (``help``), the allowed
values (``choices``), the type to parse when it is not the annotation's (``type``), for booleans
the flag that flips the default (``flag``, e.g. ``"--no-baseline"``), and ``cli=False`` for a
field that is not an option. ``config_from_args`` builds the dataclass back from the parsed namespace, so
its ``__post_init__`` validates what the user typed. Imports nothing heavy: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _base_type(tp: Any) -> tuple[type, bool]:
    """``int | None`` -> ``(int, True)``; ``float`` -> ``(float, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def config_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are options (``metadata["cli"]`` is not ``False``)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def add_config_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """Add one option per field of the dataclass ``cls`` (types from its annotations)."""
    hints = typing.get_type_hints(cls)
    for f in config_fields(cls):
        tp, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        name = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if tp is bool:
            flag = f.metadata.get("flag", name)
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=help_text)
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "type": f.metadata.get("type", tp), "help": help_text}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and not optional:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            if default is not None and "(default" not in help_text:
                kwargs["help"] = f"{help_text} (default {default})" if help_text else f"default {default}"
        parser.add_argument(name, **kwargs)


def config_from_args(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """``cls`` built from the parsed options of :func:`add_config_arguments` (and ``extra`` fields)."""
    values = {f.name: getattr(args, f.name) for f in config_fields(cls)}
    return cls(**values, **extra)


def _parse_json(text: str, option: str | None, expected: str, example: str, ok: Any) -> Any:
    """``json.loads(text)`` checked by ``ok``; a ``ValueError`` naming ``option`` (when given) and an example."""
    prefix = f"{option}: " if option else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{prefix}not JSON ({e.msg} at column {e.colno}). Write {expected}, e.g. {example}") from None
    if not ok(value):
        raise ValueError(f"{prefix}expected {expected}, got {text!r}. Write e.g. {example}")
    return value


def parse_json_object(text: str, option: str | None = "--env-kwargs") -> dict[str, Any]:
    """A JSON object given on the command line (``--env-kwargs '{"image_size": 96}'``), or a ``ValueError``
    in the CLI's style naming ``option`` (``None``: for argparse, which names the option itself)."""
    return _parse_json(text, option, "a JSON object", "'{\"image_size\": 64}'", lambda v: isinstance(v, dict))


def parse_json_list(text: str, option: str) -> list[float]:
    """A JSON list of numbers given on the command line (``--state-weights '[0, 0, 1, 1, 1, 0, 0]'``)."""
    value = _parse_json(text, option, "a JSON list of numbers", "'[0, 1, 1]'", lambda v: isinstance(v, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))
    return [float(v) for v in value]
