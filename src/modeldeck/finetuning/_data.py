"""Labelled text for fine-tuning: read through the job readers, checked before any model loads.

Bad rows (empty text, missing label, a line that is not JSON) are counted and left out; an
unreadable file, a single class, or a label with fewer than two examples stops here with an
error that says what to fix.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelDeckError

__all__ = ["LabelledData", "file_digest", "infer_columns", "read_labelled", "stratified_split"]

_TEXT_COLUMNS = ("text", "sentence", "body", "content", "review", "document")
_LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "intent")


#: One row's label: a class name, or for multi-label data the tuple of its class names (maybe empty).
Label = str | tuple[str, ...]


@dataclass(frozen=True)
class LabelledData:
    texts: tuple[str, ...]
    labels: tuple[Label, ...]
    #: Rows left out: empty or unreadable text, missing label.
    bad_rows: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multi_label(self) -> bool:
        """Whether the label column holds lists (JSON Lines arrays, Parquet lists)."""
        return any(isinstance(label, tuple) for label in self.labels)

    def counts(self) -> Counter[str]:
        """Examples per class (a multi-label row counts for each of its classes)."""
        return Counter(name for label in self.labels for name in ((label,) if isinstance(label, str) else label))

    def subset(self, indices: np.ndarray | list[int]) -> LabelledData:
        return LabelledData(tuple(self.texts[i] for i in indices), tuple(self.labels[i] for i in indices), 0)


def _columns(path: Path) -> list[str]:
    """Column names of a CSV, Parquet or JSON Lines file, read from its header / schema / first object."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return list(pq.read_schema(path).names)
        if suffix == ".csv":
            with pa_csv.open_csv(path) as reader:
                return list(reader.schema.names)
        if suffix in (".jsonl", ".ndjson"):
            with path.open("rb") as handle:
                for line in handle:
                    if line.strip():
                        row = json.loads(line)
                        return list(row) if isinstance(row, dict) else []
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r} ({exc})", hint="check the file and its format") from None
    return []


def infer_columns(path: str | Path, text_column: str | None, label_column: str | None) -> tuple[str, str]:
    """The text and label columns: as given, else the first of the usual names the file has."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"data file {str(path)!r} does not exist", hint="check the path given as --data / --valid")
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file", hint="give one .csv, .jsonl or .parquet file")
    if text_column is not None and label_column is not None:
        return text_column, label_column
    names = _columns(path)
    lowered = {n.lower(): n for n in names}

    def pick(given: str | None, usual: tuple[str, ...], what: str, flag: str) -> str:
        if given is not None:
            return given
        for candidate in usual:
            if candidate in lowered:
                return lowered[candidate]
        raise InputError(
            f"cannot tell which column of {str(path)!r} holds the {what}",
            hint=f"name it with {flag}; the file has: {', '.join(names) or '(no columns)'}",
        )

    return pick(text_column, _TEXT_COLUMNS, "text", "--text-column"), pick(
        label_column, _LABEL_COLUMNS, "labels", "--label-column"
    )


def _label(value: object) -> Label | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        names = (_label(v) for v in value)
        return tuple(sorted({n for n in names if isinstance(n, str)}))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def read_labelled(path: str | Path, text_column: str | None = None, label_column: str | None = None) -> LabelledData:
    """Every usable ``(text, label)`` row of a CSV, JSON Lines or Parquet file, in file order."""
    from ..jobs._readers import open_source

    text_column, label_column = infer_columns(path, text_column, label_column)
    source = open_source(path, text_column)
    if label_column not in source.schema.names:
        raise InputError(
            f"{str(path)!r} has no column {label_column!r}",
            hint=f"name the label column with --label-column; the file has: {', '.join(source.schema.names)}",
        )
    texts: list[str] = []
    labels: list[Label] = []
    bad = 0
    for batch, values in source.batches():
        column = batch.column(batch.schema.get_field_index(label_column)).to_pylist()
        for text, raw_label in zip(values, column, strict=True):
            label = _label(raw_label)
            if isinstance(text, ModelDeckError) or not isinstance(text, str) or not text.strip() or label is None:
                bad += 1
                continue
            texts.append(text)
            labels.append(label)
    if not texts:
        raise InputError(
            f"{str(path)!r} has no usable rows ({bad} bad: empty text or missing label)",
            hint=f"check the columns {text_column!r} and {label_column!r}",
        )
    if any(isinstance(label, tuple) for label in labels):  # multi-label: a lone name is a list of one
        labels = [(label,) if isinstance(label, str) else label for label in labels]
    return LabelledData(tuple(texts), tuple(labels), bad)


def check_trainable(data: LabelledData, path: str | Path) -> None:
    """Stop before training on data a classifier cannot learn from."""
    counts = data.counts()
    if len(counts) < 2:
        raise InputError(
            f"{str(path)!r} has a single class ({next(iter(counts))!r}); a classifier needs at least two",
            hint="add examples of the other classes, or check --label-column",
        )
    rare = sorted(label for label, n in counts.items() if n < 2)
    if rare:
        raise InputError(
            f"label(s) {', '.join(repr(r) for r in rare)} of {str(path)!r} have fewer than 2 examples",
            hint="add examples of these labels, or drop their rows",
        )


def stratified_split(data: LabelledData, fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """``(train, valid)``: ``fraction`` of each label's rows (at least one, never all) go to valid."""
    if not 0 < fraction < 1:
        raise InputError(f"valid split must be between 0 and 1, got {fraction}", hint="e.g. --valid-split 0.1")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        # Multi-label rows are stratified by their first class (no class: a stratum of their own).
        key = label if isinstance(label, str) else (label[0] if label else "")
        by_label.setdefault(key, []).append(i)
    train: list[int] = []
    valid: list[int] = []
    for label in sorted(by_label):
        rows = np.array(by_label[label])
        rng.shuffle(rows)
        n_valid = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
        valid += rows[:n_valid].tolist()
        train += rows[n_valid:].tolist()
    return data.subset(sorted(train)), data.subset(sorted(valid))


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
