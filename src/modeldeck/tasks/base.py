"""The shape every task shares: options, three stages, and calling on one input or a list."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import (
    EmptyInputError,
    InferenceError,
    InputDecodeError,
    InputError,
    InputTooLargeError,
    InputTypeError,
    InvalidTextError,
    ModelDeckError,
    OptionError,
    UnknownNameError,
    did_you_mean,
)
from ..images import DEFAULT_MAX_IMAGE_PIXELS
from ..types import ModelInfo, OnnxSessionOptions, Result
from ._backend import Backend, BackendBase

if TYPE_CHECKING:
    from ..runtimes.base import Runtime

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_TEXT_CHARS",
    "InputKind",
    "Options",
    "Task",
    "TransformersHead",
    "check_surrogates",
    "check_text",
    "option_error",
    "unsupported_runtime",
]

DEFAULT_MAX_TEXT_CHARS = 1_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")

#: What one input of a task is; the server, the jobs and the CLI decode and route inputs by it.
InputKind = Literal["text", "image", "image-pair", "tensor"]

EncT = TypeVar("EncT")
RawT = TypeVar("RawT")
ResT = TypeVar("ResT", bound=Result)
OptT = TypeVar("OptT", bound="Options")


_PENDING = object()


class Options(BaseModel):
    """Base of per-call task options: frozen, validated at construction, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def option_error(task: str, options_type: type[Options], err: ValidationError) -> OptionError:
    valid = ", ".join(sorted(options_type.model_fields)) or "(none)"
    problems = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "options"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown option {where!r}{did_you_mean(where, options_type.model_fields)}")
        else:
            problems.append(f"option {where!r}: {item['msg']} (got {item.get('input')!r})")
    return OptionError(f"{task}: {'; '.join(problems)}", hint=f"valid options for {task}: {valid}")


def _inference_error(index: int, exc: Exception) -> ModelDeckError:
    if isinstance(exc, ModelDeckError):
        return exc
    return InferenceError(f"the model failed on input {index} ({type(exc).__name__}: {exc})")


def check_text(raw: object, *, max_chars: int = DEFAULT_MAX_TEXT_CHARS, field: str = "input") -> str:
    """Validate one text input: a non-empty str (UTF-8 bytes are decoded) within ``max_chars``."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputDecodeError(
                f"{field} is not valid UTF-8 (byte {exc.start}: {bytes(raw)[exc.start : exc.start + 1]!r})",
                hint="send text encoded as UTF-8",
            ) from None
    if not isinstance(raw, str):
        raise InputTypeError(f"{field} must be a string, got {type(raw).__name__}", hint="pass the text as a string")
    if not raw.strip():
        raise EmptyInputError(f"{field} is empty or only whitespace", hint="send at least one non-space character")
    if len(raw) > max_chars:
        raise InputTooLargeError(
            f"{field} has {len(raw):,} characters, more than the limit of {max_chars:,}",
            hint="split the text, or raise MODELDECK_MAX_TEXT_CHARS",
        )
    check_surrogates(raw, field)
    return raw


def check_surrogates(text: str, field: str = "input") -> None:
    """Refuse lone surrogates (``"\\ud800"``): JSON and Python allow them, no tokenizer or UTF-8 codec does."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise InvalidTextError(
            f"{field} holds a lone surrogate {found.group()!r} at character {found.start()} (not valid Unicode)",
            hint="encode the text as UTF-8 before sending it; a surrogate pair must be decoded into one character",
        )


def unsupported_runtime(task: str, info: ModelInfo, supported: Sequence[str]) -> UnknownNameError:
    """The error for a model whose runtime this task cannot drive; it lists the ones it can."""
    err = UnknownNameError(f"{task} runtime", info.runtime, supported)
    err.message = f"model {info.name!r} uses runtime {info.runtime!r}, which the {task} task does not support"
    return err


