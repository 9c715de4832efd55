"""Token rows on disk: what keeps a fine-tuning run's memory flat however many rows it trains on.

Texts are tokenised a chunk at a time (``CHUNK`` texts per tokenizer call) and each chunk's
token ids are appended to one flat file in the run folder; the run then reads its mini-batches
back through a read-only memory map, so resident memory holds the pages of the batches in use,
not the whole data set as Python lists of ints (about 4.7 kB a row at 128 tokens) nor the
tokenizer's output for every text at once. What stays in memory per row is one int64 offset.

numpy's ``memmap`` does the mapping; the flat-values-plus-offsets layout is Arrow's list layout
written by hand because appending to an Arrow IPC file chunk by chunk and reading one row back
costs more code than these few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = ["CHUNK", "RowsWriter", "TokenRows", "chunks"]

#: Texts per tokenizer call while building a cache: bounds the tokenizer's transient output.
CHUNK = 512


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TokenRows(Sequence[np.ndarray]):
    """Rows of ints, row ``i`` a read-only view ``values[starts[i]:starts[i + 1]]`` of a memory-mapped file."""

    def __init__(self, values: np.ndarray, starts: np.ndarray) -> None:
        self.values = values
        self.starts = starts

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return self.values[self.starts[index] : self.starts[index + 1]]

    @classmethod
    def write(cls, path: Path, rows: Iterable[Sequence[Sequence[int]]], dtype: type = np.int32) -> TokenRows:
        """Write ``rows`` (an iterable of chunks of rows) to ``path``, one chunk at a time, and map it back."""
        with RowsWriter(path, dtype) as writer:
            for chunk in rows:
                writer.append(chunk)
        return writer.rows()

    @classmethod
    def encode(cls, path: Path, texts: Sequence[str], encode: Callable[[Sequence[str]], list[list[int]]]) -> TokenRows:
        """``encode`` (a trainer's tokenizer) over ``texts`` a chunk at a time, into ``path``."""
        return cls.write(path, (encode(chunk) for chunk in chunks(texts)))


class RowsWriter:
    """Appends chunks of rows to a file; ``rows()`` maps the finished file back as ``TokenRows``."""

    def __init__(self, path: Path, dtype: type = np.int32) -> None:
        self.path = path
        self.dtype = dtype
        self._tmp = path.with_name(path.name + ".tmp")
        self._handle = self._tmp.open("wb")
        self._lengths: list[np.ndarray] = []

    def __enter__(self) -> RowsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()
        if exc[0] is None:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def append(self, chunk: Sequence[Sequence[int]]) -> None:
        self._lengths.append(np.fromiter((len(r) for r in chunk), dtype=np.int64, count=len(chunk)))
        if len(chunk):
            np.concatenate([np.asarray(r, dtype=self.dtype) for r in chunk]).tofile(self._handle)

    def rows(self) -> TokenRows:
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)]).astype(np.int64)
        if starts[-1] == 0:  # numpy cannot map an empty file
            return TokenRows(np.zeros(0, dtype=self.dtype), starts)
        return TokenRows(np.memmap(self.path, dtype=self.dtype, mode="r", shape=(int(starts[-1]),)), starts)
