"""The batcher's contracts with the outside: the metrics observer and the stats snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["FLUSH_REASONS", "BatchObserver", "BatcherStats"]

FLUSH_REASONS = ("full", "cost", "max_wait", "drain")


class BatchObserver(Protocol):
    """Receives the batcher's metrics; ``serving`` implements it with prometheus_client.

    ``reason`` is one of ``FLUSH_REASONS``; ``dropped`` gets ``"expired"`` or ``"cancelled"``;
    ``failed`` counts items whose waiter got an exception from the batch.
    """

    def batch_done(self, size: int, reason: str, seconds: float) -> None: ...

    def queue_wait(self, seconds: float) -> None: ...

    def dropped(self, reason: str) -> None: ...

    def failed(self, count: int) -> None: ...


@dataclass(frozen=True)
class BatcherStats:
    """A snapshot of one batcher's counters and its cost model (None while it has no data)."""

    name: str
    depth: int
    batches: int
    items: int
    failed: int
    dropped: int
    mean_batch_size: float
    reasons: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    alpha: float | None = None
    beta: float | None = None
    arrival_interval: float | None = None
