"""The real and the manual clock honour the Clock contract."""

from __future__ import annotations

import asyncio

import pytest

from modeldeck.batching import ManualClock, MonotonicClock

pytestmark = pytest.mark.timeout(10)


async def test_monotonic_clock_waits() -> None:
    clock = MonotonicClock()
    event = asyncio.Event()
    assert clock.now() <= clock.now()
    assert await clock.wait(event, 0) is False
    event.set()
    assert await clock.wait(event, 0) is True
    assert await clock.wait(event, None) is True


async def test_manual_clock_times_out_only_when_advanced() -> None:
    clock = ManualClock(start=5.0)
    event = asyncio.Event()
    waiter = asyncio.create_task(clock.wait(event, 1.0))
    await clock.until_sleeping()
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(0.5)
    assert await waiter is False
    assert clock.now() == 6.0 and clock.sleepers == 0


async def test_manual_clock_wakes_on_event() -> None:
    clock = ManualClock()
    event = asyncio.Event()
    waiter = asyncio.create_task(clock.wait(event, 10.0))
    await clock.until_sleeping()
    event.set()
    assert await waiter is True
    assert clock.sleepers == 0
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
