"""What ``--models`` names: one ``ModelSpec`` per served model, and how a spec becomes a loaded task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    "VariantChoice",
    "WorkerGroup",
    "group_specs",
    "load_spec",
    "parse_specs",
    "prefer_variant",
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
    """Load one deck entry; its served name (the alias) picks its ONNX Runtime session options."""
    from .._api import load

    session = settings.onnx_session(spec.alias)
    if spec.task and spec.model:
        return load(spec.task, model=spec.model, settings=settings, onnx_session=session)
    return load(spec.task or spec.model or spec.alias, settings=settings, onnx_session=session)


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
class VariantChoice:
    """A deck entry served by a verified variant in place of the model it names (``MODELDECK_PREFER_VARIANT``)."""

    served: str  # NAME@onnx
    preferred_over: str  # NAME@VERSION, what the entry resolves to without the preference

    def to_dict(self) -> dict[str, str]:
        return {"served": self.served, "preferred_over": self.preferred_over, "setting": "MODELDECK_PREFER_VARIANT"}


def prefer_variant(spec: ModelSpec, settings: Settings) -> tuple[ModelSpec, VariantChoice | None]:
    """The entry to serve for ``spec`` under ``settings.prefer_variant``, and the choice made (None: unchanged).

    With ``onnx``, an entry that names no version (``embed``, ``ner:tickets``, ``all-MiniLM-L6-v2``)
    is served by its model's ``NAME@onnx`` when that is installed and its card says ``modeldeck
    optimize`` verified it as an fp32 variant of exactly the version the entry resolves to, for the
    same task. An int8 variant is never chosen, and an entry that names a version is never changed.
    Blocking: it reads the store.
    """
    if settings.prefer_variant != "onnx" or (spec.model is not None and "@" in spec.model):
        return spec, None
    original = resolve_spec(spec, settings)
    if original is None or original.runtime == "onnxruntime":
        return spec, None
    task = spec.task or original.task
    served = f"{original.name}@onnx"
    try:
        from ..store import ModelStore

        variant = ModelStore(settings).resolve(served, task=task, auto_pull=False)
    except ModelDeckError:
        return spec, None
    if not _verified_fp32(variant, f"{original.name}@{original.version}", task):
        return spec, None
    choice = VariantChoice(served=served, preferred_over=f"{original.name}@{original.version}")
    return ModelSpec(spec.alias, task, served), choice


def _verified_fp32(variant: ModelInfo, of: str, task: str) -> bool:
    """Whether ``variant``'s card (``optimizing._optimize._store`` writes it) shows a verified fp32 export of ``of``."""
    card = variant.card.get("variant")
    return (
        variant.runtime == "onnxruntime"
        and isinstance(card, Mapping)
        and card.get("kind") == "fp32"
        and card.get("of") == of
        and card.get("task") == task
        and bool(card.get("verified_on"))
    )


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
