"""The gallery file: SQLite in WAL mode, its meta, and one transaction per change that bumps a generation.

Tables: ``meta`` (schema, model_id, dim, metric, threshold, generation), ``people`` (id, unique
name) and ``vectors`` (id, person, float32 blob, source, created). Ids use AUTOINCREMENT, so an id
is never reused and a stale one can never remove someone else's vector.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, GalleryNotFoundError

__all__ = ["SCHEMA_VERSION", "GalleryMeta", "GalleryStore"]

SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created REAL NOT NULL)",
    """CREATE TABLE vectors (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        vector BLOB NOT NULL,
        source TEXT NOT NULL,
        created REAL NOT NULL
    )""",
    "CREATE INDEX vectors_person ON vectors(person_id)",
)
_HAS_META = "SELECT count(*) FROM sqlite_master WHERE name = 'meta'"


class _Absent(Exception):
    """Raised inside a write to roll it back when the row to remove is not there."""


@dataclass(frozen=True, slots=True)
class GalleryMeta:
    """The model whose vectors the file holds."""

    model_id: str
    dim: int
    metric: str
    threshold: float


class GalleryStore:
    """One connection to a gallery file, shared by threads under ``lock``."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.lock = threading.RLock()
        if not self.is_present():
            if path.exists() and not path.is_file():
                raise GalleryNotFoundError(f"{str(path)!r} is not a file", hint="give the gallery file's path")
            if not create:
                raise GalleryNotFoundError(
                    f"no face gallery at {str(path)!r}",
                    hint="check the path, or enroll someone first: modeldeck faces enroll GALLERY FOLDER",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise self._not_a_gallery(str(exc)) from None

    def is_present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def _not_a_gallery(self, why: str) -> GalleryNotFoundError:
        return GalleryNotFoundError(f"{str(self.path)!r} is not a face gallery ({why})", hint="give a gallery file")

    def is_blank(self) -> bool:
        """True for a new or empty SQLite file (no table at all), which ``create`` may initialise."""
        with self.lock:
            try:
                return not self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            except sqlite3.DatabaseError:
                return False  # not SQLite: read_meta says so

    def read_meta(self) -> GalleryMeta:
        with self.lock:
            try:
                has_meta = self.conn.execute(_HAS_META).fetchone()[0]
                meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall()) if has_meta else {}
            except sqlite3.DatabaseError as exc:
                raise self._not_a_gallery(str(exc)) from None
        if "model_id" not in meta:
            raise GalleryNotFoundError(
                f"{str(self.path)!r} is an SQLite file but not a modeldeck face gallery",
                hint="give the path of a gallery file, or a new path to create one",
            )
        if int(meta.get("schema", "0")) > SCHEMA_VERSION:
            raise ConfigError(
                f"the gallery {str(self.path)!r} has schema {meta['schema']}, newer than this modeldeck's "
                f"{SCHEMA_VERSION}",
                hint="upgrade modeldeck",
            )
        return GalleryMeta(meta["model_id"], int(meta["dim"]), meta["metric"], float(meta["threshold"]))

    def create(self, meta: GalleryMeta) -> GalleryMeta:
        """Initialise a blank file for ``meta``'s model; if another process got there first, keep theirs."""
        with self.lock:
            # WAL is recorded in the file: readers go on while a writer commits, from any process.
            self.conn.execute("PRAGMA journal_mode = WAL")
            with self.write() as conn:
                if not conn.execute(_HAS_META).fetchone()[0]:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    values = {
                        "schema": str(SCHEMA_VERSION),
                        "model_id": meta.model_id,
                        "dim": str(meta.dim),
                        "metric": meta.metric,
                        "threshold": repr(meta.threshold),
                        "generation": "0",
                        "created": repr(time.time()),
                    }
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", values.items())
        return self.read_meta()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the file's lock is taken up front; every change commits or none does."""
        with self.lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                if conn.execute(_HAS_META).fetchone()[0]:
                    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                    conn.execute("ROLLBACK")
                raise

    def generation(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def all_vectors(self) -> tuple[int, list[tuple[int, int, str, bytes]]]:
        """``(generation, rows)`` read in one snapshot, rows ordered by person then id."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                generation = self.generation()
                rows = self.conn.execute(
                    "SELECT v.id, v.person_id, p.name, v.vector FROM vectors v JOIN people p ON p.id = v.person_id "
                    "ORDER BY v.person_id, v.id"
                ).fetchall()
            finally:
                self.conn.execute("COMMIT")
        return generation, rows

    # -- people and their vectors

    def count_people(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT count(*) FROM people").fetchone()[0])

    def people(self) -> list[tuple[str, int]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT p.name, count(v.id) FROM people p LEFT JOIN vectors v ON v.person_id = p.id "
                "GROUP BY p.id ORDER BY p.name"
            ).fetchall()
        return [(str(name), int(count)) for name, count in rows]

    def images(self, name: str) -> list[tuple[int, str]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT v.id, v.source FROM vectors v JOIN people p ON p.id = v.person_id WHERE p.name = ? "
                "ORDER BY v.id",
                (name,),
            ).fetchall()
        return [(int(i), str(source)) for i, source in rows]

    def add(self, name: str, vectors: Sequence[tuple[bytes, str]]) -> tuple[list[int], int]:
        """Store ``(float32 blob, source)`` rows for ``name`` (created if new): their ids, and the person's total."""
        now = time.time()
        with self.write() as conn:
            conn.execute("INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)", (name, now))
            person_id = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
            ids = [self._insert(conn, person_id, blob, source, now) for blob, source in vectors]
            total = conn.execute("SELECT count(*) FROM vectors WHERE person_id = ?", (person_id,)).fetchone()[0]
        return ids, int(total)

    def _insert(self, conn: sqlite3.Connection, person_id: int, blob: bytes, source: str, now: float) -> int:
        cursor = conn.execute(
            "INSERT INTO vectors (person_id, vector, source, created) VALUES (?, ?, ?, ?)",
            (person_id, blob, source, now),
        )
        return int(cursor.lastrowid or 0)

    def remove_person(self, name: str) -> int | None:
        """How many vectors went with the person; None when there is no such person (nothing written)."""
        try:
            with self.write() as conn:
                row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise _Absent
                removed = conn.execute("DELETE FROM vectors WHERE person_id = ?", (row[0],)).rowcount
                conn.execute("DELETE FROM people WHERE id = ?", (row[0],))
        except _Absent:
            return None
        return int(removed)

    def remove_image(self, image_id: int) -> str | None:
        """The removed vector's person (removed too when it was their last); None when there is no such id."""
        try:
            with self.write() as conn:
                row = conn.execute(
                    "SELECT p.id, p.name FROM vectors v JOIN people p ON p.id = v.person_id WHERE v.id = ?",
                    (image_id,),
                ).fetchone()
                if row is None:
                    raise _Absent
                conn.execute("DELETE FROM vectors WHERE id = ?", (image_id,))
                if not conn.execute("SELECT count(*) FROM vectors WHERE person_id = ?", (row[0],)).fetchone()[0]:
                    conn.execute("DELETE FROM people WHERE id = ?", (row[0],))
        except _Absent:
            return None
        return str(row[1])

    def close(self) -> None:
        with self.lock:
            self.conn.close()
