"""MicroBatcher behaviour, with time driven by a ManualClock and batches held open by events."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from modeldeck.batching import BatchObserver, ManualClock, MicroBatcher
from modeldeck.errors import (
    BatchContractError,
    ConfigError,
    DeadlineExceededError,
    InferenceError,
    OverloadedError,
    ShuttingDownError,
)

from .doubles import Gate, Recorder, double, until, warm_model

pytestmark = pytest.mark.timeout(10)

T0 = 100.0


def make(fn: Any = double, **kwargs: Any) -> tuple[MicroBatcher[Any, Any], ManualClock, Recorder]:
    clock = ManualClock(start=T0)
    observer = Recorder()
    kwargs.setdefault("max_wait_s", 0.0)
    batcher: MicroBatcher[Any, Any] = MicroBatcher(fn, name="test", clock=clock, observer=observer, **kwargs)
    return batcher, clock, observer


def test_recorder_is_an_observer() -> None:
    observer: BatchObserver = Recorder()
    assert observer is not None


# -- flushing ----------------------------------------------------------------------------------


async def test_full_batch_flushes_without_waiting() -> None:
    gate = Gate()
    gate.release()
    batcher, _, observer = make(gate, max_batch_size=4, max_wait_s=10.0, cost_model=warm_model(alpha=1.0))
    async with batcher:
        results = await asyncio.gather(*(batcher.submit(x) for x in [1, 2, 3, 4]))
    assert results == [2, 4, 6, 8]
    assert gate.calls == [[1, 2, 3, 4]]
    assert observer.reasons == ["full"]


async def test_max_wait_flushes_when_the_clock_reaches_it() -> None:
    gate = Gate()
    gate.release()
    batcher, clock, observer = make(gate, max_batch_size=8, max_wait_s=0.01, cost_model=warm_model(alpha=1.0))
    async with batcher:
        tasks = [asyncio.create_task(batcher.submit(x)) for x in [1, 2]]
        await until(lambda: batcher.depth == 2)
        await clock.until_sleeping()
        clock.advance(0.005)
        await asyncio.sleep(0)
        assert not any(t.done() for t in tasks)
        clock.advance(0.005)
        assert await asyncio.gather(*tasks) == [2, 4]
    assert gate.calls == [[1, 2]]
    assert observer.reasons == ["max_wait"]
    assert observer.waits == [pytest.approx(0.01), pytest.approx(0.01)]


async def test_cost_flush_when_no_arrival_comes_within_the_budget() -> None:
    # alpha = 50 ms, arrivals ~1 ms apart: waiting pays, but only for alpha / n = 50 ms.
    batcher, clock, observer = make(max_wait_s=1.0, cost_model=warm_model(alpha=0.05, interval=0.001))
    async with batcher:
        task = asyncio.create_task(batcher.submit(21))
        await clock.until_sleeping()
        clock.advance(0.03)
        await asyncio.sleep(0)
        assert not task.done()
        await clock.until_sleeping()
        clock.advance(0.02)
        assert await task == 42
    assert observer.reasons == ["cost"]


async def test_cost_flush_is_immediate_when_traffic_is_sparse() -> None:
    # One waiter * 1 s between arrivals >= 50 ms overhead: waiting never pays.
    model = warm_model(alpha=0.05, interval=1.0, last_arrival=T0 - 1.0)
    batcher, _, observer = make(max_wait_s=10.0, cost_model=model)
    async with batcher:
        assert await batcher.submit(5) == 10
    assert observer.reasons == ["cost"]


async def test_cold_start_flushes_immediately() -> None:
    batcher, _, observer = make(max_wait_s=10.0)
    async with batcher:
        assert batcher.stats.alpha is None
        assert await batcher.submit(3) == 6
    assert observer.reasons == ["cost"]
    assert batcher.stats.alpha is not None


async def test_requests_accumulate_while_a_batch_runs() -> None:
    gate = Gate()
    batcher, _, observer = make(gate, max_batch_size=8)
    async with batcher:
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        rest = [asyncio.create_task(batcher.submit(x)) for x in range(1, 6)]
        await until(lambda: batcher.depth == 5)
        gate.release()
        assert await asyncio.gather(first, *rest) == [0, 2, 4, 6, 8, 10]
    assert gate.calls == [[0], [1, 2, 3, 4, 5]]
    assert [size for size, _, _ in observer.batches] == [1, 5]


# -- deadlines and cancellation ----------------------------------------------------------------


async def test_expired_items_never_reach_fn() -> None:
    gate = Gate()
    batcher, clock, observer = make(gate)
    async with batcher:
        first = asyncio.create_task(batcher.submit(1))
        await gate.wait_entered()
        late = asyncio.create_task(batcher.submit(2, deadline=T0 + 1.0))
        ok = asyncio.create_task(batcher.submit(3, deadline=T0 + 5.0))
        await until(lambda: batcher.depth == 2)
        clock.advance(2.0)
        gate.release()
        assert await first == 2
        assert await ok == 6
        with pytest.raises(DeadlineExceededError, match=r"^\[MD602\] deadline passed"):
            await late
        with pytest.raises(DeadlineExceededError):
            await batcher.submit(4, deadline=clock.now())
    assert 2 not in gate.seen and 4 not in gate.seen
    assert observer.drops == ["expired", "expired"]
    assert batcher.stats.drops == {"expired": 2, "cancelled": 0}


async def test_cancelled_submits_never_reach_fn() -> None:
    gate = Gate()
    batcher, _, observer = make(gate)
    async with batcher:
        first = asyncio.create_task(batcher.submit(1))
        await gate.wait_entered()
        gone = asyncio.create_task(batcher.submit(2))
        kept = asyncio.create_task(batcher.submit(3))
        await until(lambda: batcher.depth == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert batcher.depth == 1
        gate.release()
        assert await asyncio.gather(first, kept) == [2, 6]
    assert gate.seen == [1, 3]
    assert observer.drops == ["cancelled"]
    assert batcher.stats.dropped == 1


# -- failures ----------------------------------------------------------------------------------


async def test_bisection_isolates_the_poisoned_item() -> None:
    raised: list[ValueError] = []

    def fn(xs: list[int]) -> list[int]:
        if 13 in xs:
            raised.append(ValueError(f"poisoned batch {xs}"))
            raise raised[-1]
        return double(xs)

    gate = Gate(fn)
    batcher, _, observer = make(gate, max_batch_size=8)
    items = [10, 11, 12, 13, 14, 15, 16, 17]
    async with batcher:
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        tasks = [asyncio.create_task(batcher.submit(x)) for x in items]
        await until(lambda: batcher.depth == 8)
        gate.release()
        assert await first == 0
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for x, outcome in zip(items, outcomes, strict=True):
        if x == 13:
            assert outcome is raised[-1]
            assert str(outcome) == "poisoned batch [13]"
        else:
            assert outcome == 2 * x
    # Depth first: 8 fails, its first half fails, that half's halves run, then the clean half of 8.
    assert gate.calls[1:] == [items, items[:4], [10, 11], [12, 13], [12], [13], items[4:]]
    assert observer.failures == [1]
    assert batcher.stats.failed == 1
    assert observer.batches[1][0] == 8


async def test_wrong_output_count_fails_the_whole_batch() -> None:
    gate = Gate(lambda xs: double(xs)[:-1])
    batcher, _, observer = make(gate, max_batch_size=4)
    async with batcher:
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        tasks = [asyncio.create_task(batcher.submit(x)) for x in [1, 2, 3]]
        await until(lambda: batcher.depth == 3)
        gate.release()
        outcomes = await asyncio.gather(first, *tasks, return_exceptions=True)
    assert all(isinstance(o, BatchContractError) for o in outcomes)
    assert "expected 1 got 0" in str(outcomes[0])
    assert "expected 3 got 2" in str(outcomes[1])
    assert observer.failures == [1, 3]


async def test_non_list_output_breaks_the_contract() -> None:
    batcher, _, _ = make(lambda xs: (x for x in xs))
    async with batcher:
        with pytest.raises(BatchContractError, match=r"^\[MD501\] .*expected 1 got a generator"):
            await batcher.submit(1)


async def test_base_exception_from_fn_becomes_one_items_error() -> None:
    def fn(xs: list[int]) -> list[int]:
        if xs == [1]:
            raise KeyboardInterrupt
        return double(xs)

    batcher, _, _ = make(fn)
    async with batcher:
        with pytest.raises(InferenceError, match="raised KeyboardInterrupt") as info:
            await batcher.submit(1)
        assert isinstance(info.value.__cause__, KeyboardInterrupt)
        assert await batcher.submit(2) == 4


async def test_worker_crash_fails_waiters_instead_of_hanging() -> None:
    class BrokenClock(ManualClock):
        async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
            if timeout is not None:
                raise RuntimeError("clock broke")
            return await super().wait(event, timeout)

    clock = BrokenClock(start=T0)
    batcher: MicroBatcher[int, int] = MicroBatcher(
        double, name="test", clock=clock, max_wait_s=1.0, cost_model=warm_model(alpha=1.0)
    )
    await batcher.start()
    with pytest.raises(InferenceError, match="failed internally: RuntimeError: clock broke"):
        await batcher.submit(1)
    with pytest.raises(ShuttingDownError, match="after an internal error"):
        await batcher.submit(2)
    await batcher.stop()


# -- capacity and threads ----------------------------------------------------------------------


async def test_full_queue_is_overloaded_with_retry_after() -> None:
    gate = Gate()
    batcher, _, _ = make(gate, max_batch_size=1, max_queue=2)
    async with batcher:
        first = asyncio.create_task(batcher.submit(1))
        await gate.wait_entered()
        queued = [asyncio.create_task(batcher.submit(x)) for x in [2, 3]]
        await until(lambda: batcher.depth == 2)
        with pytest.raises(OverloadedError) as info:
            await batcher.submit(4)
        assert info.value.retry_after >= 0.1
        assert "retry in" in str(info.value)
        gate.release()
        assert await asyncio.gather(first, *queued) == [2, 4, 6]


async def test_retry_after_follows_the_cost_model() -> None:
    gate = Gate()
    model = warm_model(alpha=0.5, beta=0.01)
    batcher, _, _ = make(gate, max_batch_size=4, max_queue=4, cost_model=model)
    async with batcher:
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        queued = [asyncio.create_task(batcher.submit(x)) for x in range(1, 5)]
        await until(lambda: batcher.depth == 4)
        # One batch of 4 must leave first: 0.5 + 4 * 0.01 s.
        assert batcher.retry_after() == pytest.approx(0.54)
        gate.release()
        await asyncio.gather(first, *queued)


async def test_expected_wait_counts_the_running_batch_and_the_batches_ahead() -> None:
    gate = Gate()
    model = warm_model(alpha=0.5, beta=0.01)
    batcher, clock, _ = make(gate, max_batch_size=4, max_queue=64, cost_model=model)
    cold, _, _ = make(double)
    assert cold.expected_wait(1) is None  # nothing measured yet: no estimate, nothing refused
    async with batcher:
        assert batcher.expected_wait(1) == 0.0  # idle: a new item starts at once
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        clock.advance(0.2)  # the running batch of 1 (0.51 s estimated) has run 0.2 s
        assert batcher.expected_wait(1) == pytest.approx(0.31)
        queued = [asyncio.create_task(batcher.submit(x)) for x in range(1, 10)]
        await until(lambda: batcher.depth == 9)
        # 9 queued + 3 new = 12 items: the last starts after the running batch and two full batches.
        assert batcher.expected_wait(3) == pytest.approx(0.31 + 2 * 0.54)
        assert batcher.expected_wait(4) == pytest.approx(0.31 + 3 * 0.54)
        gate.release()
        await asyncio.gather(first, *queued)


async def test_fn_runs_off_the_event_loop_thread() -> None:
    gate = Gate()
    gate.release()
    batcher, _, _ = make(gate)
    async with batcher:
        await batcher.submit(1)
        await batcher.submit(2)
    assert threading.get_ident() not in gate.threads
    assert len(set(gate.threads)) == 1


async def test_many_concurrent_submitters_get_their_own_answers() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda xs: [x * 2 for x in xs], name="real", max_batch_size=16)
    async with batcher:
        results = await asyncio.gather(*(batcher.submit(x) for x in range(200)))
    assert results == [x * 2 for x in range(200)]
    stats = batcher.stats
    assert stats.items == 200 and stats.batches >= 200 // 16
    assert stats.mean_batch_size == pytest.approx(200 / stats.batches)


async def test_sequential_submitters_in_parallel_tasks() -> None:
    batcher, _, _ = make(max_batch_size=4)

    async def client(base: int) -> list[int]:
        return [await batcher.submit(base + i) for i in range(20)]

    async with batcher:
        answers = await asyncio.gather(*(client(1000 * c) for c in range(10)))
    assert answers == [[2 * (1000 * c + i) for i in range(20)] for c in range(10)]


# -- lifecycle ---------------------------------------------------------------------------------


async def test_drain_answers_every_accepted_request() -> None:
    gate = Gate()
    batcher, _, observer = make(gate, max_batch_size=2, max_wait_s=10.0)
    await batcher.start()
    first = asyncio.create_task(batcher.submit(0))
    await gate.wait_entered()
    tasks = [asyncio.create_task(batcher.submit(x)) for x in range(1, 6)]
    await until(lambda: batcher.depth == 5)
    stopping = asyncio.create_task(batcher.stop(drain=True))
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDownError, match=r"^\[MD603\]"):
        await batcher.submit(99)
    gate.release()
    await stopping
    assert [t.result() for t in [first, *tasks]] == [0, 2, 4, 6, 8, 10]
    assert gate.calls[1:] == [[1, 2], [3, 4], [5]]
    assert observer.reasons[1:] == ["drain", "drain", "drain"]


async def test_stop_without_drain_fails_pending_and_does_not_wait_for_fn() -> None:
    gate = Gate()
    batcher, _, observer = make(gate)
    await batcher.start()
    running = asyncio.create_task(batcher.submit(1))
    await gate.wait_entered()
    queued = asyncio.create_task(batcher.submit(2))
    await until(lambda: batcher.depth == 1)
    await batcher.stop(drain=False)  # returns while fn is still blocked
    for task in (running, queued):
        with pytest.raises(ShuttingDownError):
            await task
    gate.release()
    assert sum(observer.failures) == 2


async def test_submit_after_stop_is_refused() -> None:
    batcher, _, _ = make()
    async with batcher:
        assert await batcher.submit(1) == 2
    with pytest.raises(ShuttingDownError, match="is stopped"):
        await batcher.submit(2)
    await batcher.stop()  # idempotent
    never_started, _, _ = make()
    await never_started.stop()
    with pytest.raises(ShuttingDownError):
        await never_started.submit(1)


async def test_submit_starts_the_batcher_lazily() -> None:
    batcher, _, _ = make()
    assert await batcher.submit(4) == 8
    await batcher.stop()


async def test_borrowed_executor_is_not_shut_down() -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        batcher, _, _ = make(executor=pool)
        async with batcher:
            assert await batcher.submit(1) == 2
        assert pool.submit(lambda: 7).result() == 7


# -- observer ----------------------------------------------------------------------------------


async def test_observer_counts_are_consistent() -> None:
    def fn(xs: list[int]) -> list[int]:
        if 7 in xs:
            raise ValueError("seven")
        return double(xs)

    gate = Gate(fn)
    batcher, clock, observer = make(gate, max_batch_size=4)
    async with batcher:
        first = asyncio.create_task(batcher.submit(0))
        await gate.wait_entered()
        tasks = [asyncio.create_task(batcher.submit(x)) for x in range(1, 9)]
        expiring = asyncio.create_task(batcher.submit(100, deadline=T0 + 0.5))
        cancelled = asyncio.create_task(batcher.submit(200))
        await until(lambda: batcher.depth == 10)
        cancelled.cancel()
        clock.advance(1.0)
        gate.release()
        outcomes = await asyncio.gather(first, *tasks, expiring, cancelled, return_exceptions=True)
    stats = batcher.stats
    assert isinstance(outcomes[7], ValueError)
    assert isinstance(outcomes[9], DeadlineExceededError)
    assert isinstance(outcomes[10], asyncio.CancelledError)
    assert [size for size, _, _ in observer.batches] == [1, 4, 4]
    assert stats.batches == len(observer.batches) == 3
    assert stats.items == sum(size for size, _, _ in observer.batches) == len(observer.waits) == 9
    assert stats.failed == sum(observer.failures) == 1
    assert sorted(observer.drops) == ["cancelled", "expired"] and stats.dropped == 2
    assert stats.reasons == {reason: observer.reasons.count(reason) for reason in ("full", "cost", "max_wait", "drain")}
    assert all(seconds >= 0 for _, _, seconds in observer.batches)


async def test_a_failing_observer_does_not_break_batching() -> None:
    class Broken(Recorder):
        def batch_done(self, size: int, reason: str, seconds: float) -> None:
            raise RuntimeError("metrics down")

    batcher: MicroBatcher[int, int] = MicroBatcher(double, name="t", clock=ManualClock(), observer=Broken())
    async with batcher:
        assert await batcher.submit(1) == 2
        assert await batcher.submit(2) == 4


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0"),
        ({"max_batch_size": 2.5}, "max_batch_size must be an integer >= 1, got 2.5"),
        ({"max_queue": 0}, "max_queue must be an integer >= 1, got 0"),
        ({"max_batch_size": 8, "max_queue": 4}, "max_queue must be >= max_batch_size (8), got 4"),
        ({"max_wait_s": -0.1}, "max_wait_s must be a finite number >= 0, got -0.1"),
        ({"max_wait_s": float("inf")}, "max_wait_s must be a finite number >= 0, got inf"),
        ({"name": ""}, "name must be a non-empty string, got ''"),
    ],
)
def test_constructor_validates(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("name", "m")
    with pytest.raises(ConfigError) as info:
        MicroBatcher(double, **kwargs)
    assert str(info.value).startswith(f"[MD010] {message}")


def test_fn_must_be_callable() -> None:
    with pytest.raises(ConfigError, match=r"^\[MD010\] fn must be callable, got 3"):
        MicroBatcher(3, name="m")  # type: ignore[arg-type]
