"""The task x framework plug point: a ``Backend`` is one task on one runtime, found by both names.

``Task.from_model`` is written once (``tasks/base.py``): it asks ``BACKENDS`` for the class
registered under ``(task, info.runtime)``, calls its ``load``, and hands the loaded backend to the
task. Each task module states what its backends must provide as a Protocol extending ``Backend``
(``NERBackend``, ``Detector``, ``FaceEmbedder``, ...). Adding a framework to a task is one class and
one ``BACKENDS.register`` line; another distribution adds one through the ``modeldeck.backends``
entry-point group, named ``"task/runtime"``::

    [modeldeck.backends]
    ner/mylib = mylib.modeldeck:MyNERBackend

Load options that only one runtime understands reach only that runtime's backends: a backend
registered for ``onnxruntime`` takes ``session=`` (``types.OnnxSessionOptions``: intra-op threads
and graph level) in its ``load``, and ``Task.from_model`` passes it to no other.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from ..errors import UnknownNameError

if TYPE_CHECKING:
    from ..runtimes.base import Runtime
    from ..types import ModelInfo

__all__ = ["ENTRY_POINT_GROUP", "Backend", "BackendBase", "BackendRegistry"]

ENTRY_POINT_GROUP = "modeldeck.backends"


@runtime_checkable
class Backend(Protocol):
    """A model of one framework loaded for one task.

    ``runtime`` reports the framework, device and memory (``runtimes.base.Runtime``);
    ``option_defaults`` are task options this family was tuned with (the caller's still win);
    ``runtime_details`` is what ``GET /v1/models/{name}`` shows of the loaded runtime beyond its
    name, device and memory; ``close`` releases what the model holds.
    """

    runtime: Runtime
    option_defaults: Mapping[str, Any]

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self: ...

    def runtime_details(self) -> Mapping[str, Any]: ...

    def close(self) -> None: ...


class BackendBase:
    """The optional parts of ``Backend`` with their defaults; most backends wrap one runtime."""

    option_defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def runtime_details(self) -> Mapping[str, Any]:
        """Nothing beyond the runtime's name, device and memory, unless the backend says more."""
        return {}

    def close(self) -> None:
        """Release the runtime when it can be released; the default holds only Python objects."""
        close = getattr(self.runtime, "close", None)  # runtimes are third-party objects; closing is optional
        if callable(close):
            close()


class BackendRegistry:
    """``(task, runtime) -> "module:Class"``, imported on first ``get``, open to entry points."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP) -> None:
        self._group = entry_point_group
        self._targets: dict[tuple[str, str], str] = {}
        self._loaded: dict[tuple[str, str], type[Backend]] = {}
        self._scanned = False

    def register(self, task: str, runtime: str, target: str) -> None:
        if ":" not in target:
            raise ValueError(f"backend target must be 'module:Class', got {target!r}")
        self._targets[(task, runtime)] = target
        self._loaded.pop((task, runtime), None)

    def _scan_entry_points(self) -> None:
        if self._scanned or self._group is None:
            return
        self._scanned = True
        for ep in entry_points(group=self._group):
            task, sep, runtime = ep.name.partition("/")
            if sep and task and runtime:
                self._targets.setdefault((task, runtime), ep.value)

    def runtimes(self, task: str) -> list[str]:
        """The runtimes that have a backend for ``task``."""
        self._scan_entry_points()
        return sorted(runtime for t, runtime in self._targets if t == task)

    def pairs(self) -> list[tuple[str, str]]:
        self._scan_entry_points()
        return sorted(self._targets)

    def __contains__(self, key: object) -> bool:
        self._scan_entry_points()
        return key in self._targets

    def get(self, task: str, runtime: str) -> type[Backend]:
        key = (task, runtime)
        if key in self._loaded:
            return self._loaded[key]
        self._scan_entry_points()
        target = self._targets.get(key)
        if target is None:
            raise UnknownNameError(f"{task} runtime", runtime, self.runtimes(task))
        module_name, _, attribute = target.partition(":")
        cls: type[Backend] = getattr(importlib.import_module(module_name), attribute)
        self._loaded[key] = cls
        return cls