class Task(ABC, Generic[EncT, RawT, ResT, OptT]):
    """A loaded model behind one task contract.

    Subclasses set ``name`` and ``options_type`` and implement the three stages. ``forward``
    takes a batch of encoded items and returns exactly one raw output per item; it does no I/O
    and is the only stage the batcher runs on the model thread. The framework-dependent part
    lives in ``backend``, found by ``from_model`` under ``(name, info.runtime)`` in ``BACKENDS``.
    """

    name: ClassVar[str]
    options_type: ClassVar[type[Options]]
    #: The result class: ``to_dict``/``from_dict``/``arrow_type`` define the task's output schema.
    result_type: ClassVar[type]
    #: What one input is: the server, the jobs and the CLI decode and route inputs by it.
    input_kind: ClassVar[InputKind] = "text"
    #: Whether ``run_batch`` items may carry a third element, a sink for streamed pieces.
    supports_streaming: ClassVar[bool] = False
    #: Keyword arguments of ``from_model`` that go to the backend's ``load`` instead of becoming options.
    load_args: ClassVar[frozenset[str]] = frozenset()
    #: Items per ``forward`` call when the caller does not say.
    default_batch_size: ClassVar[int] = 32
    #: The loaded framework adapter (``backend.runtime``); None for pure-Python tasks.
    runtime: Any = None

    def __init__(
        self,
        info: ModelInfo,
        backend: Backend | None = None,
        *,
        batch_size: int | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        batch_size = self.default_batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise OptionError(f"batch_size must be >= 1, got {batch_size}")
        self.info = info
        self.backend = backend
        self.runtime = None if backend is None else backend.runtime
        self.batch_size = batch_size
        self.max_text_chars = max_text_chars
        self.max_image_pixels = max_image_pixels
        self.default_options: OptT = self._validate(options or {})

    @classmethod
    def from_model(
        cls,
        info: ModelInfo,
        *,
        device: str = "cpu",
        batch_size: int | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        onnx_session: OnnxSessionOptions | None = None,
        **options: Any,
    ) -> Self:
        """Load ``info`` through the backend registered for this task and its runtime.

        ``options`` become the default call options, except the task's ``load_args``, which go to
        the backend's ``load``. A backend's ``option_defaults`` apply unless the caller sets them.
        ``onnx_session`` reaches the backend (as ``session=``) only for a model of runtime
        ``onnxruntime``; the others' backends take no such argument, so it is ignored for them.
        """
        from ..runtimes import RUNTIMES
        from . import BACKENDS

        if (cls.name, info.runtime) not in BACKENDS:
            raise unsupported_runtime(cls.name, info, BACKENDS.runtimes(cls.name))
        if info.runtime not in RUNTIMES:  # a backend whose package forgot to register its runtime
            raise UnknownNameError("runtime", info.runtime, RUNTIMES.names())
        load_args = {key: options.pop(key) for key in cls.load_args & options.keys()}
        if onnx_session is not None and info.runtime == "onnxruntime":
            load_args["session"] = onnx_session
        backend = BACKENDS.get(cls.name, info.runtime).load(info, device=device, **load_args)
        try:
            return cls(
                info,
                backend,
                batch_size=batch_size,
                max_text_chars=max_text_chars,
                max_image_pixels=max_image_pixels,
                options={**backend.option_defaults, **options},
            )
        except BaseException:  # bad options, or a model this task cannot serve: release what was loaded
            backend.close()
            raise

    def _validate(self, options: Mapping[str, Any]) -> OptT:
        try:
            validated: OptT = self.options_type.model_validate(dict(options))  # type: ignore[assignment]
        except ValidationError as exc:
            raise option_error(self.name, self.options_type, exc) from None
        return self.check_options(validated)

    def check_options(self, options: OptT) -> OptT:
        """Checks that need the loaded model (for example known labels); raise ``OptionError``."""
        return options

    def parse_options(self, options: Mapping[str, Any] | None) -> OptT:
        """Per-call options layered over the defaults given at load time."""
        if not options:
            return self.default_options
        if not isinstance(options, Mapping):
            raise OptionError(f"{self.name}: options must be an object, got {type(options).__name__}")
        return self._validate({**self.default_options.model_dump(exclude_unset=True), **options})

    @abstractmethod
    def preprocess(self, raw: Any, options: OptT) -> EncT:
        """Validate and encode one input; raises an ``InputError`` naming what to fix."""

    @abstractmethod
    def forward(self, batch: Sequence[EncT]) -> list[RawT]:
        """Run the model on a batch; exactly one raw output per encoded item, in order."""

    @abstractmethod
    def postprocess(self, raw: RawT, encoded: EncT, options: OptT) -> ResT:
        """Turn one raw output into a typed, immutable result."""

    def predict(self, inputs: Sequence[Any], options: OptT | None = None) -> list[ResT]:
        """Run the three stages over ``inputs`` in batches of ``batch_size``, in order."""
        opts = self.default_options if options is None else options
        encoded = [self.preprocess(raw, opts) for raw in inputs]
        results: list[ResT] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            raws = self.forward(chunk)
            results.extend(self.postprocess(raw, enc, opts) for raw, enc in zip(raws, chunk, strict=True))
        return results

    def predict_each(self, inputs: Sequence[Any], options: OptT | None = None) -> list[ResT | ModelDeckError]:
        """Like ``predict``, but a bad input becomes its own error and every other input is answered."""
        opts = self.default_options if options is None else options
        return self.run_batch([(raw, opts) for raw in inputs])

    def run_batch(self, items: Sequence[tuple[Any, ...]]) -> list[ResT | ModelDeckError]:
        """Answer ``(input, options)`` or ``(input, options, sink)`` items: a result, or that input's own error.

        Inputs that fail preprocessing never reach the model; if a batch fails in ``forward`` its
        items are retried one by one so that only the failing ones carry the error, unless
        ``can_retry_alone`` says the batch cannot be run again. A sink (streaming tasks only)
        receives an item's output as it is produced.
        """
        outputs: list[ResT | ModelDeckError] = []
        encoded: list[tuple[int, EncT]] = []
        for index, (raw, opts, *rest) in enumerate(items):
            try:
                enc = self.preprocess(raw, opts)
            except InputError as exc:
                outputs.append(exc)
                continue
            sink = rest[0] if rest else None
            encoded.append((index, enc if sink is None else self.attach_sink(enc, sink)))
            outputs.append(_PENDING)  # type: ignore[arg-type]
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            for (index, enc), raw in self._forward_isolated(chunk, outputs):
                try:
                    outputs[index] = self.postprocess(raw, enc, items[index][1])
                except ModelDeckError as exc:
                    outputs[index] = exc
        return outputs

    def attach_sink(self, encoded: EncT, sink: Any) -> EncT:
        """Route an item's streamed output to ``sink``; only tasks that ``supports_streaming`` can."""
        raise InferenceError(f"the {self.name} task does not stream its output")

    def can_retry_alone(self, batch: Sequence[EncT]) -> bool:
        """Whether the items of a failed batch may be run again one by one to find the failing ones."""
        return True

    def _forward_isolated(
        self, chunk: list[tuple[int, EncT]], outputs: list[ResT | ModelDeckError]
    ) -> list[tuple[tuple[int, EncT], RawT]]:
        """Forward a chunk; when it fails, retry item by item and record the failing ones."""
        try:
            return list(zip(chunk, self.forward([enc for _, enc in chunk]), strict=True))
        except Exception as exc:
            if len(chunk) == 1 or not self.can_retry_alone([enc for _, enc in chunk]):
                for index, _ in chunk:
                    outputs[index] = _inference_error(index, exc)
                return []
        pairs = []
        for item in chunk:
            try:
                pairs.append((item, self.forward([item[1]])[0]))
            except Exception as exc:  # isolate the failing input, keep going
                outputs[item[0]] = _inference_error(item[0], exc)
        return pairs

    @overload
    def __call__(self, inputs: list[Any], /, **options: Any) -> list[ResT]: ...

    @overload
    def __call__(self, *inputs: Any, **options: Any) -> ResT: ...

    def __call__(self, *inputs: Any, **options: Any) -> ResT | list[ResT]:
        """One input gives one result; a list gives a list of results in the same order."""
        batch, single, options = self.call_inputs(inputs, options)
        results = self.predict(batch, self.parse_options(options))
        return results[0] if single else results

    def call_inputs(self, args: tuple[Any, ...], options: dict[str, Any]) -> tuple[list[Any], bool, dict[str, Any]]:
        """A call's arguments as ``(inputs, single, options)``: a task with other call forms overrides this."""
        if len(args) != 1:
            raise InputTypeError(
                f"{self.name} takes one input or a list of inputs, got {len(args)} positional arguments",
                hint="pass a list to run several inputs at once",
            )
        (inputs,) = args
        if isinstance(inputs, (list, tuple)):
            return list(inputs), False, options
        return [inputs], True, options

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` shows: the model and the options this task takes."""
        out: dict[str, Any] = {
            "task": self.name,
            "model": self.info.to_dict(),
            "options": self.options_type.model_json_schema(),
            "defaults": self.default_options.model_dump(mode="json"),
        }
        runtime = self.runtime
        if runtime is not None:
            out["runtime"] = {
                "name": runtime.name,
                "device": runtime.device,
                "memory_bytes": runtime.memory_bytes(),
                **(self.backend.runtime_details() if self.backend is not None else {}),
            }
        return out

    def close(self) -> None:
        """Release what the model holds."""
        if self.backend is not None:
            self.backend.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task={self.name!r} model={self.info.name!r} version={self.info.version!r}>"


class TransformersHead(BackendBase):
    """A task over one Hugging Face head (``TransformersRuntime``); subclasses name the ``head``."""

    #: The ``TransformersRuntime.load`` head ("question-answering", "seq2seq", ...).
    head: ClassVar[str]
    runtime: Runtime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.transformers import TransformersRuntime

        return cls(TransformersRuntime.load(info.path, head=cls.head, device=device))
