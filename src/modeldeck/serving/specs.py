"""What ``--models`` names: one ``ModelSpec`` per served model, and how a spec becomes a loaded task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import ModelDeckError, OptionError
from ..tasks import TASKS
from ..tasks.base import Task

if TYPE_CHECKING:
    from .._api import Loader
    from ..types import ModelInfo

__all__ = [
    "AnyTask",
    "ModelSpec",
    "SpecLoader",
    "WorkerGroup",
    "group_specs",
    "load_spec",
    "parse_specs",
    "resolve_spec",
    "task_loader",
]

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


def resolve_spec(spec: ModelSpec, settings: Settings) -> ModelInfo | None:
    """The model ``load_spec`` would load, found without pulling or importing anything; None where it
    is not on this machine yet or not a model at all (its worker pulls it, or reports why)."""
    from ..store import ModelStore

    store = ModelStore(settings)
    try:
        if spec.task and spec.model:
            return store.resolve(spec.model, task=spec.task, auto_pull=False)
        name = spec.task or spec.model or spec.alias
        return store.resolve(name, task=name if name in TASKS else None, auto_pull=False)
    except ModelDeckError:
        return None


@dataclass(frozen=True)
class WorkerGroup:
    """The specs one worker process serves, and the runtime of their model (None: not resolved)."""

    specs: tuple[ModelSpec, ...]
    runtime: str | None


def group_specs(specs: Sequence[ModelSpec], settings: Settings) -> list[WorkerGroup]:
    """One group per artifact, in the order of first mention.

    Specs share a worker when they resolve to the same model name, version, runtime and files
    (``ner`` and ``parse`` both name en_core_web_sm): one loaded artifact then answers each of
    their tasks. Every spec of a deck loads with the same settings (device, batch size, limits)
    and no arguments of its own, so the artifact is the whole identity. A spec that does not
    resolve here (a model still to pull, a typo) gets a worker of its own.
    """
    groups: dict[object, list[ModelSpec]] = {}
    runtimes: dict[object, str | None] = {}
    for spec in specs:
        info = resolve_spec(spec, settings)
        key: object = spec.alias if info is None else (info.name, info.version, info.runtime, str(info.path))
        groups.setdefault(key, []).append(spec)
        runtimes[key] = None if info is None else info.runtime
    return [WorkerGroup(tuple(group), runtimes[key]) for key, group in groups.items()]


#: Turns a spec into a task in the server's process; ``create_app(loader=...)`` takes one (tests do).
SpecLoader = Callable[[ModelSpec], AnyTask]


def task_loader(settings: Settings, loader: SpecLoader | None) -> Loader:
    """The server's way of loading a spec, as a ``modeldeck.Loader`` for code that loads by name (the gallery)."""

    def load(
        name_or_path: str,
        *,
        model: str | None = None,
        settings: Settings | None = settings,
        device: str = "cpu",
        batch_size: int | None = None,
    ) -> AnyTask:
        task = name_or_path if model is not None or name_or_path in TASKS else None
        spec = ModelSpec(name_or_path, task, model if model is not None else (None if task else name_or_path))
        return loader(spec) if loader is not None else load_spec(spec, settings or Settings.from_env())

    return load
