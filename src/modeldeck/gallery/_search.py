"""Nearest-neighbour search over one in-memory matrix: one product, the best row per person, the top k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._results import Candidate

__all__ = ["Snapshot", "build_snapshot", "empty_snapshot", "rank"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The vectors of one generation, grouped by person so that ``np.minimum.reduceat`` finds each best."""

    generation: int
    matrix: np.ndarray  # (n, dim) float32; unit rows for cosine
    sq_norms: np.ndarray  # (n,) float32 squared row norms (euclidean)
    ids: np.ndarray  # (n,) int64 vector ids
    starts: np.ndarray  # (people,) int64 first row of each person
    names: tuple[str, ...]


def empty_snapshot(generation: int, dim: int) -> Snapshot:
    empty = np.zeros(0, dtype=np.int64)
    return Snapshot(generation, np.zeros((0, dim), np.float32), np.zeros(0, np.float32), empty, empty, ())


def build_snapshot(generation: int, rows: list[tuple[int, int, str, bytes]], dim: int, metric: str) -> Snapshot:
    """``rows`` are ``(vector id, person id, name, float32 blob)`` ordered by person, then id."""
    if not rows:
        return empty_snapshot(generation, dim)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    persons = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(len(rows), dim)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1, norms)
    starts = np.flatnonzero(np.r_[True, persons[1:] != persons[:-1]]).astype(np.int64)
    names = tuple(rows[i][2] for i in starts.tolist())
    sq_norms = np.einsum("ij,ij->i", matrix, matrix).astype(np.float32)
    return Snapshot(generation, matrix, sq_norms, ids, starts, names)


def rank(snap: Snapshot, query: np.ndarray, metric: str, top_k: int, threshold: float) -> tuple[Candidate, ...]:
    """The ``top_k`` people closest to ``query`` (float32; unit length for cosine), best first."""
    if not snap.names:
        return ()
    dots = snap.matrix @ query
    if metric == "cosine":
        scores = 1.0 - dots
    else:
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; |b|^2 is the same for every row, so it is left out of the ranking.
        scores = snap.sq_norms - 2.0 * dots
    best = np.minimum.reduceat(scores, snap.starts)
    k = min(top_k, best.shape[0])
    order = np.argpartition(best, k - 1)[:k] if k < best.shape[0] else np.arange(best.shape[0])
    order = order[np.argsort(best[order], kind="stable")]
    ends = np.append(snap.starts[1:], snap.matrix.shape[0])
    q64 = query.astype(np.float64)
    out = []
    for person in order.tolist():
        start, end = int(snap.starts[person]), int(ends[person])
        row = start + int(np.argmin(scores[start:end]))
        # The winners' exact distances, free of the expansion's float32 rounding.
        v64 = snap.matrix[row].astype(np.float64)
        distance = float(1.0 - v64 @ q64) if metric == "cosine" else float(np.linalg.norm(v64 - q64))
        out.append(Candidate(snap.names[person], distance, int(snap.ids[row]), distance <= threshold))
    out.sort(key=lambda c: c.distance)
    return tuple(out)
