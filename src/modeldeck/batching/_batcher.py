"""The adaptive micro-batcher: one bounded queue, one worker, one batch at a time off the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import (
    BatchContractError,
    ConfigError,
    DeadlineExceededError,
    InferenceError,
    OverloadedError,
    ShuttingDownError,
)
from ._clock import Clock, MonotonicClock
from ._cost import CostModel, decide_flush
from ._types import FLUSH_REASONS, BatcherStats, BatchObserver

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger(__name__)


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    STOPPED = "stopped"


@dataclass(eq=False)
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    enqueued_at: float
    deadline: float | None


def _call(fn: Callable[[list[Any]], Any], items: list[Any]) -> tuple[bool, Any]:
    # Runs in the executor thread. Anything fn raises comes back as a value, so a
    # KeyboardInterrupt or SystemExit from fn never unwinds through the event loop.
    try:
        return True, fn(items)
    except BaseException as exc:
        return False, exc


def _as_waiter_error(exc: BaseException) -> BaseException:
    if isinstance(exc, Exception):
        return exc
    # Delivering a bare BaseException (KeyboardInterrupt, CancelledError, ...) to a waiter would
    # unwind its task or the loop; wrap it so it stays one item's failure.
    err = InferenceError(f"the batch function raised {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class MicroBatcher(Generic[T, R]):
    """Groups concurrent ``submit`` calls into calls of ``fn(items) -> outputs`` on a worker thread.

    A batch flushes when ``max_batch_size`` items wait ("full"), when the oldest has waited
    ``max_wait_s`` ("max_wait"), or when the cost model says more waiting no longer pays ("cost");
    ``stop(drain=True)`` flushes what is left ("drain"). See ``decide_flush`` for the rule.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        *,
        name: str,
        max_batch_size: int = 32,
        max_wait_s: float = 0.01,
        max_queue: int = 1024,
        clock: Clock | None = None,
        observer: BatchObserver | None = None,
        executor: concurrent.futures.Executor | None = None,
        cost_model: CostModel | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {fn!r}", hint="pass a function taking a list of items")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        self._max_batch_size = _check_int("max_batch_size", max_batch_size, 1)
        self._max_queue = _check_int("max_queue", max_queue, 1)
        if max_queue < max_batch_size:
            raise ConfigError(
                f"max_queue must be >= max_batch_size ({max_batch_size}), got {max_queue!r}",
                hint="a smaller queue could never fill a batch",
            )
        if (
            isinstance(max_wait_s, bool)
            or not isinstance(max_wait_s, (int, float))
            or not math.isfinite(max_wait_s)
            or max_wait_s < 0
        ):
            raise ConfigError(f"max_wait_s must be a finite number >= 0, got {max_wait_s!r}")
        self._fn = fn
        self.name = name
        self._max_wait_s = float(max_wait_s)
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._observer = observer
        self._executor = executor
        self._owns_executor = executor is None
        self._model = cost_model if cost_model is not None else CostModel()

        self._state = _State.NEW
        self._queue: deque[_Pending[T, R]] = deque()
        self._inflight: list[_Pending[T, R]] = []
        self._inflight_since = 0.0
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._last_arrival = -math.inf
        self._idle_since = -math.inf
        self._crash: BaseException | None = None

        self._batches = 0
        self._items = 0
        self._failed = 0
        self._reasons = dict.fromkeys(FLUSH_REASONS, 0)
        self._drops = {"expired": 0, "cancelled": 0}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state is not _State.NEW:
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"modeldeck-batch-{self.name}"
            )
        self._state = _State.RUNNING
        self._idle_since = self._clock.now()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"modeldeck-batcher-{self.name}")

    async def stop(self, *, drain: bool = True) -> None:
        """Stop taking requests. ``drain=True`` answers every accepted request first; ``drain=False``
        fails the queued and running ones with ShuttingDownError without waiting for the model."""
        if self._state is _State.NEW:
            self._state = _State.STOPPED
            return
        if self._state is _State.RUNNING:
            self._state = _State.CLOSING
            if drain:
                self._wakeup.set()
            else:
                self._fail_queued(ShuttingDownError(f"batcher {self.name!r} stopped before this request ran"))
                if self._worker is not None:
                    self._worker.cancel()
        if self._worker is not None:
            await asyncio.wait({self._worker})
        if self._owns_executor and self._executor is not None:
            # The worker has finished (or abandoned) its last batch, so nothing waits on the thread.
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._state = _State.STOPPED

    async def __aenter__(self) -> MicroBatcher[T, R]:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop(drain=True)

    # -- requests -------------------------------------------------------------------------------

    async def submit(self, item: T, *, deadline: float | None = None) -> R:
        """Answer one item through a batch; ``deadline`` is in ``clock.now()`` seconds."""
        if self._state is _State.NEW:
            await self.start()
        if self._state is not _State.RUNNING:
            why = " after an internal error" if self._crash is not None else ""
            raise ShuttingDownError(f"batcher {self.name!r} is stopped{why}", hint="retry on another instance")
        now = self._clock.now()
        if deadline is not None and deadline <= now:
            self._drop("expired")
            raise DeadlineExceededError(f"deadline passed {now - deadline:.3f}s before the request was queued")
        if len(self._queue) >= self._max_queue:
            raise OverloadedError(
                f"batcher {self.name!r} queue is full ({self._max_queue} waiting)", retry_after=self.retry_after()
            )
        pending: _Pending[T, R] = _Pending(item, asyncio.get_running_loop().create_future(), now, deadline)
        self._queue.append(pending)
        self._model.observe_arrival(now)
        self._last_arrival = now
        self._wakeup.set()
        try:
            return await pending.future
        except asyncio.CancelledError:
            # The caller went away: take the item out so the model never sees it.
            try:
                self._queue.remove(pending)
            except ValueError:
                pass  # already in a batch (its answer is discarded) or already answered
            else:
                self._drop("cancelled")
            raise

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def stats(self) -> BatcherStats:
        return BatcherStats(
            name=self.name,
            depth=len(self._queue),
            batches=self._batches,
            items=self._items,
            failed=self._failed,
            dropped=sum(self._drops.values()),
            mean_batch_size=self._items / self._batches if self._batches else 0.0,
            reasons=dict(self._reasons),
            drops=dict(self._drops),
            alpha=self._model.alpha,
            beta=self._model.beta,
            arrival_interval=self._model.arrival_interval,
        )

    def expected_wait(self, count: int = 1) -> float | None:
        """Seconds until the last of ``count`` new items would start, from the measured batch times.

        The running batch's remaining time (its estimated time less what it has run) plus one full
        batch for every ``max_batch_size`` items ahead. None until a batch has been measured.
        """
        alpha, beta = self._model.alpha, self._model.beta
        if alpha is None or beta is None:
            return None
        size = self._max_batch_size
        wait = 0.0
        if self._inflight:
            elapsed = self._clock.now() - self._inflight_since
            wait = max(0.0, alpha + beta * len(self._inflight) - elapsed)
        ahead = len(self._queue) + max(count, 1) - 1
        return wait + (ahead // size) * (alpha + beta * size)

    def retry_after(self) -> float:
        """Estimated seconds until the queue has room again, never below 0.1."""
        alpha, beta = self._model.alpha, self._model.beta
        per_batch = self._max_wait_s if alpha is None or beta is None else alpha + beta * self._max_batch_size
        # Room appears once enough batches have left; the running one counts as the first.
        excess = len(self._queue) - self._max_queue + 1
        batches = max(1, math.ceil(excess / self._max_batch_size))
        return max(0.1, batches * per_batch)

    # -- worker ---------------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while True:
                batch, reason = await self._next_batch()
                if not batch:
                    return
                await self._execute(batch, reason)
        except asyncio.CancelledError:
            self._fail_all(ShuttingDownError(f"batcher {self.name!r} stopped while this request was running"))
            raise
        except BaseException as exc:
            # A bug in here must not leave waiters hanging: fail everyone and refuse new work.
            self._crash = exc
            self._state = _State.CLOSING
            err = InferenceError(f"batcher {self.name!r} failed internally: {type(exc).__name__}: {exc}")
            err.__cause__ = exc
            self._fail_all(err)
            _log.error("batcher %r worker crashed", self.name, exc_info=exc)
            if not isinstance(exc, Exception):
                raise

    async def _next_batch(self) -> tuple[list[_Pending[T, R]], str]:
        while True:
            now = self._clock.now()
            self._prune(now)
            if self._state is not _State.RUNNING:
                return self._take(), "drain"
            if not self._queue:
                self._wakeup.clear()
                await self._clock.wait(self._wakeup, None)
                continue
            decision = decide_flush(
                queued=len(self._queue),
                oldest_wait=now - self._queue[0].enqueued_at,
                since_activity=now - max(self._last_arrival, self._idle_since),
                max_batch_size=self._max_batch_size,
                max_wait_s=self._max_wait_s,
                estimate=self._model.estimate(),
            )
            if decision.reason is not None:
                return self._take(), decision.reason
            self._wakeup.clear()
            await self._clock.wait(self._wakeup, decision.wait_s)

    def _prune(self, now: float) -> None:
        if any(self._is_dead(p, now) for p in self._queue):
            live: deque[_Pending[T, R]] = deque()
            for pending in self._queue:
                if not self._is_dead(pending, now):
                    live.append(pending)
            self._queue = live

    def _is_dead(self, pending: _Pending[T, R], now: float) -> bool:
        if pending.future.done():
            if pending.future.cancelled():
                self._drop("cancelled")
            return True
        if pending.deadline is not None and pending.deadline <= now:
            pending.future.set_exception(
                DeadlineExceededError(f"deadline passed after {now - pending.enqueued_at:.3f}s in the queue")
            )
            self._drop("expired")
            return True
        return False

    def _take(self) -> list[_Pending[T, R]]:
        batch: list[_Pending[T, R]] = []
        while self._queue and len(batch) < self._max_batch_size:
            batch.append(self._queue.popleft())
        return batch

    async def _execute(self, batch: list[_Pending[T, R]], reason: str) -> None:
        self._inflight = batch
        start = self._clock.now()
        self._inflight_since = start
        for pending in batch:
            self._notify("queue_wait", start - pending.enqueued_at)
        failed = await self._run(batch)
        end = self._clock.now()
        self._inflight = []
        self._idle_since = end
        self._batches += 1
        self._items += len(batch)
        self._reasons[reason] += 1
        self._notify("batch_done", len(batch), reason, end - start)
        if failed:
            self._failed += failed
            self._notify("failed", failed)

    async def _run(self, part: list[_Pending[T, R]]) -> int:
        """Run ``part`` through fn and answer its waiters; returns how many got an exception."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        start = self._clock.now()
        ok, value = await loop.run_in_executor(self._executor, _call, self._fn, [p.item for p in part])
        elapsed = self._clock.now() - start
        if ok:
            if not isinstance(value, (list, tuple)) or len(value) != len(part):
                got = f"{len(value)}" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
                error = BatchContractError(
                    f"batch function of {self.name!r} must return one output per input: expected {len(part)} got {got}",
                    hint="return a list with exactly one output per input, in input order",
                )
                for pending in part:
                    _settle_exception(pending, error)
                return len(part)
            self._model.observe_batch(len(part), elapsed)
            for pending, output in zip(part, value, strict=True):
                if not pending.future.done():
                    pending.future.set_result(output)
            return 0
        if len(part) == 1:
            _settle_exception(part[0], _as_waiter_error(value))
            return 1
        # Isolate the failing items: rerun each half so only they get the exception.
        mid = len(part) // 2
        return await self._run(part[:mid]) + await self._run(part[mid:])

    # -- helpers --------------------------------------------------------------------------------

    def _fail_queued(self, error: BaseException) -> None:
        queued, self._queue = list(self._queue), deque()
        count = sum(_settle_exception(p, error) for p in queued)
        if count:
            self._failed += count
            self._notify("failed", count)

    def _fail_all(self, error: BaseException) -> None:
        inflight, self._inflight = self._inflight, []
        count = sum(_settle_exception(p, error) for p in inflight)
        if count:
            self._failed += count
            self._notify("failed", count)
        self._fail_queued(error)

    def _drop(self, reason: str) -> None:
        self._drops[reason] += 1
        self._notify("dropped", reason)

    def _notify(self, method: str, *args: Any) -> None:
        if self._observer is None:
            return
        try:
            getattr(self._observer, method)(*args)
        except Exception:
            # Metrics must never take the batcher down with them.
            _log.exception("batch observer %s failed for batcher %r", method, self.name)


def _settle_exception(pending: _Pending[Any, Any], error: BaseException) -> bool:
    if pending.future.done():
        return False
    pending.future.set_exception(error)
    return True
