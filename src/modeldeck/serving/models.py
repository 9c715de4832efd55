"""Where a served model runs: in the server process, or in a worker process of its own.

A worker process keeps the model off the server's GIL (a spaCy pipeline or the Python glue of
a torch model would otherwise stall the event loop and be stalled by it) and turns a crash in
native code into one failed batch and a restarted worker instead of a dead server.

Both kinds answer ``run_batch([(input, options), ...])`` with one entry per item: the result's
JSON bytes (an embedding: its float32 bytes, ``wire.EmbeddingAnswer``), or that item's
``ModelDeckError``. Results are serialized where they are computed, so the server only splices
bytes into its response.

An item is ``(input, options[, sink[, deadline]])``. A deadline (``time.monotonic`` seconds, one
clock for every process of the machine) reaches the model: an item whose deadline has passed is
never started, and a task that works through a long input in chunks stops between them
(``tasks._deadline``). A worker process still busy ``worker_grace_s`` after the last deadline of
its batch, or above ``worker_max_rss_mb`` of resident memory, is killed and restarted; the batch
fails with ``WorkerBudgetError``, which the batcher answers by rerunning it in halves, so the
innocent items are answered and the one at fault gets the error.

Streaming tasks (``generate``, ``chat``) also take ``(input, options, sink)`` items: the task calls
``sink.emit(piece)`` after each decoding step, on the model thread. A worker process forwards
each piece over its pipe as ``("piece", index, text)`` while the batch runs; cancelling a sink
(the client went away) sends ``("cancel", batch, index)`` back, and that row stops at its next step.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from .. import errors
from ..config import Settings
from ..errors import DeadlineExceededError, InferenceError, ModelDeckError, ShuttingDownError, WorkerBudgetError
from ..tasks._deadline import deadline_scope
from ..tasks.base import Options, Task, option_error
from ..types import ModelInfo
from .specs import ModelSpec, load_spec
from .wire import Answer, encode_result

__all__ = ["LocalModel", "ProcessModel", "ServedModel", "StreamSink", "run_items", "worker_rss_bytes"]

log = logging.getLogger("modeldeck.serving")

Output = Answer
AnyTask = Task[Any, Any, Any, Any]
# Runs in the worker, so it must be importable by name (a module-level function).
WorkerLoader = Callable[[ModelSpec, Settings], AnyTask]


class ServedModel(Protocol):
    task: str
    info: ModelInfo
    supports_streaming: bool

    def check_options(self, options: Mapping[str, Any]) -> None: ...

    def run_batch(self, items: list[tuple[Any, Mapping[str, Any]]]) -> list[Output]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class StreamSink:
    """Carries one streamed request's pieces from the model thread to an asyncio queue on the server.

    The queue gets each non-empty piece; ``cancel()`` (the client went away) makes the next
    ``emit`` answer False, so the task stops that row, and runs ``on_cancel`` (a worker process
    is told at once rather than at its next piece).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.on_cancel: Callable[[], None] | None = None
        self.pieces = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        callback = self.on_cancel
        if callback is not None:
            callback()

    def emit(self, piece: str) -> bool:
        if self._cancelled.is_set():
            return False
        if piece:
            self.pieces += 1
            try:
                self._loop.call_soon_threadsafe(self.queue.put_nowait, piece)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                self._cancelled.set()
                return False
        return True


def run_items(task: AnyTask, items: Sequence[tuple[Any, ...]]) -> list[Output]:
    """Run a batch of ``(input, options mapping[, sink[, deadline]])`` through ``task``; one output per item."""
    parsed: dict[bytes, Options | ModelDeckError] = {}
    pairs: list[tuple[Any, ...]] = []
    deadlines: list[float] = []
    failed: dict[int, ModelDeckError] = {}
    now = time.monotonic()
    for index, (raw, options, *rest) in enumerate(items):
        sink = rest[0] if rest else None
        deadline = rest[1] if len(rest) > 1 else None
        if deadline is not None and deadline <= now:
            failed[index] = DeadlineExceededError(
                f"the deadline passed {now - deadline:.3f}s before the model could start this input",
                hint="raise timeout_ms, or send fewer inputs at once",
            )
            continue
        key = to_json(options)
        if key not in parsed:
            try:
                parsed[key] = task.parse_options(options)
            except ModelDeckError as exc:
                parsed[key] = exc
        opts = parsed[key]
        if isinstance(opts, ModelDeckError):
            failed[index] = opts
        else:
            pairs.append((raw, opts, sink) if sink is not None else (raw, opts))
            if deadline is not None:
                deadlines.append(deadline)
    # Chunked work stops at the earliest deadline of the batch; items stopped before their own
    # deadline (they shared a forward with an earlier one) are run again below, under theirs.
    with deadline_scope(min(deadlines) if deadlines else None):
        results = iter(task.run_batch(pairs))
    outputs: list[Output] = []
    again: list[int] = []
    for index in range(len(items)):
        if index in failed:
            outputs.append(failed[index])
            continue
        result = next(results)
        if isinstance(result, DeadlineExceededError) and _deadline_of(items[index]) > time.monotonic():
            again.append(index)
        outputs.append(result if isinstance(result, ModelDeckError) else encode_result(result))
    if again and len(again) < len(pairs):  # each round leaves out at least the earliest deadline
        for index, output in zip(again, run_items(task, [items[i] for i in again]), strict=True):
            outputs[index] = output
    return outputs


