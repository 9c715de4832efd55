"""Classifier metrics: accuracy, macro and per-class precision / recall / F1, and the confusion matrix.

Written with numpy (a few lines) so that fine-tuning and ``modeldeck eval classify`` need no
scikit-learn; the tests check these figures against scikit-learn's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["ClassifyReport", "classification_metrics", "evaluate_classify", "save_confusion_plot"]


def classification_metrics(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro P/R/F1, per-class P/R/F1 with support, and the confusion matrix (rows: truth)."""
    index = {label: i for i, label in enumerate(labels)}
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted_n = confusion.sum(axis=0)
    # A class never predicted has precision 0 (scikit-learn's zero_division=0), never NaN.
    precision = np.divide(tp, predicted_n, out=np.zeros(n), where=predicted_n > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    total = int(confusion.sum())
    return {
        "examples": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_precision": float(precision.mean()) if n else 0.0,
        "macro_recall": float(recall.mean()) if n else 0.0,
        "macro_f1": float(f1.mean()) if n else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": confusion.tolist(),
    }


@dataclass(frozen=True)
class ClassifyReport:
    model: str
    metrics: Mapping[str, Any]
    bad_rows: int = 0
    unknown_labels: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **dict(self.metrics),
            "bad_rows": self.bad_rows,
            "unknown_labels": dict(self.unknown_labels),
            "seconds": round(self.seconds, 3),
        }

    def render(self) -> str:
        from io import StringIO

        from rich.console import Console
        from rich.table import Table

        m = self.metrics
        summary = Table(title=f"classify: {self.model}", show_header=False)
        summary.add_row("examples", str(m["examples"]))
        for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
            summary.add_row(key.replace("_", " "), f"{m[key]:.4f}")
        if self.bad_rows:
            summary.add_row("bad rows (left out)", str(self.bad_rows))
        for label, count in self.unknown_labels.items():
            summary.add_row(f"label {label!r} unknown to the model", f"{count} rows (left out)")
        per_class = Table(title="per class")
        for column in ("label", "precision", "recall", "f1", "support"):
            per_class.add_column(column, justify="left" if column == "label" else "right")
        for label, row in m["per_class"].items():
            per_class.add_row(
                label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
            )
        confusion = Table(title="confusion (rows: truth, columns: predicted)")
        confusion.add_column("")
        for label in m["labels"]:
            confusion.add_column(label, justify="right")
        for label, row in zip(m["labels"], m["confusion"], strict=True):
            confusion.add_row(label, *(str(v) for v in row))
        buffer = StringIO()
        console = Console(file=buffer, width=120, force_terminal=False)
        for table in (summary, per_class, confusion):
            console.print(table)
        return buffer.getvalue().rstrip()


def save_confusion_plot(metrics: Mapping[str, Any], path: str | Path, *, title: str = "confusion") -> Path:
    """The confusion matrix as a PNG heat map with counts (matplotlib, Agg backend)."""
    from ._plot import pyplot

    plt = pyplot()
    labels = list(metrics["labels"])
    matrix = np.asarray(metrics["confusion"])
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(title)
    peak = matrix.max() if matrix.size else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > peak / 2 else "black"
            )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def evaluate_classify(
    task: Any,
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    plot: str | Path | None = None,
) -> ClassifyReport:
    """Score a loaded ``classify`` task on a labelled file; rows whose label the model lacks are counted, not scored."""
    from ..finetuning._data import read_labelled

    data = read_labelled(path, text_column, label_column)
    known = set(task.labels)
    unknown: dict[str, int] = {}
    texts, truth = [], []
    for text, label in zip(data.texts, data.labels, strict=True):
        if label in known:
            texts.append(text)
            truth.append(label)
        else:
            unknown[label] = unknown.get(label, 0) + 1
    if not texts:
        raise InputError(
            f"no label of {str(path)!r} is one the model knows ({', '.join(sorted(unknown))})",
            hint=f"the model's labels: {', '.join(task.labels)}",
        )
    started = time.perf_counter()
    predicted: list[str] = []
    step = max(1, task.batch_size)
    for start in range(0, len(texts), step):
        results = task(texts[start : start + step])
        predicted += [r.labels[0].label for r in results]
    metrics = classification_metrics(truth, predicted, list(task.labels))
    if plot is not None:
        save_confusion_plot(metrics, plot, title=f"{task.info.name}@{task.info.version}")
    return ClassifyReport(
        model=f"{task.info.name}@{task.info.version}",
        metrics=metrics,
        bad_rows=data.bad_rows,
        unknown_labels=unknown,
        seconds=time.perf_counter() - started,
    )
