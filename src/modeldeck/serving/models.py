"""Where a served model runs: in the server process, or in a worker process of its own.

A worker process keeps the model off the server's GIL (a spaCy pipeline or the Python glue of
a torch model would otherwise stall the event loop and be stalled by it) and turns a crash in
native code into one failed batch and a restarted worker instead of a dead server.

Both kinds answer ``run_batch([(input, options), ...])`` with one entry per item: the result's
JSON bytes, or that item's ``ModelDeckError``. Results are serialized where they are computed,
so the server only splices bytes into its response.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from .. import errors
from ..config import Settings
from ..errors import InferenceError, ModelDeckError, ShuttingDownError
from ..tasks.base import Options, Task, option_error
from ..types import ModelInfo
from .deck import ModelSpec, load_spec

__all__ = ["LocalModel", "ProcessModel", "ServedModel", "run_items"]

log = logging.getLogger("modeldeck.serving")

Output = bytes | ModelDeckError
AnyTask = Task[Any, Any, Any, Any]
# Runs in the worker, so it must be importable by name (a module-level function).
WorkerLoader = Callable[[ModelSpec, Settings], AnyTask]


class ServedModel(Protocol):
    task: str
    info: ModelInfo

    def check_options(self, options: Mapping[str, Any]) -> None: ...

    def run_batch(self, items: list[tuple[Any, Mapping[str, Any]]]) -> list[Output]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def run_items(task: AnyTask, items: Sequence[tuple[Any, Mapping[str, Any]]]) -> list[Output]:
    """Run a batch of ``(input, options mapping)`` through ``task``; one output per item."""
    parsed: dict[bytes, Options | ModelDeckError] = {}
    pairs: list[tuple[Any, Any]] = []
    failed: dict[int, ModelDeckError] = {}
    for index, (raw, options) in enumerate(items):
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
            pairs.append((raw, opts))
    results = iter(task.run_batch(pairs))
    outputs: list[Output] = []
    for index in range(len(items)):
        if index in failed:
            outputs.append(failed[index])
            continue
        result = next(results)
        outputs.append(result if isinstance(result, ModelDeckError) else to_json(result.to_dict()))
    return outputs


class LocalModel:
    """A task run on a thread of the server process (tests, and ``MODELDECK_ISOLATION=thread``)."""

    def __init__(self, task: AnyTask) -> None:
        self._task = task
        self.task = task.name
        self.info = task.info

    def check_options(self, options: Mapping[str, Any]) -> None:
        self._task.parse_options(options)

    def run_batch(self, items: list[tuple[Any, Mapping[str, Any]]]) -> list[Output]:
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
    conn.send(("ready", task.name, task.options_type, task.info, task.describe()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if message[0] == "stop":
            task.close()
            return
        outputs = run_items(task, message[1])
        conn.send([out if isinstance(out, bytes) else _error_to_wire(out) for out in outputs])


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
        _, self.task, self._options_type, self.info, self._describe = message
        self._process, self._conn = process, parent

    def check_options(self, options: Mapping[str, Any]) -> None:
        # The structural check (unknown keys, types) here; checks that need the model run in the worker.
        assert self._options_type is not None
        try:
            self._options_type.model_validate(dict(options))
        except ValidationError as exc:
            raise option_error(self.task, self._options_type, exc) from None

    def run_batch(self, items: list[tuple[Any, Mapping[str, Any]]]) -> list[Output]:
        with self._lock:
            if self._conn is None:
                raise ShuttingDownError(f"the worker for model {self.spec.alias!r} is stopped")
            try:
                self._conn.send(("batch", items))
                wire = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                code = self._restart()
                raise InferenceError(
                    f"the worker for model {self.spec.alias!r} died (exit code {code}) running this batch",
                    hint="the worker was restarted; if one input keeps crashing it, leave that input out",
                ) from None
        return [out if isinstance(out, bytes) else _error_from_wire(out) for out in wire]

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
