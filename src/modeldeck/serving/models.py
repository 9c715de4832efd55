"""Where a served model runs: in the server process, or in a worker process.

A worker process keeps the model off the server's GIL (a spaCy pipeline or the Python glue of
a torch model would otherwise stall the event loop and be stalled by it) and turns a crash in
native code into one failed batch and a restarted worker instead of a dead server. The models
of one artifact (``specs.group_specs``: ``ner`` and ``parse`` over one spaCy pipeline) share one
``WorkerProcess``, each through its own ``ProcessModel``; workers fork from a fork server that
preloaded the deck's libraries (``worker_context``).

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
import gc
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from .. import errors
from ..config import Settings
from ..errors import DeadlineExceededError, InferenceError, ModelDeckError, ShuttingDownError, WorkerBudgetError
from ..runtimes import preload_modules
from ..runtimes.base import size_thread_pools
from ..tasks._deadline import deadline_scope
from ..tasks.base import Options, Task, option_error
from ..types import ModelInfo
from ._memory import drop_library_pages
from .specs import ModelSpec, group_specs, load_spec
from .wire import Answer, encode_result

__all__ = [
    "LocalModel",
    "ProcessModel",
    "ServedModel",
    "StreamSink",
    "WorkerProcess",
    "deck_workers",
    "run_items",
    "worker_context",
    "worker_rss_bytes",
]

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


def _load_group(specs: Sequence[ModelSpec], settings: Settings, loader: WorkerLoader) -> dict[str, AnyTask | str]:
    """Each spec's task, or why it failed to load; one artifact is loaded once for all of them."""
    from ..runtimes._shared import shared_artifacts

    tasks: dict[str, AnyTask | str] = {}
    with shared_artifacts():
        for spec in specs:
            try:
                tasks[spec.alias] = loader(spec, settings)
            except BaseException as exc:
                tasks[spec.alias] = str(exc) if isinstance(exc, ModelDeckError) else f"{type(exc).__name__}: {exc}"
    return tasks


def _worker_main(
    conn: Connection,
    specs: Sequence[ModelSpec],
    settings: Settings,
    loader: WorkerLoader,
    environ: Mapping[str, str],
) -> None:
    """The worker process: load the models, report, then answer batches until told to stop."""
    # What the fork server preloaded is never collected here: a collection writes to every object
    # it visits, which would copy the shared pages of those libraries into this process.
    gc.freeze()
    # A forked worker inherits the fork server's environment, as it was when that started; it
    # takes the server's, as a spawned one does, before it loads anything.
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    size_thread_pools(environ)  # what the fork server imported sized its pools from its own environment
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    loaded = _load_group(specs, settings, loader)
    tasks = {alias: task for alias, task in loaded.items() if not isinstance(task, str)}
    # The loaded models live as long as the worker: later collections need not walk (or write to) them.
    gc.freeze()
    # The options class travels by reference (module and name), so the server can check options early.
    conn.send(
        {
            alias: ("failed", task)
            if isinstance(task, str)
            else ("ready", task.name, task.options_type, task.info, task.describe(), task.supports_streaming)
            for alias, task in loaded.items()
        }
    )
    if not tasks:
        return
    # Loading touched pages of libraries (CUDA's, triton's) that serving never runs; unmapped once
    # the server knows the models are ready, so readiness does not wait for it.
    drop_library_pages()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if message[0] == "stop":
            for task in tasks.values():
                task.close()
            return
        if message[0] != "batch":
            continue  # a cancel that arrived after its batch had finished
        _, alias, items, batch = message
        outputs = _worker_batch(conn, tasks[alias], batch, items)
        conn.send([_error_to_wire(out) if isinstance(out, ModelDeckError) else out for out in outputs])


_SETTLE = __name__.rpartition(".")[0] + "._settle"  # the fork server's last import
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


def worker_context(start: str = "forkserver", preload: Sequence[str] = ()) -> BaseContext:
    """How worker processes start: ``forkserver`` (default) or ``spawn``.

    A fork server is one process that imports ``preload`` once and forks every worker from
    itself, so the pages of those libraries (torch's, spaCy's: hundreds of MiB of code and Python
    objects) are shared by all the workers instead of rebuilt in each, and a worker only loads its
    weights. The server itself never forks: it holds threads (the event loop's pool, uvicorn), and
    a fork of a threaded process can inherit a held lock. The fork server runs no model: the
    only threads in it are the idle pools some libraries start at import (OpenBLAS's), which
    their own fork handlers take down before each fork; torch's intra-op pool is created in the
    worker, on its first operation, sized as a spawned worker's would be. Python keeps one fork
    server per process, started on first use, so the first deck of a process decides its preload
    list; a module missing there is imported by the worker that needs it. The fork server imports
    ``_settle`` last: it freezes the collector and unmaps the library pages the imports touched
    once (``_memory.drop_library_pages``), so no worker inherits them.
    """
    if start == "spawn":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*preload, _SETTLE])
    return context


