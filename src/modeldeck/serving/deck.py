"""The served models: deck specs, and one deployment (task + batcher) per served name."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..batching import MicroBatcher
from ..config import Settings
from ..errors import InputError, ModelDeckError, OptionError
from ..tasks import TASKS
from ..tasks.base import Task
from .metrics import ServerMetrics

__all__ = ["Deployment", "ModelSpec", "parse_specs"]

AnyTask = Task[Any, Any, Any, Any]
Loader = Callable[["ModelSpec"], AnyTask]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``--models``: ``TASK``, ``MODEL``, ``TASK:MODEL`` or ``ALIAS=`` before any of them."""

    alias: str
    task: str | None
    model: str | None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        spec = text.strip()
        alias, sep, rest = spec.partition("=")
        if not sep:
            alias, rest = "", spec
        task, colon, model = rest.partition(":")
        if colon and task in TASKS:
            parsed = cls(alias or task, task, model or None)
        elif rest in TASKS:
            parsed = cls(alias or rest, rest, None)
        else:
            parsed = cls(alias or rest, None, rest)
        if not parsed.alias or "/" in parsed.alias or not (parsed.task or parsed.model):
            raise OptionError(
                f"cannot read the model spec {text!r}",
                hint="use TASK, MODEL, TASK:MODEL or ALIAS=TASK:MODEL, e.g. 'ner' or 'bert=ner:./my-bert'",
            )
        return parsed


def parse_specs(texts: Sequence[str]) -> list[ModelSpec]:
    specs = [ModelSpec.parse(t) for t in texts]
    seen: set[str] = set()
    for spec in specs:
        if spec.alias in seen:
            raise OptionError(f"the model name {spec.alias!r} is served twice", hint="give one of them an ALIAS=")
        seen.add(spec.alias)
    return specs


def load_spec(spec: ModelSpec, settings: Settings) -> AnyTask:
    from .._api import load

    if spec.task and spec.model:
        return load(spec.task, model=spec.model, settings=settings)
    return load(spec.task or spec.model or spec.alias, settings=settings)


@dataclass(frozen=True)
class Item:
    encoded: Any
    options: Any


class Deployment:
    """One served model: its task, its batcher and the per-item error isolation around them."""

    def __init__(self, name: str, task: AnyTask, settings: Settings, metrics: ServerMetrics) -> None:
        self.name = name
        self.task = task
        self.settings = settings
        self.metrics = metrics
        self.batcher: MicroBatcher[Item, Any] = MicroBatcher(
            self._run_batch,
            name=name,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_s,
            max_queue=settings.max_queue,
            observer=metrics.for_model(name),
        )

    def _run_batch(self, items: list[Item]) -> list[dict[str, Any] | ModelDeckError]:
        """Runs on the model thread: forward once, then postprocess each item on its own.

        A postprocess failure becomes that item's error instead of failing the whole batch,
        so the batcher's bisection (which reruns forward) is kept for forward failures.
        """
        raws = self.task.forward([item.encoded for item in items])
        outputs: list[dict[str, Any] | ModelDeckError] = []
        for raw, item in zip(raws, items, strict=True):
            try:
                outputs.append(self.task.postprocess(raw, item.encoded, item.options).to_dict())
            except ModelDeckError as exc:
                outputs.append(exc)
        return outputs

    async def start(self) -> None:
        await self.batcher.start()
        self.metrics.model_ready.labels(self.name).set(1)

    async def stop(self) -> None:
        self.metrics.model_ready.labels(self.name).set(0)
        await self.batcher.stop(drain=True)
        self.task.close()

    def preprocess_all(self, inputs: Sequence[Any], options: Any) -> list[Any | InputError]:
        """Encode each input; a bad input becomes its own error and the others go on."""
        encoded: list[Any | InputError] = []
        for raw in inputs:
            try:
                encoded.append(self.task.preprocess(raw, options))
            except InputError as exc:
                encoded.append(exc)
        return encoded

    async def submit(self, encoded: Any, options: Any, deadline: float) -> dict[str, Any]:
        """Answer one encoded input through the batcher; ``deadline`` is in ``time.monotonic`` seconds."""
        output = await self.batcher.submit(Item(encoded, options), deadline=deadline)
        if isinstance(output, ModelDeckError):
            raise output
        return output  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        info = self.task.info
        return {
            "name": self.name,
            "task": self.task.name,
            "model": info.name,
            "version": info.version,
            "runtime": info.runtime,
            "license": info.license,
        }

    def detail(self) -> dict[str, Any]:
        stats = self.batcher.stats
        return {
            **self.describe(),
            **self.task.describe(),
            "batching": {
                "max_batch_size": self.settings.max_batch_size,
                "max_wait_ms": self.settings.max_wait_ms,
                "max_queue": self.settings.max_queue,
                "queue_depth": self.batcher.depth,
                "stats": _plain(stats),
            },
        }


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


def monotonic() -> float:
    return time.monotonic()
