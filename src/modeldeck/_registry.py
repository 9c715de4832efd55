"""Named registries of lazily imported objects (tasks, runtimes, sources), open to entry points."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar, cast

from .errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps stable names to ``"module:attribute"`` targets, imported on first ``get``.

    Third-party packages add names through the entry-point group given at construction, so
    ``import modeldeck`` never imports what it does not use.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._group = entry_point_group
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._scanned = False

    def register(self, name: str, target: str) -> None:
        if ":" not in target:
            raise ValueError(f"registry target must be 'module:attribute', got {target!r}")
        self._targets[name] = target
        self._loaded.pop(name, None)

    def _scan_entry_points(self) -> None:
        if self._scanned or self._group is None:
            return
        self._scanned = True
        for ep in entry_points(group=self._group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._scan_entry_points()
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        self._scan_entry_points()
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        self._scan_entry_points()
        target = self._targets.get(name)
        if target is None:
            raise UnknownNameError(self.kind, name, self._targets)
        module_name, _, attribute = target.partition(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        self._loaded[name] = cast(T, obj)
        return self._loaded[name]
