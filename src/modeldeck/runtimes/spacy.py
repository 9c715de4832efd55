"""spaCy adapter: load a pipeline directory keeping only the components a task needs, run ``pipe``."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NotFoundError
from ._shared import load_shared, sharing
from .base import import_framework

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = ["SpacyRuntime", "components_to_keep"]

# Components that let another component's model read their output (Tok2VecListener and friends).
_SHARED_ENCODERS = frozenset({"tok2vec", "transformer", "curated_transformer"})


def _upstreams(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "upstream" and isinstance(value, str):
                yield value
            else:
                yield from _upstreams(value)


def components_to_keep(
    pipeline: Sequence[str], components: Mapping[str, Mapping[str, Any]], factories: Collection[str]
) -> list[str]:
    """Names of the components whose factory is in ``factories``, plus the encoders they listen to."""
    keep = [name for name in pipeline if components.get(name, {}).get("factory") in factories]
    needed = set(keep)
    for name in keep:
        for upstream in _upstreams(components.get(name, {})):
            if upstream == "*":
                needed.update(n for n in pipeline if components.get(n, {}).get("factory") in _SHARED_ENCODERS)
            else:
                needed.add(upstream)
    return [name for name in pipeline if name in needed]


class SpacyRuntime:
    """A loaded spaCy ``Language``; spaCy models here run on the CPU."""

    name = "spacy"

    def __init__(self, nlp: Language, *, device: str = "cpu", active: Sequence[str] | None = None) -> None:
        """``active``: the components this runtime runs (default: every enabled one); the others stay
        loaded for another task that shares ``nlp`` and are disabled in ``pipe``."""
        self.nlp = nlp
        self.device = device
        self.active = tuple(nlp.pipe_names) if active is None else tuple(n for n in nlp.pipe_names if n in active)
        self._disabled = [name for name in nlp.pipe_names if name not in self.active]

    @classmethod
    def load(cls, path: str | Path, *, factories: Collection[str] | None = None, device: str = "cpu") -> SpacyRuntime:
        """Load the pipeline at ``path``; with ``factories``, exclude every component not needed for them."""
        if device != "cpu":
            raise ConfigError(f"the spacy runtime runs on 'cpu' only, got device {device!r}", hint="use device='cpu'")
        spacy = import_framework("spacy", package="spacy", extra="nlp", purpose="spaCy pipelines")
        path = Path(path)
        exclude: list[str] = []
        keep: list[str] | None = None
        if factories is not None:
            config = spacy.util.load_config(path / "config.cfg")
            pipeline = list(config["nlp"]["pipeline"])
            components = config["components"]
            keep = components_to_keep(pipeline, components, factories)
            if not any(components.get(n, {}).get("factory") in factories for n in keep):
                raise NotFoundError(
                    f"the spaCy pipeline at {str(path)!r} has no component of type {', '.join(sorted(factories))}",
                    hint=f"its components are: {', '.join(pipeline) or '(none)'}",
                )
            exclude = [name for name in pipeline if name not in keep]
        if sharing():  # one pipeline, every component loaded, for all the tasks of this worker
            nlp = load_shared("spacy", str(path.resolve()), lambda: spacy.load(path))
            return cls(nlp, device=device, active=keep)
        return cls(spacy.load(path, exclude=exclude), device=device)

    @property
    def max_length(self) -> int:
        return int(self.nlp.max_length)

    @property
    def pipe_names(self) -> list[str]:
        return list(self.active)

    def labels(self, factory: str) -> tuple[str, ...]:
        """Labels of every enabled component built by ``factory`` (for example ``"ner"``)."""
        labels: set[str] = set()
        for name in self.active:
            if self.nlp.get_pipe_meta(name).factory == factory:
                labels.update(getattr(self.nlp.get_pipe(name), "labels", ()))
        return tuple(sorted(labels))

    def pipe(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Doc]:
        return list(self.nlp.pipe(texts, batch_size=batch_size, disable=self._disabled))

    def memory_bytes(self) -> int | None:
        return None
