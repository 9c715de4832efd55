"""A document index on disk: chunk vectors in a NumPy ``.npy`` file, files and chunks in SQLite.

Every update writes a new ``vectors-<generation>.npy`` first, then commits the SQLite
transaction that points ``meta.vectors`` at it, then deletes the old file: a crash at any
point leaves the previous index or the new one, never a mix. Updates hold ``update.lock``
(one updater at a time); readers check the generation when they fetch chunks, so a reader
in another process follows an update instead of pairing old vectors with new rows.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DocumentIndexMismatchError, DocumentIndexNotFoundError

try:
    import fcntl
except ImportError:  # Windows: updates from two processes at once are not guarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["DB_NAME", "FORMAT", "ChunkRecord", "FileRecord", "FileUpdate", "IndexStore"]

DB_NAME = "index.sqlite"
FORMAT = "1"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, chars INTEGER NOT NULL, pages INTEGER, chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    row INTEGER NOT NULL, file_id INTEGER NOT NULL REFERENCES files(id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL
);
CREATE INDEX chunks_row ON chunks(row);
CREATE INDEX chunks_file ON chunks(file_id);
"""
_INSERT_CHUNK = 'INSERT INTO chunks (row, file_id, ordinal, start, "end", page, text) VALUES (?, ?, ?, ?, ?, ?, ?)'


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str  # relative to the indexed folder, with forward slashes
    kind: str
    mtime_ns: int
    size: int
    sha256: str
    chars: int
    pages: int | None
    chunks: int


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    ordinal: int
    start: int
    end: int
    page: int | None
    text: str


@dataclass(frozen=True, slots=True)
class FileUpdate:
    """A new or changed file: its record, its chunks and one vector per chunk."""

    record: FileRecord
    chunks: Sequence[ChunkRecord]
    vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class ChunkRow:
    row: int
    source: str
    ordinal: int
    start: int
    end: int
    page: int | None
    text: str


