"""``DocumentIndex``: a folder of documents, chunked and embedded, searched and read for answers."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DocumentIndexMismatchError, EmptyInputError, InputError, OptionError
from ..tasks.base import check_text
from ._chunks import chunk_spans
from ._extract import SUFFIXES, ExtractedText, extract_bytes
from ._results import AskResult, BuildReport, DocumentAnswer, Passage, SkippedFile
from ._setup import INDEX_DIRNAME, folder_path, index_embedder, index_meta, index_path, load_embedder, load_reader, scan
from ._store import ChunkRecord, ChunkRow, FileRecord, FileUpdate, IndexStore

if TYPE_CHECKING:
    from .._api import Loader
    from ..config import Settings
    from ..tasks.base import Task

__all__ = ["DEFAULT_CHUNK_CHARS", "DEFAULT_OVERLAP_CHARS", "INDEX_DIRNAME", "DocumentIndex", "Progress"]

# About 150-250 MiniLM word pieces of English: a chunk fits the model's 256-token window whole.
DEFAULT_CHUNK_CHARS = 800
DEFAULT_OVERLAP_CHARS = 150
#: ``progress(done, total)``: chunks embedded so far out of the chunks this update embeds.
Progress = Callable[[int, int], None]


class DocumentIndex:
    """A persisted semantic index over the ``.txt``, ``.md``, ``.html`` and ``.pdf`` files of a folder.

    ``DocumentIndex.build(folder)`` creates the index or brings it up to date (only new and changed
    files are embedded); ``open`` reads an existing one; ``search`` ranks passages; ``ask`` adds a
    reader's extractive answer when a ``qa`` model is set.
    """

    def __init__(
        self, folder: Path, store: IndexStore, embedder: Task[Any, Any, Any, Any], *, reader: Any = None
    ) -> None:
        self.folder = folder
        self.store = store
        self.embedder = embedder
        self.reader = reader
        self.report = BuildReport(chunks_total=len(store.vectors))
        self._lock = threading.RLock()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        folder: str | os.PathLike[str],
        *,
        model: str | Task[Any, Any, Any, Any] | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        qa_model: str | os.PathLike[str] | None = None,
        rebuild: bool = False,
        chunk_chars: int | None = None,
        overlap_chars: int | None = None,
        progress: Progress | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
        loader: Loader | None = None,
    ) -> DocumentIndex:
        """Index ``folder`` (into ``<folder>/.modeldeck-index`` unless ``index_dir`` is given).

        ``model`` is the embedding model: a name, ``name@version`` or path of an ``embed`` model,
        or a loaded embed task; by default the one an existing index was built with, else the
        ``embed`` task's default (all-MiniLM-L6-v2). An index already there is updated in place:
        files whose size, mtime or sha256 changed are re-embedded, new ones added, deleted ones
        dropped. ``rebuild=True`` starts over (needed to switch embedding model or chunk sizes).
        ``index.report`` tells what happened; unreadable files are skipped and listed there.
        ``loader`` loads models by name (``modeldeck.load`` by default).
        """
        loader = _default_loader(loader)
        root = folder_path(folder)
        directory = index_path(root, index_dir)
        size = DEFAULT_CHUNK_CHARS if chunk_chars is None else chunk_chars
        overlap = DEFAULT_OVERLAP_CHARS if overlap_chars is None else overlap_chars
        if size < 50 or not 0 <= overlap < size:
            raise OptionError(
                f"chunk_chars must be >= 50 and 0 <= overlap_chars < chunk_chars, got {size} and {overlap}"
            )
        if not scan(root, directory) and not IndexStore.exists(directory):
            raise EmptyInputError(
                f"no documents in {str(root)!r}", hint=f"put files ending in {', '.join(sorted(SUFFIXES))} there"
            )
        reader = load_reader(
            qa_model, device=device, settings=settings, loader=loader
        )  # before an old index is replaced
        if rebuild or not IndexStore.exists(directory):
            embedder = load_embedder(
                "embed" if model is None else model, device=device, settings=settings, loader=loader
            )
            store = IndexStore.create(directory, index_meta(embedder, model, size, overlap))
        else:
            store = IndexStore.open(directory)
            try:
                embedder = index_embedder(store, model, device=device, settings=settings, loader=loader)
                if (chunk_chars is not None and int(store.meta["chunk_chars"]) != size) or (
                    overlap_chars is not None and int(store.meta["overlap_chars"]) != overlap
                ):
                    raise DocumentIndexMismatchError(
                        f"the index in {str(directory)!r} was chunked with chunk_chars={store.meta['chunk_chars']}, "
                        f"overlap_chars={store.meta['overlap_chars']}, not {size}, {overlap}",
                        hint="rebuild it to change chunking (rebuild=True, or --rebuild)",
                    )
            except BaseException:
                store.close()
                raise
        index = cls(root, store, embedder, reader=reader)
        try:
            index.update(progress=progress)
        except BaseException:
            index.close()
            raise
        return index

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        model: str | Task[Any, Any, Any, Any] | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        qa_model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
        loader: Loader | None = None,
    ) -> DocumentIndex:
        """Open the index of ``folder`` as it is on disk (no update); the model defaults to the recorded one."""
        loader = _default_loader(loader)
        root = Path(folder).expanduser()
        directory = index_path(root, index_dir)
        store = IndexStore.open(directory)
        try:
            embedder = index_embedder(store, model, device=device, settings=settings, loader=loader)
            reader = load_reader(qa_model, device=device, settings=settings, loader=loader)
        except BaseException:
            store.close()
            raise
        return cls(root, store, embedder, reader=reader)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is in it ---------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of chunks in the index."""
        return int(self.store.vectors.shape[0])

    @property
    def index_dir(self) -> Path:
        return self.store.directory

    @property
    def model(self) -> str:
        """The embedding model the index was built with, as ``name@version``."""
        return f"{self.store.meta['model_name']}@{self.store.meta['model_version']}"

    @property
    def files(self) -> tuple[str, ...]:
        """Indexed files, relative to the folder, sorted."""
        with self._lock:
            return tuple(self.store.files())

    def passages(self, source: str) -> tuple[Passage, ...]:
        """Every chunk of one indexed file in order (``score`` 0)."""
        with self._lock:
            return tuple(_passage(row, 0.0) for row in self.store.file_chunks(source))

    # -- updating --------------------------------------------------------------------------

    def update(self, *, progress: Progress | None = None) -> BuildReport:
        """Bring the index up to date with the folder: embed new and changed files, drop deleted ones."""
        with self._lock, self.store.exclusive():
            report = self._update(progress)
        self.report = report
        return report

    def _update(self, progress: Progress | None) -> BuildReport:
        started = time.perf_counter()
        size, overlap = int(self.store.meta["chunk_chars"]), int(self.store.meta["overlap_chars"])
        on_disk = scan(self.folder, self.store.directory)
        known = self.store.files()
        removed = [p for p in known if p not in on_disk]
        unchanged: list[str] = []
        touch: list[FileRecord] = []
        skipped: list[SkippedFile] = []
        pending: list[tuple[FileRecord, ExtractedText, list[tuple[int, int, int | None]]]] = []
        for rel, path in on_disk.items():
            old = known.get(rel)
            try:
                stat = path.stat()
                if old is not None and (old.mtime_ns, old.size) == (stat.st_mtime_ns, stat.st_size):
                    unchanged.append(rel)
                    continue
                data = path.read_bytes()
            except OSError as exc:
                skipped.append(SkippedFile(rel, f"cannot read it ({exc.strerror or exc})"))
                if old is not None:
                    removed.append(rel)  # its indexed text may be stale: drop it rather than serve it
                continue
            digest = hashlib.sha256(data).hexdigest()
            if old is not None and old.sha256 == digest:
                unchanged.append(rel)
                touch.append(_record(old, stat, digest, old.chars, old.pages, old.chunks))
                continue
            try:
                extracted = extract_bytes(data, path.suffix)
            except InputError as exc:
                skipped.append(SkippedFile(rel, exc.message + (f" ({exc.hint})" if exc.hint else "")))
                if old is not None:
                    removed.append(rel)
                continue
            spans = [
                (s, e, page)
                for start, stop, page in extracted.spans()
                for s, e in chunk_spans(extracted.text, size, overlap, start, stop)
            ]
            if not spans:
                skipped.append(SkippedFile(rel, "no text found (a scanned PDF or an empty file?)"))
                if old is not None:
                    removed.append(rel)
                continue
            pages = len(extracted.pages) if extracted.pages else None
            pending.append((_record(old, stat, digest, len(extracted.text), pages, len(spans), rel, extracted.kind),
                            extracted, spans))  # fmt: skip
        texts = [ex.text[s:e] for _, ex, spans in pending for s, e, _ in spans]
        vectors = self._embed(texts, progress)
        updates: list[FileUpdate] = []
        at = 0
        for record, extracted, spans in pending:
            chunks = [ChunkRecord(i, s, e, page, extracted.text[s:e]) for i, (s, e, page) in enumerate(spans)]
            updates.append(FileUpdate(record, chunks, vectors[at : at + len(chunks)]))
            at += len(chunks)
        if removed or updates or touch:
            self.store.apply(remove=removed, upsert=updates, touch=touch)
        return BuildReport(
            added=tuple(u.record.path for u in updates if u.record.path not in known),
            changed=tuple(u.record.path for u in updates if u.record.path in known),
            removed=tuple(p for p in removed if p not in on_disk),
            unchanged=tuple(unchanged),
            skipped=tuple(skipped),
            chunks_embedded=len(texts),
            chunks_total=len(self),
            seconds=time.perf_counter() - started,
        )

    def _embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit vectors for ``texts`` through the embed task's own batching, shortest texts first.

        Sorting by length keeps padding low inside each batch, as ``SentenceTransformer.encode``
        does over a whole call; the task's ``predict`` is called a slice at a time to report progress.
        """
        dim = int(self.store.meta["dim"])
        out = np.empty((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        options = self.embedder.parse_options({"normalize": True})
        order = np.argsort([len(t) for t in texts], kind="stable")
        step = max(1, self.embedder.batch_size) * 4
        if progress is not None:
            progress(0, len(texts))
        for at in range(0, len(texts), step):
            rows = order[at : at + step]
            results = self.embedder.predict([texts[i] for i in rows], options)
            out[rows] = np.stack([r.vector for r in results])
            if progress is not None:
                progress(min(at + step, len(texts)), len(texts))
        return out

    # -- asking ----------------------------------------------------------------------------

    def search(self, query: str, *, top_k: int = 5) -> tuple[Passage, ...]:
        """The ``top_k`` chunks most similar to ``query`` (cosine), best first."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise OptionError(f"top_k must be an integer >= 1, got {top_k!r}")
        text = check_text(query, field="question")
        query_vector = self._embed([text])[0]
        with self._lock:
            for _ in range(5):
                vectors, generation = self.store.vectors, self.store.meta["generation"]
                if not len(vectors):
                    rows: list[ChunkRow] | None = []
                    break
                scores = vectors @ query_vector
                k = min(top_k, len(scores))
                best = np.argpartition(-scores, k - 1)[:k]
                best = best[np.lexsort((best, -scores[best]))]  # by score, ties by row: deterministic
                rows = self.store.chunk_rows([int(r) for r in best], generation=generation)
                if rows is not None:
                    break
                self.store.refresh()  # another process updated the index: score its new vectors
            if rows is None:
                raise DocumentIndexMismatchError("the index kept changing while being searched", hint="try again")
        return tuple(_passage(row, float(scores[row.row])) for row in rows)

    def ask(self, question: str, *, top_k: int = 5, reader: Any = None) -> AskResult:
        """Rank passages for ``question``; with a reader (``reader=`` or ``qa_model=``), answer it too.

        The reader is a ``qa`` task: it reads every returned passage and the answer with the
        highest score is kept, with its position in the source document.
        """
        passages = self.search(question, top_k=top_k)
        reader = reader if reader is not None else self.reader
        answer = _read(reader, question, passages) if reader is not None and passages else None
        return AskResult(question=question, passages=passages, answer=answer)

    def __repr__(self) -> str:
        return f"<DocumentIndex folder={str(self.folder)!r} chunks={len(self)} model={self.model!r}>"


