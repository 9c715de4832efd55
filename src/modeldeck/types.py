"""The contracts between layers: what a resolved model is, and the plug-point Protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from .errors import OptionError

__all__ = ["GRAPH_LEVELS", "GraphLevel", "ModelInfo", "OnnxSessionOptions", "Result", "TaskProtocol"]

#: ONNX Runtime's graph optimisation levels, by the names settings, decks and ``OnnxSessionOptions`` use.
GraphLevel = Literal["disable", "basic", "extended", "all"]
GRAPH_LEVELS: tuple[GraphLevel, ...] = get_args(GraphLevel)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class ModelInfo:
    """A model resolved to files on this machine, ready for a task to load.

    ``name`` is the catalog or imported name, ``tasks`` the tasks it can serve (the first is its
    default), ``runtime`` the registered runtime that reads ``path``.
    """

    name: str
    version: str
    tasks: tuple[str, ...]
    runtime: str
    path: Path
    source: str = ""
    license: str = ""
    card: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "card", _frozen_mapping(self.card))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy cannot be pickled; worker processes send ModelInfo back to the server.
        fields = (self.name, self.version, self.tasks, self.runtime, self.path, self.source, self.license)
        return (type(self), (*fields, dict(self.card)))

    @property
    def task(self) -> str:
        return self.tasks[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tasks": list(self.tasks),
            "runtime": self.runtime,
            "path": str(self.path),
            "source": self.source,
            "license": self.license,
            "card": dict(self.card),
        }


@dataclass(frozen=True, slots=True)
class OnnxSessionOptions:
    """How the ONNX Runtime sessions of one model are built (``MODELDECK_ONNX_THREADS``, ``..._GRAPH_LEVEL``).

    ``threads`` caps intra-op parallelism (None: the CPUs this process may use, at most 8);
    ``graph_level`` is the graph optimisation level. Models of other runtimes ignore them.
    """

    threads: int | None = None
    graph_level: GraphLevel = "all"

    def __post_init__(self) -> None:
        threads = self.threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise OptionError(
                f"ONNX Runtime threads must be an integer >= 1, got {threads!r}",
                hint="leave it unset (None) for one thread per available CPU, at most 8",
            )
        if self.graph_level not in GRAPH_LEVELS:
            raise OptionError(
                f"ONNX Runtime graph level must be one of {', '.join(GRAPH_LEVELS)}, got {self.graph_level!r}",
                hint="'all' (the default) applies every optimisation; 'disable' runs the graph as exported",
            )


@runtime_checkable
class Result(Protocol):
    """Every task result is immutable and converts losslessly to plain JSON-able data."""

    def to_dict(self) -> dict[str, Any]: ...


class TaskProtocol(Protocol):
    """What the server and the batch jobs need of a loaded task (see ``tasks.base.Task``)."""

    name: str
    info: ModelInfo

    def parse_options(self, options: Mapping[str, Any] | None) -> Any: ...

    def preprocess(self, raw: Any, options: Any) -> Any: ...

    def forward(self, batch: Sequence[Any]) -> list[Any]: ...

    def postprocess(self, raw: Any, encoded: Any, options: Any) -> Result: ...