class IndexStore:
    """One open index directory; ``vectors[row]`` is the vector of the chunk stored with that row."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self.conn = conn
        self.meta: dict[str, str] = {}
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.refresh()

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / DB_NAME).is_file()

    @classmethod
    def create(cls, directory: Path, meta: Mapping[str, str]) -> IndexStore:
        """A new, empty index in ``directory``, replacing any index already there."""
        directory.mkdir(parents=True, exist_ok=True)
        for old in [directory / DB_NAME, *directory.glob("vectors-*.npy")]:
            old.unlink(missing_ok=True)
        conn = _connect(directory)
        dim = int(meta["dim"])
        name = "vectors-0.npy"
        _save_npy(directory / name, np.zeros((0, dim), dtype=np.float32))
        with conn:
            conn.executescript(_SCHEMA)
            rows = {**meta, "format": FORMAT, "vectors": name, "generation": "0"}
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
        return cls(directory, conn)

    @classmethod
    def open(cls, directory: Path) -> IndexStore:
        if not cls.exists(directory):
            raise DocumentIndexNotFoundError(
                f"no document index in {str(directory)!r}",
                hint="build it first: DocumentIndex.build(folder), or `modeldeck ask FOLDER QUESTION`",
            )
        try:
            conn = _connect(directory)
            fmt = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DocumentIndexMismatchError(
                f"the document index in {str(directory)!r} is unreadable ({exc})", hint="rebuild it (--rebuild)"
            ) from None
        if fmt is None or fmt[0] != FORMAT:
            conn.close()
            raise DocumentIndexMismatchError(
                f"the document index in {str(directory)!r} has format {fmt and fmt[0]!r}, "
                f"this version reads {FORMAT!r}",
                hint="rebuild it (--rebuild, or DocumentIndex.build(folder, rebuild=True))",
            )
        return cls(directory, conn)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query in it sees the same committed state."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def refresh(self) -> None:
        """Follow an update committed by another process (or another index object) since the last look."""
        for _ in range(5):
            with self._read() as conn:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                count = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            if self.meta and meta["generation"] == self.meta["generation"]:
                return
            path = self.directory / meta["vectors"]
            try:
                vectors = np.load(path, allow_pickle=False)
            except FileNotFoundError:
                continue  # a newer update replaced it between our two reads: look again
            except (OSError, ValueError) as exc:
                raise DocumentIndexMismatchError(
                    f"the index vectors {str(path)!r} are unreadable ({exc})", hint="rebuild the index (--rebuild)"
                ) from None
            if vectors.ndim != 2 or vectors.shape[0] != count or vectors.dtype != np.float32:
                raise DocumentIndexMismatchError(
                    f"the index vectors {str(path)!r} hold {vectors.shape} {vectors.dtype}, "
                    f"expected {count} float32 rows",
                    hint="rebuild the index (--rebuild)",
                )
            vectors.flags.writeable = False
            self.meta, self.vectors = meta, vectors
            return
        raise DocumentIndexMismatchError(
            f"the index in {str(self.directory)!r} kept changing while being read", hint="try again"
        )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the index's update lock (one updater at a time, across processes), up to date inside."""
        with open(self.directory / "update.lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                self.refresh()
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def files(self) -> dict[str, FileRecord]:
        cursor = self.conn.execute(
            "SELECT path, kind, mtime_ns, size, sha256, chars, pages, chunks FROM files ORDER BY path"
        )
        return {row[0]: FileRecord(*row) for row in cursor}

    def chunk_rows(self, rows: Sequence[int], *, generation: str | None = None) -> list[ChunkRow] | None:
        """The chunks stored at ``rows``, in the order asked; ``None`` if the index is no longer at ``generation``."""
        marks = ",".join("?" * len(rows))
        with self._read() as conn:
            now = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            if generation is not None and now != generation:
                return None
            if not rows:
                return []
            cursor = conn.execute(
                f'SELECT c.row, f.path, c.ordinal, c.start, c."end", c.page, c.text FROM chunks c '
                f"JOIN files f ON f.id = c.file_id WHERE c.row IN ({marks})",
                [int(r) for r in rows],
            )
            found = {row[0]: ChunkRow(*row) for row in cursor}
        return [found[int(r)] for r in rows]

    def file_chunks(self, path: str) -> list[ChunkRow]:
        cursor = self.conn.execute(
            'SELECT c.row, f.path, c.ordinal, c.start, c."end", c.page, c.text FROM chunks c '
            "JOIN files f ON f.id = c.file_id WHERE f.path = ? ORDER BY c.ordinal",
            (path,),
        )
        return [ChunkRow(*row) for row in cursor]

    def apply(self, *, remove: Iterable[str], upsert: Sequence[FileUpdate], touch: Sequence[FileRecord]) -> None:
        """Drop ``remove``, replace or add ``upsert``, refresh the stat of ``touch``: one atomic step."""
        conn = self.conn
        gone = set(remove) | {u.record.path for u in upsert}
        ids = {path: fid for fid, path in conn.execute("SELECT id, path FROM files")}
        dropped_ids = [ids[p] for p in gone if p in ids]
        keep = np.ones(self.vectors.shape[0], dtype=bool)
        for fid in dropped_ids:
            keep[[r for (r,) in conn.execute("SELECT row FROM chunks WHERE file_id = ?", (fid,))]] = False
        parts = [self.vectors[keep], *(u.vectors.astype(np.float32, copy=False) for u in upsert)]
        vectors = np.concatenate(parts) if parts else self.vectors
        generation = int(self.meta["generation"]) + 1
        name = f"vectors-{generation}.npy"
        _save_npy(self.directory / name, vectors)
        # Kept rows move down by the number of dropped rows before them; ascending order never collides.
        new_rows = np.cumsum(keep) - 1
        moves = [(int(new_rows[r]), int(r)) for r in np.flatnonzero(keep) if new_rows[r] != r]
        try:
            with conn:
                for fid in dropped_ids:
                    conn.execute("DELETE FROM chunks WHERE file_id = ?", (fid,))
                    conn.execute("DELETE FROM files WHERE id = ?", (fid,))
                conn.executemany("UPDATE chunks SET row = ? WHERE row = ?", moves)
                row = int(keep.sum())
                for update in upsert:
                    rec = update.record
                    cursor = conn.execute(
                        "INSERT INTO files (path, kind, mtime_ns, size, sha256, chars, pages, chunks) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (rec.path, rec.kind, rec.mtime_ns, rec.size, rec.sha256, rec.chars, rec.pages, rec.chunks),
                    )
                    fid = cursor.lastrowid
                    rows = [
                        (row + i, fid, c.ordinal, c.start, c.end, c.page, c.text) for i, c in enumerate(update.chunks)
                    ]
                    conn.executemany(_INSERT_CHUNK, rows)
                    row += len(update.chunks)
                stats = [(r.mtime_ns, r.size, r.path) for r in touch]
                conn.executemany("UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?", stats)
                conn.executemany(
                    "UPDATE meta SET value = ? WHERE key = ?", [(name, "vectors"), (str(generation), "generation")]
                )
        except BaseException:
            (self.directory / name).unlink(missing_ok=True)
            raise
        old = self.directory / self.meta["vectors"]
        self.meta.update(vectors=name, generation=str(generation))
        vectors.flags.writeable = False
        self.vectors = vectors
        with contextlib.suppress(OSError):
            old.unlink()

    def close(self) -> None:
        self.conn.close()


def _connect(directory: Path) -> sqlite3.Connection:
    # A DocumentIndex serialises its own use of the connection (one lock), so threads may share it.
    return sqlite3.connect(directory / DB_NAME, check_same_thread=False)


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