class WorkerProcess:
    """One worker process for the specs that share an artifact; it answers each spec's batches by alias.

    Batches reach the process one at a time, whichever model they are for (the process runs one
    at a time anyway). Started on the first ``start()``, restarted if it dies or breaks a budget
    (every model it holds is loaded again), stopped when its last model is released.
    """

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        settings: Settings,
        *,
        loader: WorkerLoader = load_spec,
        context: BaseContext | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self.settings = settings
        self.loader = loader
        self.restarts = 0
        self._context = context or worker_context(settings.worker_start)
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._loaded: dict[str, tuple[Any, ...]] = {}
        self._users = {spec.alias for spec in self.specs}
        self._batches = itertools.count()
        self._send_lock = threading.Lock()  # cancels are sent from the event loop while a batch runs

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def name(self) -> str:
        return ", ".join(repr(spec.alias) for spec in self.specs)

    def start(self) -> None:
        """Start the worker once and wait until its models are loaded (blocking: call from a thread)."""
        with self._lock:
            if not self._loaded:
                self._start()

    def loaded(self, alias: str) -> tuple[Any, ...]:
        """``("ready", task, options_type, info, describe, streaming)`` or ``("failed", why)`` for one alias."""
        return self._loaded[alias]

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(  # type: ignore[attr-defined]
            target=_worker_main,
            args=(child, self.specs, self.settings, self.loader, dict(os.environ)),
            name="modeldeck-" + "+".join(spec.alias for spec in self.specs),
            daemon=True,
        )
        process.start()
        child.close()
        try:
            self._loaded = parent.recv()
        except EOFError:
            process.join(5)
            raise InferenceError(
                f"the worker for model {self.name} exited with code {process.exitcode} while loading"
            ) from None
        if all(state[0] == "failed" for state in self._loaded.values()):
            process.join(5)
        else:
            self._process, self._conn = process, parent

    def run(self, alias: str, items: list[tuple[Any, ...]]) -> list[Output]:
        with self._lock:
            conn = self._conn
            if conn is None or alias not in self._users:
                raise ShuttingDownError(f"the worker for model {alias!r} is stopped")
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
                self._send(conn, ("batch", alias, wire_items, batch))
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
                            f"the worker for model {alias!r} {over} running this input, so it was killed and restarted",
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
                    f"the worker for model {alias!r} died (exit code {code}) running this batch",
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
        log.error("worker for model %s died with exit code %s; restarting", self.name, old.exitcode)
        self.restarts += 1
        self._process = self._conn = None
        self._start()
        if self._conn is None:
            raise InferenceError(f"the worker for model {self.name} failed to load again after it died")
        return old.exitcode  # type: ignore[no-any-return]

    def release(self, alias: str) -> None:
        """One model is done with the worker; the last one stops it."""
        with self._lock:
            self._users.discard(alias)
            if self._users:
                return
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


class ProcessModel:
    """A model in a worker process, alone or beside the other models of its artifact (``worker=``)."""

    def __init__(
        self,
        spec: ModelSpec,
        settings: Settings,
        *,
        loader: WorkerLoader = load_spec,
        worker: WorkerProcess | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.worker = worker or WorkerProcess([spec], settings, loader=loader)
        self.task = ""
        self.info: ModelInfo
        self._describe: dict[str, Any] = {}
        self._options_type: type[Options] | None = None
        self.supports_streaming = False

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    @property
    def restarts(self) -> int:
        return self.worker.restarts

    def start(self) -> None:
        """Start the worker (if no other model of it has) and wait until this model is loaded."""
        self.worker.start()
        state = self.worker.loaded(self.spec.alias)
        if state[0] == "failed":
            self.worker.release(self.spec.alias)
            raise InferenceError(f"model {self.spec.alias!r} failed to load: {state[1]}")
        _, self.task, self._options_type, self.info, self._describe, self.supports_streaming = state

    def check_options(self, options: Mapping[str, Any]) -> None:
        # The structural check (unknown keys, types) here; checks that need the model run in the worker.
        assert self._options_type is not None
        try:
            self._options_type.model_validate(dict(options))
        except ValidationError as exc:
            raise option_error(self.task, self._options_type, exc) from None

    def run_batch(self, items: list[tuple[Any, ...]]) -> list[Output]:
        return self.worker.run(self.spec.alias, items)

    def describe(self) -> dict[str, Any]:
        shared = [spec.alias for spec in self.worker.specs if spec.alias != self.spec.alias]
        return {
            **self._describe,
            "isolation": "process",
            "worker_pid": self.pid,
            "worker_restarts": self.restarts,
            "worker_shared_with": shared,
        }

    def close(self) -> None:
        self.worker.release(self.spec.alias)


def deck_workers(specs: Sequence[ModelSpec], settings: Settings) -> dict[str, WorkerProcess]:
    """One worker process per artifact (``group_specs``), keyed by each alias it serves, all started
    from one fork server that preloads what the deck's runtimes import."""
    groups = group_specs(specs, settings)
    preload = [__name__, *preload_modules(group.runtime for group in groups if group.runtime is not None)]
    context = worker_context(settings.worker_start, preload)
    workers: dict[str, WorkerProcess] = {}
    for group in groups:
        worker = WorkerProcess(group.specs, settings, context=context)
        workers.update((spec.alias, worker) for spec in group.specs)
    return workers