def _deadline_of(item: tuple[Any, ...]) -> float:
    deadline = item[3] if len(item) > 3 else None
    return float("inf") if deadline is None else float(deadline)


class LocalModel:
    """A task run on a thread of the server process (tests, and ``MODELDECK_ISOLATION=thread``)."""

    def __init__(self, task: AnyTask) -> None:
        self._task = task
        self.task = task.name
        self.info = task.info
        self.supports_streaming = task.supports_streaming

    def check_options(self, options: Mapping[str, Any]) -> None:
        self._task.parse_options(options)

    def run_batch(self, items: list[tuple[Any, ...]]) -> list[Output]:
        return run_items(self._task, items)

    def describe(self) -> dict[str, Any]:
        return {**self._task.describe(), "isolation": "thread"}

    def close(self) -> None:
        self._task.close()


def _error_from_wire(wire: tuple[str, str, str | None]) -> ModelDeckError:
    name, message, hint = wire
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ModelDeckError)):
        cls = InferenceError
    err = cls.__new__(cls)
    ModelDeckError.__init__(err, message, hint=hint)  # bypass subclasses' own signatures
    return err


def _error_to_wire(err: ModelDeckError) -> tuple[str, str, str | None]:
    return type(err).__name__, err.message, err.hint


class _PipeSink:
    """A streamed item inside the worker: pieces go up the pipe; cancels come down it between steps."""

    def __init__(self, conn: Connection, batch: int, index: int, cancelled: set[int]) -> None:
        self._conn = conn
        self._batch = batch
        self._index = index
        self._cancelled = cancelled

    def emit(self, piece: str) -> bool:
        while self._conn.poll():
            message = self._conn.recv()
            if message[0] == "cancel" and message[1] == self._batch:
                self._cancelled.add(message[2])
        if self._index in self._cancelled:
            return False
        if piece:
            self._conn.send(("piece", self._index, piece))
        return True


def _worker_batch(conn: Connection, task: AnyTask, batch: int, items: list[tuple[Any, ...]]) -> list[Output]:
    cancelled: set[int] = set()
    local = [
        (raw, options, _PipeSink(conn, batch, index, cancelled) if streamed else None, deadline)
        for index, (raw, options, streamed, deadline) in enumerate(items)
    ]
    return run_items(task, local)


