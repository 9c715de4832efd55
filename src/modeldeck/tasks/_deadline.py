"""The deadline of the batch being run, so that work done in chunks stops once nobody waits for it.

The server's model worker sets it around ``Task.run_batch`` (``deadline_scope``); tasks that
process one input in many chunks (spaCy pieces, embedding windows) call ``check_deadline``
before each chunk. Outside a scope (the Python API, jobs) there is no deadline and the check is free.
A ``ContextVar`` rather than an argument: it reaches the chunk loops without changing every
task's signature, and each thread sees only its own batch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from ..errors import DeadlineExceededError

__all__ = ["check_deadline", "deadline_scope"]

_DEADLINE: ContextVar[float | None] = ContextVar("modeldeck_batch_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Run the body with ``deadline`` (``time.monotonic`` seconds; None: none) as the batch's deadline."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise ``DeadlineExceededError`` if the current batch's deadline has passed."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError(
            f"the deadline passed {time.monotonic() - deadline:.3f}s ago while this input was being processed",
            hint="raise timeout_ms, or send a shorter input",
        )
