"""Settings read once from the environment and validated before anything starts."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError
from .types import GRAPH_LEVELS, GraphLevel, OnnxSessionOptions

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


def _parse_worker_start(var: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("forkserver", "spawn"):
        raise ConfigError(
            f"{var} must be 'forkserver' or 'spawn', got {raw!r}",
            hint="forkserver shares the imported libraries between workers; spawn starts each from scratch",
        )
    return value


def _parse_names(var: str, raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _per_model_of(
    value: Callable[[str], T | None], rule: str, example: str
) -> Callable[[str, str], tuple[tuple[str, T], ...]]:
    """A parser of ``V`` or ``V,NAME=V,...`` (a default for every model, overrides for named ones);
    ``value`` reads one ``V`` or answers None for a bad one."""

    def parse(var: str, raw: str) -> tuple[tuple[str, T], ...]:
        out: list[tuple[str, T]] = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            name, sep, text = part.rpartition("=")
            name = name.strip() if sep else "*"
            parsed = value(text.strip())
            if not name or parsed is None:
                raise ConfigError(
                    f"{var} must be {rule}, or V,NAME=V,... per served model, got {raw!r}",
                    hint=f"for example: {example}",
                )
            out.append((name, parsed))
        return tuple(out)

    return parse


def _milliseconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < math.inf else None  # NaN fails both comparisons


#: ``N`` or ``N,NAME=N,...``: a default for every model and overrides for named ones.
_parse_per_model = _per_model_of(_milliseconds, "a number >= 0", "1000 or 1000,embed=250")


def _thread_count(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) >= 1 else None


def _graph_level(text: str) -> GraphLevel | None:
    level = text.lower()
    return next((known for known in GRAPH_LEVELS if known == level), None)


def _parse_variant(var: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("", "onnx"):
        raise ConfigError(
            f"{var} must be 'onnx' or empty (off), got {raw!r}",
            hint="onnx: a deck entry without a version serves its verified fp32 ONNX variant (NAME@onnx) "
            "where `modeldeck optimize` made one",
        )
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
    #: Longest expected queue wait a request is admitted with (429 beyond it); per model with NAME=MS.
    max_queue_wait_ms: tuple[tuple[str, float], ...] = field(
        default=(("*", 1000.0),), metadata={"env": "MODELDECK_MAX_QUEUE_WAIT_MS", "parse": _parse_per_model}
    )
    #: Longest text a served model takes per input, checked before queueing (413 beyond it); per
    #: model with NAME=CHARS. Unset: each task's measured default (serving/limits.py), never above
    #: MODELDECK_MAX_TEXT_CHARS.
    max_request_chars: tuple[tuple[str, float], ...] = field(
        default=(), metadata={"env": "MODELDECK_MAX_REQUEST_CHARS", "parse": _parse_per_model}
    )
    #: Largest image (pixels) a served model takes per input, the same way; never above
    #: MODELDECK_MAX_IMAGE_PIXELS.
    max_request_pixels: tuple[tuple[str, float], ...] = field(
        default=(), metadata={"env": "MODELDECK_MAX_REQUEST_PIXELS", "parse": _parse_per_model}
    )
    #: Intra-op threads of each ONNX Runtime session, ``N`` or ``N,NAME=N`` per served model (none:
    #: one per CPU this process may use, at most 8).
    onnx_threads: tuple[tuple[str, int], ...] = field(
        default=(),
        metadata={
            "env": "MODELDECK_ONNX_THREADS",
            "parse": _per_model_of(_thread_count, "an integer >= 1", "4 or 2,embed=1"),
        },
    )
    #: ONNX Runtime's graph optimisation level, ``LEVEL`` or ``LEVEL,NAME=LEVEL`` per served model (none: all).
    onnx_graph_level: tuple[tuple[str, GraphLevel], ...] = field(
        default=(),
        metadata={
            "env": "MODELDECK_ONNX_GRAPH_LEVEL",
            "parse": _per_model_of(_graph_level, f"one of {', '.join(GRAPH_LEVELS)}", "all or all,embed=basic"),
        },
    )
    #: ``onnx``: a deck entry that names no version serves the model's verified fp32 ONNX variant
    #: (``NAME@onnx``, made by ``modeldeck optimize``) where one is installed; empty: off.
    prefer_variant: str = field(default="", metadata={"env": "MODELDECK_PREFER_VARIANT", "parse": _parse_variant})
    #: A worker process still on a batch this long after the last deadline in it is killed and restarted.
    worker_grace_s: float = field(default=5.0, metadata={"env": "MODELDECK_WORKER_GRACE_S", "parse": _number(float, 0)})
    #: How worker processes start: forked from a server process that preloaded the deck's libraries
    #: (``forkserver``, their pages shared by every worker), or each a fresh interpreter (``spawn``).
    worker_start: str = field(
        default="forkserver", metadata={"env": "MODELDECK_WORKER_START", "parse": _parse_worker_start}
    )
    #: A worker process whose resident memory passes this many MiB is killed and restarted (0: no limit).
    worker_max_rss_mb: int = field(
        default=3072, metadata={"env": "MODELDECK_WORKER_MAX_RSS_MB", "parse": _number(int, 0)}
    )
    #: Serve the models that loaded when others fail (default: the server exits with the error).
    allow_failed_models: bool = field(
        default=False, metadata={"env": "MODELDECK_ALLOW_FAILED_MODELS", "parse": _parse_bool}
    )
    #: Bearer keys accepted on every route but ``auth_exempt`` (none: no key is required).
    api_keys: tuple[str, ...] = field(
        default=(), repr=False, metadata={"env": "MODELDECK_API_KEYS", "parse": _parse_names}
    )
    #: A file with more keys, one per line (``#`` starts a comment).
    api_key_file: str = field(default="", metadata={"env": "MODELDECK_API_KEY_FILE"})
    #: Keys that may write to the gallery (none: any accepted key may).
    gallery_keys: tuple[str, ...] = field(
        default=(), repr=False, metadata={"env": "MODELDECK_GALLERY_KEYS", "parse": _parse_names}
    )
    #: Paths answered without a key (the playground's page and files hold no data; its API calls need one).
    auth_exempt: tuple[str, ...] = field(
        default=(
            "/healthz",
            "/readyz",
            "/v2/health/live",  # the Open Inference Protocol's probes
            "/v2/health/ready",
            "/metrics",
            "/v1/metrics",
            "/docs",
            "/openapi.json",
            "/docs/",
            "/",
            "/playground/",
        ),
        metadata={"env": "MODELDECK_AUTH_EXEMPT", "parse": _parse_names},
    )
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

    def max_queue_wait_s(self, model: str) -> float:
        """The admission limit of one served model: its own ``NAME=MS`` entry, else the default."""
        limits = dict(self.max_queue_wait_ms)
        return limits.get(model, limits.get("*", 1000.0)) / 1000.0

    def request_chars(self, model: str) -> int | None:
        """The text limit set for one served model (its ``NAME=`` entry, else ``*``), or None."""
        return _per_model(self.max_request_chars, model)

    def request_pixels(self, model: str) -> int | None:
        """The image limit set for one served model (its ``NAME=`` entry, else ``*``), or None."""
        return _per_model(self.max_request_pixels, model)

    def onnx_session(self, model: str) -> OnnxSessionOptions:
        """The ONNX Runtime session options of one served model: its ``NAME=`` entries, else ``*``."""
        threads, levels = dict(self.onnx_threads), dict(self.onnx_graph_level)
        return OnnxSessionOptions(
            threads=threads.get(model, threads.get("*")), graph_level=levels.get(model, levels.get("*", "all"))
        )


def _per_model(entries: tuple[tuple[str, float], ...], model: str) -> int | None:
    limits = dict(entries)
    value = limits.get(model, limits.get("*"))
    return None if value is None else int(value)
