"""The served models: one deployment (model + batcher) per served name, and the deck that holds them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from starlette.concurrency import run_in_threadpool

from ..batching import MicroBatcher
from ..config import Settings
from ..errors import (
    DeadlineExceededError,
    InferenceError,
    InputError,
    ModelDeckError,
    ModelLoadError,
    OverloadedError,
    ServiceError,
    ShuttingDownError,
    UnknownModelError,
    UnknownNameError,
)
from ..tasks import TASKS
from .limits import InputLimits, check_count
from .metrics import ServerMetrics
from .models import LocalModel, ProcessModel, ServedModel, StreamSink, WorkerProcess
from .specs import ModelSpec, SpecLoader, VariantChoice, load_spec, prefer_variant
from .wire import Answer, EmbeddingAnswer, as_json

__all__ = ["Deck", "Deployment", "StreamEnd", "build_model"]

log = logging.getLogger("modeldeck.serving")


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream: the result's JSON bytes, or the error that ended it."""

    output: bytes | ModelDeckError


class Deployment:
    """One served model behind its batcher: items are ``(input, options[, sink])``, outputs JSON bytes or errors."""

    def __init__(
        self,
        name: str,
        model: ServedModel,
        settings: Settings,
        metrics: ServerMetrics,
        variant: VariantChoice | None = None,
    ) -> None:
        self.name = name
        self.model = model
        #: Set where ``MODELDECK_PREFER_VARIANT`` made this name serve a variant in place of the model it names.
        self.variant = variant
        self.settings = settings
        self.metrics = metrics
        #: Streamed requests: started, finished, cancelled by a client that went away, and the
        #: tokens those cancelled generations had produced when they stopped.
        self.streams = {"started": 0, "finished": 0, "cancelled": 0, "cancelled_tokens": 0}
        self.created = int(time.time())  # OpenAI's model listing reports it
        self.batcher: MicroBatcher[tuple[Any, ...], Answer] = MicroBatcher(
            model.run_batch,
            name=name,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_s,
            max_queue=settings.max_queue,
            observer=metrics.for_model(name),
        )
        self.input_kind: str = TASKS.get(model.task).input_kind if model.task in TASKS else "text"
        self.limits = InputLimits(name, model.task, self.input_kind, settings)
        self.max_queue_wait_s = settings.max_queue_wait_s(name)

    async def start(self) -> None:
        await self.batcher.start()
        self.metrics.model_ready.labels(self.name).set(1)

    async def stop(self) -> None:
        self.metrics.model_ready.labels(self.name).set(0)
        await self.batcher.stop(drain=True)
        await run_in_threadpool(self.model.close)

    async def submit(self, raw: Any, options: Mapping[str, Any], deadline: float) -> Answer:
        """One input through the batcher; ``deadline`` is in ``time.monotonic`` seconds and travels
        with the item to the model, which never starts it late and stops its chunks once it passes."""
        return await self.batcher.submit((raw, options, None, deadline), deadline=deadline)

    def admit(self, count: int, deadline: float) -> None:
        """Refuse at once what the backlog cannot serve: a full queue, or an expected wait over this
        model's limit or past the request's deadline (429 with ``Retry-After``)."""
        batcher, limit = self.batcher, self.settings.max_queue
        if batcher.depth + count > limit:
            raise OverloadedError(
                f"model {self.name!r} has {batcher.depth} inputs queued; {count} more would pass the limit of {limit}",
                retry_after=batcher.retry_after(),
            )
        wait = batcher.expected_wait(count)
        if wait is None:
            return  # nothing measured yet
        left = deadline - time.monotonic()
        # Inputs that fit in the next batch wait only for the running one: refusing them would not
        # shorten anyone's wait, so the limit applies to full batches queued ahead.
        backlog = batcher.depth + count > self.settings.max_batch_size
        if backlog and wait > self.max_queue_wait_s:
            raise OverloadedError(
                f"model {self.name!r} is busy: this request would wait about {wait:.2f}s in its queue, over the "
                f"limit of {self.max_queue_wait_s:.2f}s (MODELDECK_MAX_QUEUE_WAIT_MS)",
                retry_after=max(0.1, wait - self.max_queue_wait_s),
            )
        if wait > left:
            raise OverloadedError(
                f"model {self.name!r} is busy: this request would wait about {wait:.2f}s in its queue, "
                f"past its deadline ({left:.2f}s left)",
                retry_after=max(0.1, wait - left),
            )

    @overload
    async def answer(
        self, inputs: Sequence[Any], options: Mapping[str, Any], timeout: float, *, binary: Literal[False] = False
    ) -> list[bytes | ModelDeckError]: ...

    @overload
    async def answer(
        self, inputs: Sequence[Any], options: Mapping[str, Any], timeout: float, *, binary: Literal[True]
    ) -> list[Answer]: ...

    async def answer(
        self, inputs: Sequence[Any], options: Mapping[str, Any], timeout: float, *, binary: bool = False
    ) -> list[bytes | ModelDeckError] | list[Answer]:
        """The one submit path of every route: one answer per input, in order.

        Each input is checked first (an invalid one gets its own error and is never queued, so a
        short deadline never hides a 4xx), then the request is admitted or refused as a whole,
        then the valid inputs are batched with the deadline ``timeout`` seconds from now.
        Answers are JSON bytes; with ``binary`` an embedding stays an ``EmbeddingAnswer`` (its
        float32 bytes), for a surface that encodes it itself (``wire.embedding_matrix``).
        """
        deadline = time.monotonic() + timeout
        check_count(self.name, len(inputs), self.settings)
        outputs: list[Answer | None] = [None] * len(inputs)
        live: list[int] = []
        for index, raw in enumerate(inputs):
            try:
                self.limits.check(raw)
            except InputError as exc:
                outputs[index] = exc
            else:
                live.append(index)
        self.metrics.items.labels(self.name).inc(len(inputs))
        if live:
            self.admit(len(live), deadline)
            pending = [self.submit(inputs[i], options, deadline) for i in live]
            try:
                answers = await asyncio.wait_for(
                    asyncio.gather(*pending, return_exceptions=True), timeout=max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                raise DeadlineExceededError(
                    f"model {self.name!r} did not answer within {timeout:.3f}s",
                    hint="raise timeout_ms, send fewer or shorter inputs per request, or add capacity",
                ) from None
            for index, answer in zip(live, answers, strict=True):
                outputs[index] = (
                    answer if isinstance(answer, (bytes, EmbeddingAnswer, ModelDeckError)) else _unexpected(answer)
                )
        if binary:
            return [out for out in outputs if out is not None]
        return [as_json(out) for out in outputs if out is not None]

    async def stream(self, raw: Any, options: Mapping[str, Any], deadline: float) -> AsyncIterator[str | StreamEnd]:
        """One input through the batcher, yielding its text pieces as they are generated, then a ``StreamEnd``.

        The request is batched with the other requests of the model, streamed or not. If the
        consumer stops early (the client disconnected), the generation stops at its next step and
        its batch slot is freed; ``deadline`` bounds the wait in the queue only.
        """
        if not self.model.supports_streaming:
            raise UnknownNameError("streaming task", self.model.task, ("generate", "chat"))
        sink = StreamSink(asyncio.get_running_loop())
        job = asyncio.ensure_future(self.batcher.submit((raw, options, sink), deadline=deadline))
        job.add_done_callback(lambda _: sink.queue.put_nowait(""))  # wakes the reader for the end
        self.streams["started"] += 1
        finished = False
        try:
            while True:
                piece = await sink.queue.get()
                if piece:
                    yield piece
                elif job.done():
                    break
            finished = True
            self.streams["finished"] += 1
            try:
                output = as_json(job.result())
            except ModelDeckError as exc:
                output = exc
            yield StreamEnd(output)
        finally:
            if not finished:
                self._abandon(job, sink)

    def _abandon(self, job: asyncio.Future[Answer], sink: Any) -> None:
        """The consumer left: stop the generation, and count what it had produced when it stopped."""
        self.streams["cancelled"] += 1
        sink.cancel()
        if job.done():
            self._count_cancelled(job)
        elif sink.pieces == 0:
            job.cancel()  # still queued: the batcher drops it before the model sees it
        else:
            job.add_done_callback(self._count_cancelled)

    def _count_cancelled(self, job: asyncio.Future[Answer]) -> None:
        if job.cancelled() or job.exception() is not None:
            return
        output = job.result()
        if isinstance(output, bytes):
            with contextlib.suppress(ValueError):
                self.streams["cancelled_tokens"] += int(_json_loads(output).get("completion_tokens", 0))

    def describe(self) -> dict[str, Any]:
        info = self.model.info
        return {
            "name": self.name,
            "task": self.model.task,
            "model": info.name,
            "version": info.version,
            "runtime": info.runtime,
            "license": info.license,
            **({"variant": self.variant.to_dict()} if self.variant is not None else {}),
        }

    def detail(self) -> dict[str, Any]:
        wait = self.batcher.expected_wait(1)
        return {
            **self.describe(),
            **self.model.describe(),
            "batching": {
                "max_batch_size": self.settings.max_batch_size,
                "max_wait_ms": self.settings.max_wait_ms,
                "max_queue": self.settings.max_queue,
                "max_queue_wait_ms": self.max_queue_wait_s * 1000.0,
                "queue_depth": self.batcher.depth,
                "expected_wait_ms": None if wait is None else wait * 1000.0,
                "stats": _plain(self.batcher.stats),
            },
            **({"streams": dict(self.streams)} if self.model.supports_streaming else {}),
        }


def _unexpected(exc: BaseException) -> InferenceError:
    log.error("model failed on one input: %r", exc)
    return InferenceError(f"the model failed on this input ({type(exc).__name__}: {exc})")


def _json_loads(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    """A JSON-able copy of a stats snapshot (dataclasses, mappings, tuples)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_model(
    spec: ModelSpec, settings: Settings, loader: SpecLoader | None, worker: WorkerProcess | None = None
) -> ServedModel:
    """Load one model where it will run (blocking: called from a worker thread); ``worker`` is the
    process it shares with the other models of its artifact (``models.deck_workers``), else its own."""
    if loader is not None:
        return LocalModel(loader(spec))
    if settings.isolation == "process":
        model = ProcessModel(spec, settings, worker=worker)
        model.start()
        return model
    return LocalModel(load_spec(spec, settings))


class Deck:
    """The deployments of one server and their loading state.

    ``settings``, ``loader`` and ``metrics`` let the deck load and unload models at run time
    (the Open Inference Protocol's model repository extension); without them it only serves.
    """

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        *,
        allow_failed: bool = False,
        settings: Settings | None = None,
        loader: SpecLoader | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.specs = list(specs)
        self.allow_failed = allow_failed
        self.settings = settings
        self.loader = loader
        self.metrics = metrics
        self.deployments: dict[str, Deployment] = {}
        self.failed: dict[str, str] = {}
        #: Served names that ``MODELDECK_PREFER_VARIANT`` moved to a variant (``choose_variants``).
        self.variants: dict[str, VariantChoice] = {}
        #: Served names unloaded on request: not expected to be ready until loaded again.
        self.unloaded: set[str] = set()
        self.shutting_down = False
        self._changing: set[str] = set()  # names being loaded or unloaded right now

    @property
    def expected(self) -> int:
        return len(self.specs) - len(self.unloaded)

    @property
    def settled(self) -> bool:
        """Every model has loaded or failed to."""
        return len(self.deployments) + len(self.failed) == self.expected

    @property
    def ready(self) -> bool:
        return not self.shutting_down and len(self.deployments) == self.expected

    @property
    def status(self) -> str:
        """``ready``, ``loading``, ``shutting_down``, ``failed``, or ``degraded``: every model settled,
        some failed and the others are served (``allow_failed``)."""
        if self.shutting_down:
            return "shutting_down"
        if self.ready:
            return "ready"
        if self.settled:
            return "degraded" if self.deployments and self.allow_failed else "failed"
        return "failed" if self.failed and not self.allow_failed else "loading"

    def state(self, name: str) -> str:
        """``ready``, ``loading``, ``failed`` or ``unloaded``: one served model's state."""
        if name in self.deployments:
            return "ready"
        if name in self.unloaded:
            return "unloaded"
        return "failed" if name in self.failed else "loading"

    def get(self, name: str) -> Deployment:
        if self.shutting_down:
            raise ShuttingDownError("the server is shutting down", hint="retry against another replica")
        deployment = self.deployments.get(name)
        if deployment is not None:
            return deployment
        names = [spec.alias for spec in self.specs]
        if name in self.unloaded:
            raise UnknownModelError(
                f"model {name!r} is unloaded", hint=f"load it with POST /v2/repository/models/{name}/load"
            )
        if name in names:
            if name in self.failed:
                raise ModelLoadError(f"model {name!r} failed to load: {self.failed[name]}")
            raise ServiceError(f"model {name!r} is still loading", hint="poll /readyz, then retry")
        raise UnknownModelError(f"no model named {name!r} is served here", hint=f"served models: {', '.join(names)}")

    def choose_variants(self) -> None:
        """Serve each entry that names no version by its verified fp32 ONNX variant, where
        ``MODELDECK_PREFER_VARIANT=onnx`` asks for it and one is installed (blocking: it reads the store)."""
        settings, _ = self._runtime_parts()
        if not settings.prefer_variant:
            return
        for index, spec in enumerate(self.specs):
            chosen, choice = prefer_variant(spec, settings)
            if choice is not None:
                self.specs[index] = chosen
                self.variants[spec.alias] = choice
                log.info(
                    "model %s: serving %s in place of %s (MODELDECK_PREFER_VARIANT=%s)",
                    spec.alias,
                    choice.served,
                    choice.preferred_over,
                    settings.prefer_variant,
                )

    async def start(self, spec: ModelSpec, worker: WorkerProcess | None = None) -> Deployment:
        """Build ``spec``'s model off the event loop (in ``worker`` if given) and start serving it under its alias."""
        settings, metrics = self._runtime_parts()
        model = await run_in_threadpool(build_model, spec, settings, self.loader, worker)
        deployment = Deployment(spec.alias, model, settings, metrics, variant=self.variants.get(spec.alias))
        await deployment.start()
        if self.shutting_down:  # the server began to stop while this model loaded: do not leave it running
            await deployment.stop()
            raise ShuttingDownError("the server is shutting down", hint="retry against another replica")
        self.deployments[spec.alias] = deployment
        return deployment

    def installed(self) -> list[str]:
        """The models installed in the store (pip packages found, artifacts pulled or imported), by
        name: the ones ``load`` may add at run time (blocking: it looks at the disk)."""
        from ..store import ModelStore

        settings, _ = self._runtime_parts()
        return [row.name for row in ModelStore(settings).list_models() if row.installed]

    async def load(self, name: str) -> Deployment:
        """Serve ``name``: a served name that was unloaded or failed, or a model installed in the
        store (by name, never a path, never pulled here), which then joins the served models."""
        if self.shutting_down:
            raise ShuttingDownError("the server is shutting down", hint="retry against another replica")
        if name in self.deployments:
            return self.deployments[name]
        spec = next((s for s in self.specs if s.alias == name), None)
        if spec is None:
            if "/" in name or name not in await run_in_threadpool(self.installed):
                served = ", ".join(s.alias for s in self.specs) or "(none)"
                raise UnknownModelError(
                    f"model {name!r} is neither served here nor installed in the model store",
                    hint=f"load a served model ({served}) or an installed one (`modeldeck models list`); "
                    "pull or import a model first",
                )
            spec = ModelSpec(name, None, name)
        elif self.state(name) == "loading" and name not in self._changing:
            raise ServiceError(f"model {name!r} is still loading", hint=f"poll /v2/models/{name}/ready")
        self._claim(name)
        try:
            self.failed.pop(name, None)
            try:
                deployment = await self.start(spec)
            except Exception as exc:
                if spec in self.specs and name not in self.unloaded:
                    self.failed[name] = str(exc)  # a served model that fails again is failed, not loading
                if isinstance(exc, ModelDeckError):
                    raise
                raise ModelLoadError(f"model {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
            if spec not in self.specs:
                self.specs.append(spec)
            self.unloaded.discard(name)
            log.info("model %s loaded on request (%s)", name, deployment.model.info.name)
            return deployment
        finally:
            self._changing.discard(name)

    async def unload(self, name: str) -> None:
        """Stop serving ``name``: new requests are refused at once, queued ones are answered, then its
        worker process (or in-process model) is closed and its memory given back."""
        deployment = self.get(name)
        self._claim(name)
        try:
            del self.deployments[name]
            self.unloaded.add(name)
            await deployment.stop()
            log.info("model %s unloaded on request", name)
        finally:
            self._changing.discard(name)

    def _claim(self, name: str) -> None:
        if name in self._changing:
            raise ServiceError(
                f"model {name!r} is being loaded or unloaded", hint="wait for that to finish, then retry"
            )
        self._changing.add(name)

    def _runtime_parts(self) -> tuple[Settings, ServerMetrics]:
        if self.settings is None or self.metrics is None:
            raise ServiceError("this deck was built without settings and metrics, so it cannot load models")
        return self.settings, self.metrics
