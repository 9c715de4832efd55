"""The runtime plug point: what every framework adapter reports, and how frameworks are imported."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Protocol, runtime_checkable

from ..errors import DependencyError

__all__ = ["Runtime", "import_framework"]


@runtime_checkable
class Runtime(Protocol):
    """A loaded model inside one framework. Tasks drive the framework-specific methods."""

    name: str
    device: str

    def memory_bytes(self) -> int | None:
        """Bytes held by weights and buffers, or ``None`` when the framework cannot tell."""
        ...


def import_framework(module: str, *, package: str, extra: str, purpose: str = "") -> ModuleType:
    """Import a framework module, turning a missing install into a ``DependencyError`` with the fix."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing *top-level* package is a missing dependency; anything else is a real bug.
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] != module.split(".")[0]:
            raise
        raise DependencyError(package, extra=extra, purpose=purpose) from exc
