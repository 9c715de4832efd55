"""One catalog entry: a named model, what it does, how it runs and where it comes from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError
from .sources import Source

__all__ = ["CatalogEntry", "check_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_name(value: object, what: str) -> str:
    """Names and versions become directory names, so they are plain: letters, digits, ``._+-``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"{what} must start with a letter or digit and hold only letters, digits and . _ + -, got {value!r}"
        )
    return value


def _tasks(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what} must be a list of task names, got {value!r}")
    for task in value:
        if not isinstance(task, str) or not task:
            raise ConfigError(f"{what} must hold non-empty task names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class CatalogEntry:
    """A named model: what it does (``tasks``, first is the default), how it runs, where it comes from."""

    name: str
    tasks: tuple[str, ...]
    runtime: str
    source: Source
    license: str = "unknown"
    card: Mapping[str, Any] = field(default_factory=dict, hash=False)
    default_for: tuple[str, ...] = ()
    version: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "a model name")
        object.__setattr__(self, "tasks", _tasks(self.tasks, f"model {self.name!r}: 'tasks'"))
        if not self.tasks:
            raise ConfigError(f"model {self.name!r}: 'tasks' is empty", hint="name at least one task, e.g. ['ner']")
        object.__setattr__(self, "default_for", _tasks(self.default_for, f"model {self.name!r}: 'default_for'"))
        stray = [t for t in self.default_for if t not in self.tasks]
        if stray:
            raise ConfigError(
                f"model {self.name!r} is default_for {stray} but does not serve them",
                hint=f"default_for must be a subset of tasks {list(self.tasks)}",
            )
        if not isinstance(self.runtime, str) or not self.runtime:
            raise ConfigError(f"model {self.name!r}: 'runtime' must be a runtime name, got {self.runtime!r}")
        if not isinstance(self.license, str):
            raise ConfigError(f"model {self.name!r}: 'license' must be a string, got {self.license!r}")
        if not isinstance(self.card, Mapping):
            raise ConfigError(f"model {self.name!r}: 'card' must be an object, got {self.card!r}")
        object.__setattr__(self, "card", MappingProxyType(dict(self.card)))
        if self.version is not None:
            check_name(self.version, f"model {self.name!r}: 'version'")
