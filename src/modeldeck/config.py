"""Settings read once from the environment and validated before anything starts."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError

__all__ = ["Settings"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{var} must be a boolean, got {raw!r}", hint="use 1/0, true/false, yes/no or on/off")


def _number(kind: Callable[[str], T], minimum: float, maximum: float | None = None) -> Callable[[str, str], T]:
    def parse(var: str, raw: str) -> T:
        try:
            value = kind(raw.strip())
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{var} must be {noun}, got {raw!r}") from None
        if math.isnan(value) or value < minimum or (maximum is not None and value > maximum):  # type: ignore[operator]
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigError(f"{var} must be {bounds}, got {raw!r}")
        return value

    return parse


def _parse_models(var: str, raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise ConfigError(f"{var} must name at least one model, got {raw!r}", hint="for example: ner,parse,embed")
    return names


def _parse_isolation(var: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("process", "thread"):
        raise ConfigError(f"{var} must be 'process' or 'thread', got {raw!r}")
    return value


def _parse_url(var: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest:
        raise ConfigError(f"{var} must be an http(s) URL, got {raw!r}", hint="for example: https://huggingface.co")
    return value


def _default_home() -> Path:
    return Path.home() / ".cache" / "modeldeck"


@dataclass(frozen=True)
class Settings:
    """Every knob modeldeck reads from the environment, with its variable name in ``metadata``."""

    home: Path = field(default_factory=_default_home, metadata={"env": "MODELDECK_HOME"})
    offline: bool = field(default=False, metadata={"env": "MODELDECK_OFFLINE", "parse": _parse_bool})
    host: str = field(default="127.0.0.1", metadata={"env": "MODELDECK_HOST"})
    port: int = field(default=8000, metadata={"env": "MODELDECK_PORT", "parse": _number(int, 0, 65535)})
    models: tuple[str, ...] = field(
        default=("ner", "parse", "embed", "face-detect", "face-verify"),
        metadata={"env": "MODELDECK_MODELS", "parse": _parse_models},
    )
    max_batch_size: int = field(default=32, metadata={"env": "MODELDECK_MAX_BATCH_SIZE", "parse": _number(int, 1)})
    max_wait_ms: float = field(
        default=10.0, metadata={"env": "MODELDECK_MAX_WAIT_MS", "parse": _number(float, 0, 60_000)}
    )
    max_queue: int = field(default=1024, metadata={"env": "MODELDECK_MAX_QUEUE", "parse": _number(int, 1)})
    request_timeout_s: float = field(
        default=30.0, metadata={"env": "MODELDECK_REQUEST_TIMEOUT_S", "parse": _number(float, 0.001)}
    )
    isolation: str = field(default="process", metadata={"env": "MODELDECK_ISOLATION", "parse": _parse_isolation})
    max_body_bytes: int = field(
        default=8 * 1024 * 1024, metadata={"env": "MODELDECK_MAX_BODY_BYTES", "parse": _number(int, 1024)}
    )
    max_text_chars: int = field(
        default=1_000_000, metadata={"env": "MODELDECK_MAX_TEXT_CHARS", "parse": _number(int, 1)}
    )
    # 50 MP admits an 8K photo and stops decompression bombs before their pixels are allocated.
    max_image_pixels: int = field(
        default=50_000_000, metadata={"env": "MODELDECK_MAX_IMAGE_PIXELS", "parse": _number(int, 64)}
    )
    #: SQLite face gallery served under /v1/gallery (empty: the gallery routes answer 404).
    gallery: str = field(default="", metadata={"env": "MODELDECK_GALLERY"})
    #: Folder whose document index is served under /v1/documents (empty: those routes answer 404).
    documents: str = field(default="", metadata={"env": "MODELDECK_DOCUMENTS"})
    #: A ``qa`` model that reads an answer out of the passages /v1/documents/ask finds (empty: passages only).
    documents_qa: str = field(default="", metadata={"env": "MODELDECK_DOCUMENTS_QA"})
    #: The Hugging Face Hub (or a mirror) that repo ids are pulled from; the hub's own variable.
    hf_endpoint: str = field(default="https://huggingface.co", metadata={"env": "HF_ENDPOINT", "parse": _parse_url})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``MODELDECK_*`` variables; ``overrides`` (already typed) win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            var = f.metadata["env"]
            if var in env:
                parse = f.metadata.get("parse")
                raw = env[var]
                if parse is not None:
                    values[f.name] = parse(var, raw)
                elif f.name == "home":
                    values[f.name] = Path(raw).expanduser() if raw.strip() else _default_home()
                else:
                    values[f.name] = raw
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}",
                hint=f"valid settings: {', '.join(f.name for f in fields(cls))}",
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        # Values given in code (CLI flags, tests) get the same checks as the environment.
        for f in fields(self):
            parse = f.metadata.get("parse")
            value = getattr(self, f.name)
            if parse is not None and not isinstance(value, (bool, tuple)):
                # Store the parsed value: a string override ("no", "8080") becomes its real type.
                object.__setattr__(self, f.name, parse(f"{f.metadata['env']} ({f.name})", str(value)))
        if not self.models:
            raise ConfigError("models must name at least one model", hint="for example: ner,parse,embed")
        if self.max_queue < self.max_batch_size:
            raise ConfigError(
                f"MODELDECK_MAX_QUEUE ({self.max_queue}) must be >= MODELDECK_MAX_BATCH_SIZE ({self.max_batch_size})",
                hint="a queue smaller than a batch could never fill one",
            )
        object.__setattr__(self, "home", Path(self.home))

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0