def _worker_main(conn: Connection, spec: ModelSpec, settings: Settings, loader: WorkerLoader) -> None:
    """The worker process: load the model, report, then answer batches until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    try:
        task = loader(spec, settings)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, ModelDeckError) else f"{type(exc).__name__}: {exc}"
        conn.send(("failed", message))
        return
    # The options class travels by reference (module and name), so the server can check options early.
    conn.send(("ready", task.name, task.options_type, task.info, task.describe(), task.supports_streaming))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if message[0] == "stop":
            task.close()
            return
        if message[0] != "batch":
            continue  # a cancel that arrived after its batch had finished
        outputs = _worker_batch(conn, task, message[2], message[1])
        conn.send([_error_to_wire(out) if isinstance(out, ModelDeckError) else out for out in outputs])


_POLL_S = 0.05  # how often a running batch's worker is checked against its budgets
_BUDGET_HINT = (
    "send a smaller input, or raise timeout_ms, MODELDECK_WORKER_GRACE_S or MODELDECK_WORKER_MAX_RSS_MB; "
    "the other inputs of its batch were run again"
)


def worker_rss_bytes(pid: int | None) -> int | None:
    """Resident memory of a process from /proc (Linux); None where it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class ProcessModel:
    """A model in a worker process of its own, restarted if it dies."""

    def __init__(self, spec: ModelSpec, settings: Settings, *, loader: WorkerLoader = load_spec) -> None:
        self.spec = spec
        self.settings = settings
        self.loader = loader
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")  # never fork a process that holds threads
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.task = ""
        self.info: ModelInfo
        self._describe: dict[str, Any] = {}
        self._options_type: type[Options] | None = None
        self.supports_streaming = False
        self._batches = itertools.count()
        self._send_lock = threading.Lock()  # cancels are sent from the event loop while a batch runs

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the worker and wait until its model is loaded (blocking: call from a thread)."""
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(child, self.spec, self.settings, self.loader),
            name=f"modeldeck-{self.spec.alias}",
            daemon=True,
        )
        process.start()
        child.close()
        try:
            message = parent.recv()
        except EOFError:
            process.join(5)
            raise InferenceError(
                f"the worker for model {self.spec.alias!r} exited with code {process.exitcode} while loading"
            ) from None
        if message[0] == "failed":
            process.join(5)
            raise InferenceError(f"model {self.spec.alias!r} failed to load: {message[1]}")
        _, self.task, self._options_type, self.info, self._describe, self.supports_streaming = message
        self._process, self._conn = process, parent

    def check_options(self, options: Mapping[str, Any]) -> None:
        # The structural check (unknown keys, types) here; checks that need the model run in the worker.
        assert self._options_type is not None
        try:
            self._options_type.model_validate(dict(options))
        except ValidationError as exc:
            raise option_error(self.task, self._options_type, exc) from None

    def run_batch(self, items: list[tuple[Any, ...]]) -> list[Output]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise ShuttingDownError(f"the worker for model {self.spec.alias!r} is stopped")
            batch = next(self._batches)
            sinks: dict[int, StreamSink] = {}
            wire_items = []
            deadlines = []
            for index, (raw, options, *rest) in enumerate(items):
                sink = rest[0] if rest else None
                deadline = rest[1] if len(rest) > 1 else None
                if sink is not None:
                    sinks[index] = sink
                if deadline is not None:
                    deadlines.append(deadline)
                wire_items.append((raw, options, sink is not None, deadline))
            # Past this the worker is computing for nobody: kill it (None: a stream, no time limit).
            give_up = max(deadlines) + self.settings.worker_grace_s if len(deadlines) == len(items) else None
            try:
                self._send(conn, ("batch", wire_items, batch))
                for index, sink in sinks.items():
                    sink.on_cancel = lambda index=index: self._send_cancel(conn, batch, index)
                    if sink.cancelled:
                        self._send_cancel(conn, batch, index)
                while True:
                    if not conn.poll(_POLL_S):
                        over = self._over_budget(give_up)
                        if over is None:
                            continue
                        self._kill()
                        self._restart()
                        raise WorkerBudgetError(
                            f"the worker for model {self.spec.alias!r} {over} running this input, so it was "
                            "killed and restarted",
                            hint=_BUDGET_HINT,
                        )
                    wire = conn.recv()
                    if isinstance(wire, list):
                        break
                    _, index, piece = wire
                    sinks[index].emit(piece)
            except (EOFError, OSError, BrokenPipeError):
                code = self._restart()
                died = InferenceError(
                    f"the worker for model {self.spec.alias!r} died (exit code {code}) running this batch",
                    hint="the worker was restarted; if one input keeps crashing it, leave that input out",
                )
                if any(sink.pieces for sink in sinks.values()):
                    # Raising would make the batcher rerun the batch in halves, and a stream that
                    # already sent text would send it again: every item gets the error instead.
                    return [died] * len(items)
                raise died from None
            finally:
                for sink in sinks.values():
                    sink.on_cancel = None
        return [_error_from_wire(out) if isinstance(out, tuple) else out for out in wire]

    def _over_budget(self, give_up: float | None) -> str | None:
        """Why the running batch must be stopped (time or memory), or None while it is within budget."""
        if give_up is not None and time.monotonic() > give_up:
            return f"was still busy {self.settings.worker_grace_s:g}s after the deadline"
        limit = self.settings.worker_max_rss_mb
        rss = worker_rss_bytes(self.pid)
        if limit and rss is not None and rss > limit * 1024 * 1024:
            return f"passed its memory budget of {limit:,} MiB (MODELDECK_WORKER_MAX_RSS_MB)"
        return None

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def _send(self, conn: Connection, message: Any) -> None:
        with self._send_lock:
            conn.send(message)

    def _send_cancel(self, conn: Connection, batch: int, index: int) -> None:
        try:
            self._send(conn, ("cancel", batch, index))
        except OSError:
            pass  # the worker is gone; the batch fails on its own

    def _restart(self) -> int | None:
        old = self._process
        old.join(5)
        log.error("worker for model %s died with exit code %s; restarting", self.spec.alias, old.exitcode)
        self.restarts += 1
        self.start()
        return old.exitcode  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return {**self._describe, "isolation": "process", "worker_pid": self.pid, "worker_restarts": self.restarts}

    def close(self) -> None:
        with self._lock:
            conn, process, self._conn = self._conn, self._process, None
            if conn is not None:
                try:
                    conn.send(("stop",))
                except OSError:
                    pass
                conn.close()
            if process is not None:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join(5)
