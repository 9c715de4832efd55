"""The runtime plug point: what every framework adapter reports, and how frameworks are imported."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Protocol, runtime_checkable

from ..errors import DependencyError

__all__ = ["Runtime", "import_framework", "size_thread_pools"]


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


def size_thread_pools(environ: Mapping[str, str]) -> None:
    """Size the thread pool of a framework imported before this process was forked from ``environ``.

    torch sets its pool size once, when it is imported, from ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS``: a worker forked from a process that imported it inherits that size, not
    the one its own environment asks for. Unset, the inherited default is torch's own. Nothing is
    imported here: a framework the worker imports itself reads its environment then.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    for var in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):  # torch's own order: MKL's wins
        value = environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            torch.set_num_threads(int(value))
            return
