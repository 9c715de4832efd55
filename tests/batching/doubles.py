"""Shared test doubles for the batcher tests: a gated batch function, an observer, a warm model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from modeldeck.batching import CostModel


async def until(predicate: Callable[[], bool], spins: int = 1000) -> None:
    """Yield to the loop (never sleeping for real) until ``predicate`` holds."""
    for _ in range(spins):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def double(xs: list[int]) -> list[int]:
    return [x * 2 for x in xs]


class Gate:
    """A batch function that records its calls and, until released, blocks in the worker thread."""

    def __init__(self, fn: Callable[[list[Any]], Any] = double) -> None:
        self.fn = fn
        self.calls: list[list[Any]] = []
        self.threads: list[int] = []
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self, xs: list[Any]) -> Any:
        self.calls.append(list(xs))
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.released.wait(5)
        return self.fn(xs)

    def release(self) -> None:
        self.released.set()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 5), "the batch function was never called"

    @property
    def seen(self) -> list[Any]:
        return [x for call in self.calls for x in call]


class Recorder:
    """A BatchObserver that keeps every call."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, str, float]] = []
        self.waits: list[float] = []
        self.drops: list[str] = []
        self.failures: list[int] = []

    def batch_done(self, size: int, reason: str, seconds: float) -> None:
        self.batches.append((size, reason, seconds))

    def queue_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def dropped(self, reason: str) -> None:
        self.drops.append(reason)

    def failed(self, count: int) -> None:
        self.failures.append(count)

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.batches]


def warm_model(*, alpha: float, beta: float = 0.0, interval: float = 0.001, last_arrival: float = 100.0) -> CostModel:
    """A cost model that has already seen two batch sizes and a few arrivals ``interval`` apart."""
    model = CostModel()
    model.observe_batch(1, alpha + beta)
    model.observe_batch(2, alpha + 2 * beta)
    for i in range(4, -1, -1):
        model.observe_arrival(last_arrival - i * interval)
    return model
