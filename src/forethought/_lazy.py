"""Lazy package exports (PEP 562): a name is imported from its submodule on first access.

Packages whose submodules are needed in light contexts (the CLI's ``--help``, spawned collection
workers) use this so that importing the package itself does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """``(__getattr__, __all__)`` for ``package``; ``exports`` maps a name to its module's full path."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
