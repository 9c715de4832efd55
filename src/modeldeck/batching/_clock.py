"""Time for the batcher: real monotonic time, or a manual clock that tests move by hand."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock"]


class Clock(Protocol):
    """Where the batcher reads the time and waits; ``now()`` is monotonic seconds."""

    def now(self) -> float: ...

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds pass; True if the event is set."""
        ...


class MonotonicClock:
    """Real time: ``time.monotonic`` and ``asyncio.wait_for``."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        if event.is_set():
            return True
        if timeout is not None and timeout <= 0:
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return event.is_set()
        return True


class ManualClock:
    """Time that moves only through ``advance(dt)``; a waiter whose timeout has passed wakes up."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, asyncio.Event]] = []
        self._registered: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError(f"a clock only moves forward, got dt={dt!r}")
        self._now += dt
        for deadline, fired in self._timers:
            # Slack for float rounding: a wait computed as "until t" must fire when now reaches t.
            if deadline <= self._now + 1e-9:
                fired.set()

    @property
    def sleepers(self) -> int:
        """How many ``wait`` calls with a timeout are pending and not yet due."""
        return sum(1 for _, fired in self._timers if not fired.is_set())

    async def until_sleeping(self, count: int = 1) -> None:
        """Return once at least ``count`` timed waits are pending, so ``advance`` will reach them."""
        while self.sleepers < count:
            if self._registered is None:
                self._registered = asyncio.Event()
            self._registered.clear()
            await self._registered.wait()

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        if event.is_set():
            return True
        if timeout is None:
            await event.wait()
            return True
        if timeout <= 0:
            return False
        entry = (self._now + timeout, asyncio.Event())
        self._timers.append(entry)
        if self._registered is not None:
            self._registered.set()
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(entry[1].wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._timers.remove(entry)
        return event.is_set()
