"""Module attributes imported on first access, so a package ``__init__`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(module: str, targets: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``name`` to ``targets[name] = (module, attribute)``."""

    def __getattr__(name: str) -> Any:
        if name in targets:
            target_module, attribute = targets[name]
            return getattr(importlib.import_module(target_module), attribute)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
