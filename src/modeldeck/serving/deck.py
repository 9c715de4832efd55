"""The served models: deck specs, and one deployment (task + batcher) per served name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from ..batching import MicroBatcher
from ..config import Settings
from ..errors import ModelDeckError, OptionError, ServiceError, ShuttingDownError, UnknownModelError
from ..tasks import TASKS
from ..tasks.base import Task
from .metrics import ServerMetrics

if TYPE_CHECKING:
    from .models import ServedModel

__all__ = ["Deck", "Deployment", "ModelSpec", "parse_specs"]

AnyTask = Task[Any, Any, Any, Any]


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


class Deployment:
    """One served model behind its batcher: items are ``(input, options)``, outputs JSON bytes or errors."""

    def __init__(self, name: str, model: ServedModel, settings: Settings, metrics: ServerMetrics) -> None:
        self.name = name
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.batcher: MicroBatcher[tuple[Any, Mapping[str, Any]], bytes | ModelDeckError] = MicroBatcher(
            model.run_batch,
            name=name,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_s,
            max_queue=settings.max_queue,
            observer=metrics.for_model(name),
        )

    async def start(self) -> None:
        await self.batcher.start()
        self.metrics.model_ready.labels(self.name).set(1)

    async def stop(self) -> None:
        self.metrics.model_ready.labels(self.name).set(0)
        await self.batcher.stop(drain=True)
        await run_in_threadpool(self.model.close)

    async def submit(self, raw: Any, options: Mapping[str, Any], deadline: float) -> bytes | ModelDeckError:
        """One input through the batcher; ``deadline`` is in ``time.monotonic`` seconds."""
        return await self.batcher.submit((raw, options), deadline=deadline)

    def describe(self) -> dict[str, Any]:
        info = self.model.info
        return {
            "name": self.name,
            "task": self.model.task,
            "model": info.name,
            "version": info.version,
            "runtime": info.runtime,
            "license": info.license,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.describe(),
            **self.model.describe(),
            "batching": {
                "max_batch_size": self.settings.max_batch_size,
                "max_wait_ms": self.settings.max_wait_ms,
                "max_queue": self.settings.max_queue,
                "queue_depth": self.batcher.depth,
                "stats": _plain(self.batcher.stats),
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


class Deck:
    """The deployments of one server and their loading state."""

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        self.specs = list(specs)
        self.deployments: dict[str, Deployment] = {}
        self.failed: dict[str, str] = {}
        self.shutting_down = False

    @property
    def ready(self) -> bool:
        return not self.shutting_down and len(self.deployments) == len(self.specs)

    def get(self, name: str) -> Deployment:
        if self.shutting_down:
            raise ShuttingDownError("the server is shutting down", hint="retry against another replica")
        deployment = self.deployments.get(name)
        if deployment is not None:
            return deployment
        names = [spec.alias for spec in self.specs]
        if name in names:
            if name in self.failed:
                raise ServiceError(f"model {name!r} failed to load: {self.failed[name]}")
            raise ServiceError(f"model {name!r} is still loading", hint="poll /readyz, then retry")
        raise UnknownModelError(f"no model named {name!r} is served here", hint=f"served models: {', '.join(names)}")
