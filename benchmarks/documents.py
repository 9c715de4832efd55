"""DocumentIndex.build vs. raw SentenceTransformer.encode on the same chunks, measured side by side in one run.

    python benchmarks/documents.py [--docs 40] [--rounds 3]

A synthetic handbook of ``--docs`` files (Markdown, text, HTML and two-page PDFs, about 4,000
characters each) is indexed from scratch with ``DocumentIndex.build`` (scan, extract, sha256,
chunk, embed through the embed task, write the .npy and SQLite), and the very chunks it made are
then encoded by a bare ``SentenceTransformer.encode(batch_size=32, normalize_embeddings=True)``
on the same loaded weights. Rounds alternate so that load from other processes hits both alike;
model loading is excluded from both and the best round of each is compared, in wall-clock time
and in this process's CPU time (steadier on a machine shared with other work; the load average
is printed). An incremental update after changing one file is timed too, and the stored vectors
are checked against the raw ones. Results go to .bench/documents.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import save, sentences

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the PDF writer lives with the tests
from tests.support import pdf_bytes

TOPICS = ("vacation", "expenses", "security badges", "parental leave", "laptops", "travel", "payroll", "training")


def write_handbook(folder: Path, docs: int) -> Path:
    """``docs`` files of about 4,000 characters: 6 paragraphs of 6-7 sentences each, formats in rotation."""
    folder.mkdir(parents=True)
    pool = sentences(docs * 40)
    for d in range(docs):
        topic = TOPICS[d % len(TOPICS)]
        paragraphs = [
            f"Our {topic} policy, section {p + 1}. " + " ".join(pool[d * 40 + p * 6 : d * 40 + p * 6 + 6])
            for p in range(6)
        ]
        kind = ("md", "txt", "html", "md", "pdf")[d % 5]
        name = folder / f"doc{d:04d}.{kind}"
        if kind == "md":
            name.write_text(f"# {topic.title()}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        elif kind == "txt":
            name.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        elif kind == "html":
            body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
            name.write_text(f"<html><head><title>{topic}</title><script>x=1</script></head><body>{body}</body></html>")
        else:
            words = [" ".join(p.split()[i : i + 12]) for p in paragraphs for i in range(0, len(p.split()), 12)]
            half = len(words) // 2
            name.write_bytes(pdf_bytes([words[:half], words[half:]]))
    return folder


def run(docs: int, rounds: int) -> dict[str, Any]:
    import numpy as np

    import modeldeck
    from modeldeck.documents import DocumentIndex

    task = modeldeck.load("embed", batch_size=32)
    model = task.runtime.model  # the very SentenceTransformer the task drives: same weights, same threads
    builds: list[tuple[float, float]] = []  # (wall s, CPU s) per round
    raws: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_handbook(Path(tmp) / "handbook", docs)
        warm = DocumentIndex.build(folder, model=task, index_dir=Path(tmp) / "warm")
        chunks = [p.text for source in warm.files for p in warm.passages(source)]
        model.encode(chunks[:128], batch_size=32, normalize_embeddings=True)  # warm-up
        for r in range(rounds):
            with _timed(builds):
                index = DocumentIndex.build(folder, model=task, index_dir=Path(tmp) / f"round{r}")
            assert index.report.chunks_embedded == len(chunks)
            with _timed(raws):
                vectors = model.encode(chunks, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
            if r < rounds - 1:
                index.close()
        stored = {p.text: index.store.vectors[_row(index, p)] for s in index.files for p in index.passages(s)}
        max_diff = float(np.abs(np.stack([stored[t] for t in chunks]) - vectors).max())
        target = folder / "doc0000.md"
        target.write_text(target.read_text() + "\nOne more sentence about the vacation policy.\n")
        started = time.perf_counter()
        report = index.update()
        incremental = time.perf_counter() - started
        index.close()
        warm.close()
        shutil.rmtree(folder)
    n = len(chunks)
    build_wall, raw_wall = n / min(w for w, _ in builds), n / min(w for w, _ in raws)
    build_cpu, raw_cpu = n / min(c for _, c in builds), n / min(c for _, c in raws)
    chars = sum(map(len, chunks)) / n
    load = os.getloadavg()[0]
    print(f"documents: {docs} files -> {n} chunks (mean {chars:.0f} chars), {rounds} rounds, best of each")
    print(f"  {'':<22} {'wall clock':>18} {'CPU time':>26}")
    print(f"  {'raw encode(bs=32)':<22} {raw_wall:8.1f} chunks/s {'':8} {raw_cpu:8.1f} chunks/CPU-s")
    print(
        f"  {'DocumentIndex.build':<22} {build_wall:8.1f} chunks/s ({build_wall / raw_wall:4.2f}x) "
        f"{build_cpu:8.1f} chunks/CPU-s ({build_cpu / raw_cpu:4.2f}x)"
    )
    print(
        f"  incremental update, 1 file changed: {incremental * 1000:.0f} ms, "
        f"{report.chunks_embedded} chunks embedded; max |vector difference| {max_diff:.2e}; load average {load:.1f}"
    )
    return {
        "docs": docs,
        "chunks": n,
        "mean_chunk_chars": chars,
        "build_wall_cpu_s": builds,
        "raw_encode_wall_cpu_s": raws,
        "build_chunks_per_s": build_wall,
        "raw_chunks_per_s": raw_wall,
        "build_over_raw_wall": build_wall / raw_wall,
        "build_over_raw_cpu": build_cpu / raw_cpu,
        "incremental_update_s": incremental,
        "incremental_chunks_embedded": report.chunks_embedded,
        "max_vector_difference": max_diff,
        "cpu_count": os.cpu_count(),
        "load_average_1m": load,
    }


@contextmanager
def _timed(into: list[tuple[float, float]]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append((time.perf_counter() - wall, time.process_time() - cpu))


def _row(index: Any, passage: Any) -> int:
    return index.store.conn.execute(
        "SELECT c.row FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ? AND c.ordinal = ?",
        (passage.source, passage.chunk),
    ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = run(args.docs, args.rounds)
    print(f"  saved {save('documents', result)}")


if __name__ == "__main__":
    main()