def _default_loader(loader: Loader | None) -> Loader:
    from .._api import load

    return load if loader is None else loader


def _passage(row: ChunkRow, score: float) -> Passage:
    return Passage(row.source, row.start, row.end, row.text, score, row.page, row.ordinal)


def _read(reader: Any, question: str, passages: Sequence[Passage]) -> DocumentAnswer | None:
    results = reader([{"question": question, "context": p.text} for p in passages])
    best: tuple[Any, Passage] | None = None
    for passage, result in zip(passages, results, strict=True):
        for answer in result.answers:
            if answer.text.strip() and (best is None or answer.score > best[0].score):
                best = (answer, passage)
    if best is None:
        return None
    answer, passage = best
    return DocumentAnswer(
        text=answer.text,
        score=float(answer.score),
        source=passage.source,
        start=passage.start + int(answer.start),
        end=passage.start + int(answer.end),
        page=passage.page,
        passage=passage,
    )


def _record(
    old: FileRecord | None,
    stat: os.stat_result,
    digest: str,
    chars: int,
    pages: int | None,
    chunks: int,
    path: str | None = None,
    kind: str | None = None,
) -> FileRecord:
    rel = path if path is not None else old.path  # type: ignore[union-attr]
    what = kind if kind is not None else old.kind  # type: ignore[union-attr]
    return FileRecord(rel, what, stat.st_mtime_ns, stat.st_size, digest, chars, pages, chunks)
