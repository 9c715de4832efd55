"""Checking a model's files against their recorded sha256 at load, fast on a warm start.

Hashing every file of a model each time it loads would cost seconds for a large one. A file's
digest is remembered with its (size, mtime_ns, inode) in ``$MODELDECK_HOME/verdicts/<key>.json``;
a file whose stat still matches is not read again, and any write to it (which changes its mtime,
or its inode when it is replaced) makes it hashed again.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from .pull import sha256_file

__all__ = ["FileCheck", "VerdictCache", "check_files", "record_files"]

FileCheck = tuple[Path, str]
"""One file to check: its path and the sha256 (hex) it must have."""


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class VerdictCache:
    """The remembered digests of one model's files: ``{path: [size, mtime_ns, inode, sha256]}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            self._entries = {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 4}

    def digest(self, path: Path) -> str | None:
        """The file's sha256 (hex), from the cache while its stat is unchanged; ``None`` if it is missing."""
        key = _stat_key(path)
        if key is None:
            return None
        entry = self._entries.get(str(path))
        if entry is not None and entry[:3] == key and isinstance(entry[3], str):
            return entry[3]
        digest = sha256_file(path)
        self.record(path, digest, key)
        return digest

    def record(self, path: Path, digest: str, key: list[int] | None = None) -> None:
        """Remember ``digest`` for ``path`` as it is now (after an install that just hashed it)."""
        key = key if key is not None else _stat_key(path)
        if key is not None:
            self._entries[str(path)] = [*key, digest]
            self._dirty = True

    def save(self) -> None:
        """Write the cache atomically; a read-only home only costs the next start a re-hash."""
        if not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
            tmp.write_text(json.dumps(self._entries), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            return
        self._dirty = False


def check_files(cache: VerdictCache, files: Iterable[FileCheck]) -> list[str]:
    """Problems (``missing: p`` / ``changed: p (...)``) among ``files``; the cache is saved either way."""
    problems = []
    for path, expected in files:
        actual = cache.digest(path)
        if actual is None:
            problems.append(f"missing: {path}")
        elif actual != expected:
            problems.append(f"changed: {path} (recorded sha256 {expected}, now {actual})")
    cache.save()
    return problems


def record_files(cache: VerdictCache, files: Mapping[Path, str]) -> None:
    for path, digest in files.items():
        cache.record(path, digest)
    cache.save()
