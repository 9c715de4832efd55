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

__all__ = [
    "ClassifyReport",
    "classification_metrics",
    "evaluate_classify",
    "multilabel_metrics",
    "save_confusion_plot",
]


def _prf(tp: np.ndarray, predicted_n: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # A class never predicted has precision 0 (scikit-learn's zero_division=0), never NaN.
    precision = np.divide(tp, predicted_n, out=np.zeros(len(tp)), where=predicted_n > 0)
    recall = np.divide(tp, support, out=np.zeros(len(tp)), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(len(tp)), where=denom > 0)
    return precision, recall, f1


def _per_class(labels: Sequence[str], p: np.ndarray, r: np.ndarray, f: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    return {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }


def classification_metrics(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro P/R/F1, per-class P/R/F1 with support, and the confusion matrix (rows: truth)."""
    index = {label: i for i, label in enumerate(labels)}
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    precision, recall, f1 = _prf(tp, confusion.sum(axis=0), support)
    total = int(confusion.sum())
    return {
        "examples": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_precision": float(precision.mean()) if n else 0.0,
        "macro_recall": float(recall.mean()) if n else 0.0,
        "macro_f1": float(f1.mean()) if n else 0.0,
        "per_class": _per_class(labels, precision, recall, f1, support),
        "labels": list(labels),
        "confusion": confusion.tolist(),
    }


def multilabel_metrics(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Multi-label figures: exact-match accuracy, micro and macro P/R/F1, per-class P/R/F1 with support."""
    index = {label: i for i, label in enumerate(labels)}
    t = np.zeros((len(truth), len(labels)), dtype=bool)
    p = np.zeros_like(t)
    for row, (true_set, predicted_set) in enumerate(zip(truth, predicted, strict=True)):
        t[row, [index[x] for x in true_set]] = True
        p[row, [index[x] for x in predicted_set]] = True
    tp = (t & p).sum(axis=0).astype(np.float64)
    support = t.sum(axis=0)
    precision, recall, f1 = _prf(tp, p.sum(axis=0), support)
    micro_p, micro_r, micro_f = _prf(np.array([tp.sum()]), np.array([p.sum()]), np.array([t.sum()]))
    return {
        "examples": len(truth),
        "multi_label": True,
        "accuracy": float((t == p).all(axis=1).mean()) if len(truth) else 0.0,
        "micro_precision": float(micro_p[0]),
        "micro_recall": float(micro_r[0]),
        "micro_f1": float(micro_f[0]),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": _per_class(labels, precision, recall, f1, support),
        "labels": list(labels),
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
        keys = ["accuracy", "macro_precision", "macro_recall", "macro_f1"]
        if m.get("multi_label"):
            keys += ["micro_precision", "micro_recall", "micro_f1"]
        for key in keys:
            summary.add_row(
                key.replace("_", " ") + (" (exact match)" if m.get("multi_label") and key == "accuracy" else ""),
                f"{m[key]:.4f}",
            )
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
        tables = [summary, per_class]
        if "confusion" in m:
            confusion = Table(title="confusion (rows: truth, columns: predicted)")
            confusion.add_column("")
            for label in m["labels"]:
                confusion.add_column(label, justify="right")
            for label, row in zip(m["labels"], m["confusion"], strict=True):
                confusion.add_row(label, *(str(v) for v in row))
            tables.append(confusion)
        buffer = StringIO()
        console = Console(file=buffer, width=120, force_terminal=False)
        for table in tables:
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
    multi = bool(task.multi_label_default) or data.multi_label
    unknown: dict[str, int] = {}
    texts: list[str] = []
    truth: list[Any] = []
    for text, label in zip(data.texts, data.labels, strict=True):
        names = (label,) if isinstance(label, str) else label
        missing = [name for name in names if name not in known]
        for name in missing:
            unknown[name] = unknown.get(name, 0) + 1
        if not missing:
            texts.append(text)
            truth.append(names if multi else label)
    if not texts:
        raise InputError(
            f"no label of {str(path)!r} is one the model knows ({', '.join(sorted(unknown))})",
            hint=f"the model's labels: {', '.join(task.labels)}",
        )
    started = time.perf_counter()
    predicted: list[Any] = []
    step = max(1, task.batch_size)
    for start in range(0, len(texts), step):
        results = task(texts[start : start + step], multi_label=multi)
        if multi:  # every label scored at least 0.5 by its own sigmoid
            predicted += [tuple(lab.label for lab in r.labels if lab.score >= 0.5) for r in results]
        else:
            predicted += [r.labels[0].label for r in results]
    if multi:
        metrics = multilabel_metrics(truth, predicted, list(task.labels))
    else:
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
