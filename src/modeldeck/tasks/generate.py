"""Text generation and chat with causal language models: sampling, stops, streaming and batched decoding.

Every row of a batch carries its own options (temperature, top-k, top-p, repetition penalty,
stops, seed, length), so requests with different options still share one left-padded batch.
Text is decoded incrementally: a piece is handed out only once it can no longer change, which
means never half a UTF-8 character and never the start of a stop sequence; so the pieces of a
stream join into exactly the text of the non-streamed result.

Reproducibility: a request with a ``seed`` samples from its own ``torch.Generator``, so its random
draws never depend on the other requests in its batch. Its tokens repeat exactly when its logits
do: always for the same call run alone; in a batch, left padding changes the shapes of the matrix
products and float rounding may in principle move a near-tie (not observed on CPU float32 in the
tests, which check batched against one-by-one output).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, TypeVar

from pydantic import Field, field_validator

from ..errors import ConfigError, InputError, InputTooLargeError, InputTypeError, OptionError, OptionFix
from ..types import ModelInfo
from ._backend import BackendBase
from .base import Options, ResT, Task, check_surrogates, check_text
from .results import _pyarrow

if TYPE_CHECKING:
    import pyarrow as pa

    from ..runtimes.causal_lm import CausalLMRuntime, Sampling

__all__ = [
    "ChatOptions",
    "ChatResult",
    "ChatTask",
    "GenerateOptions",
    "GenerateTask",
    "Generation",
    "Sink",
    "TextStream",
]

#: ``max_new_tokens`` when the call does not say: this many, or what is left of the model's window.
DEFAULT_MAX_NEW_TOKENS = 128
#: No request may ask for more, whatever the model's window.
MAX_NEW_TOKENS = 100_000
ROLES = ("system", "user", "assistant")


class GenerateOptions(Options):
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NEW_TOKENS,
        description=f"most tokens to generate (default: {DEFAULT_MAX_NEW_TOKENS}, or what fits in the window)",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=100.0, description="0 picks the likeliest token (greedy)")
    top_k: int | None = Field(default=None, ge=1, description="sample among the k likeliest tokens only")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="sample within this much probability mass")
    repetition_penalty: float = Field(default=1.0, gt=0.0, le=100.0, description=">1 discourages repeating tokens")
    stop: tuple[str, ...] = Field(default=(), max_length=16, description="end when the text contains one of these")
    seed: int | None = Field(default=None, ge=0, lt=2**63, description="seed for reproducible sampling")
    truncate: Literal["none", "left"] = Field(
        default="none", description="'left' drops the oldest prompt tokens when the prompt does not fit"
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("stop")
    @classmethod
    def _non_empty_stops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return value


class ChatOptions(GenerateOptions):
    system: str | None = Field(default=None, description="system prompt, used when the messages have none")
    chat_template: str | None = Field(default=None, description="Jinja chat template overriding the model's")


@dataclass(frozen=True, slots=True)
class Generation:
    """Generated text (without the prompt and without a matched stop sequence) and why it ended."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("text", pa.string()), ("finish_reason", pa.string()), ("prompt_tokens", pa.int64()),
             ("completion_tokens", pa.int64())]
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Generation:
        return cls(
            text=str(data["text"]),
            finish_reason=str(data["finish_reason"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
        )


@dataclass(frozen=True, slots=True)
class ChatResult:
    """The assistant's reply ``{"role": "assistant", "content": ...}`` (read-only) and token counts."""

    message: Mapping[str, str]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", MappingProxyType(dict(self.message)))

    @property
    def content(self) -> str:
        return self.message["content"]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        message = pa.struct([("role", pa.string()), ("content", pa.string())])
        return pa.struct(
            [("message", message), ("finish_reason", pa.string()), ("prompt_tokens", pa.int64()),
             ("completion_tokens", pa.int64())]
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": dict(self.message),
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatResult:
        message = data["message"]
        return cls(
            message={"role": str(message["role"]), "content": str(message["content"])},
            finish_reason=str(data["finish_reason"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
        )


class Sink(Protocol):
    """Receives one request's text pieces as they are generated (on the model thread).

    ``emit`` gets a piece after every decoding step (``""`` when nothing new is final yet) and
    returns False when nobody wants more: that row then stops with finish reason "cancelled".
    """

    def emit(self, piece: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Prompt:
    ids: tuple[int, ...]
    sampling: Sampling
    max_new_tokens: int
    stops: tuple[str, ...]
    sink: Sink | None = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class _Raw:
    text: str
    finish_reason: str
    completion_tokens: int


class _Row:
    """The decoding state of one request: its tokens, the text already handed out, and why it ended."""

    def __init__(self, prompt: _Prompt, runtime: CausalLMRuntime) -> None:
        self.prompt = prompt
        self.runtime = runtime
        self.ids: list[int] = []
        self.count = 0
        self.emitted = ""
        self.finish: str | None = None

    def push(self, token: int) -> str:
        """Take the next token; the text that became final with it (maybe ``""``)."""
        self.count += 1
        if token in self.runtime.eos_ids:
            self.finish = "stop"
            return self._take(self.runtime.decode(self.ids))
        self.ids.append(token)
        full = self.runtime.decode(self.ids)
        stops = self.prompt.stops
        if stops:
            found = [at for at in (full.find(s) for s in stops) if at >= 0]
            if found:
                self.finish = "stop"
                return self._take(full[: max(min(found), len(self.emitted))])
        if self.count >= self.prompt.max_new_tokens:
            self.finish = "length"
            return self._take(full)
        # Hold back what may still change: half a UTF-8 character, or the start of a stop sequence.
        safe = full.rstrip("\ufffd")
        hold = max((k for s in stops for k in range(1, len(s)) if safe.endswith(s[:k])), default=0)
        return self._take(safe[: len(safe) - hold], final=False)

    def _take(self, text: str, *, final: bool = True) -> str:
        if len(text) <= len(self.emitted) or (not final and not text.startswith(self.emitted)):
            return ""
        piece = text[len(self.emitted) :]
        self.emitted += piece
        return piece

    def raw(self) -> _Raw:
        return _Raw(self.emitted, self.finish or "cancelled", self.count)


class TextStream(Iterator[str]):
    """Text pieces of one generation as they are decoded; ``result`` is set once it is exhausted."""

    def __init__(self, task: CausalLMTask[Any, Any], encoded: _Prompt, options: Any) -> None:
        self._task = task
        self._encoded = encoded
        self._options = options
        self._steps = task._generate([encoded], set())
        self.result: Any = None

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        while True:
            try:
                _, piece = next(self._steps)
            except StopIteration as done:
                if self.result is None:
                    self.result = self._task.postprocess(done.value[0], self._encoded, self._options)
                raise StopIteration from None
            if piece:
                return piece

    def close(self) -> None:
        """Stop generating and free the decoding state (tokens are only decoded as the stream is read)."""
        self._steps.close()


GenOptT = TypeVar("GenOptT", bound=GenerateOptions)


class CausalLM(BackendBase):
    """A Hugging Face causal language model with its tokenizer (``CausalLMRuntime``)."""

    runtime: CausalLMRuntime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.causal_lm import CausalLMRuntime

        return cls(CausalLMRuntime.load(info.path, device=device))


class CausalLMTask(Task[_Prompt, _Raw, ResT, GenOptT]):
    """What generate and chat share: prompts within the window, batched decoding, streaming."""

    #: The server may hand ``run_batch`` items a third element, a ``Sink`` for streamed pieces.
    supports_streaming: ClassVar[bool] = True
    runtime: CausalLMRuntime

    def __init__(self, info: ModelInfo, backend: CausalLM | None = None, **kwargs: Any) -> None:
        self.generated_tokens = 0  # every token decoded by this task, for tests and monitoring
        super().__init__(info, backend, **kwargs)

    @property
    def window(self) -> int:
        return self.runtime.max_positions

    def check_options(self, options: GenOptT) -> GenOptT:
        if options.max_new_tokens is not None and options.max_new_tokens >= self.window:
            raise OptionError(
                f"{self.name}: max_new_tokens={options.max_new_tokens} does not fit the model's window "
                f"of {self.window} tokens (prompt included)",
                hint=f"ask for at most {self.window - 1} new tokens, fewer for longer prompts",
            )
        return options

    # -- stages ------------------------------------------------------------------------------

    def preprocess(self, raw: Any, options: GenOptT) -> _Prompt:
        text = check_text(raw, max_chars=self.max_text_chars, field="prompt")
        return self._prompt(self.runtime.encode(text), options)

    def _prompt(self, ids: list[int], options: GenerateOptions) -> _Prompt:
        from ..runtimes.causal_lm import Sampling

        window = self.window
        wanted = options.max_new_tokens
        room = window - len(ids)
        max_new = wanted if wanted is not None else min(DEFAULT_MAX_NEW_TOKENS, room)
        if max_new < 1 or len(ids) + max_new > window:
            if options.truncate != "left":
                ask = f"max_new_tokens={max_new}" if wanted is not None else "at least one new token"
                raise InputTooLargeError(
                    f"the prompt has {len(ids)} tokens; with {ask} it needs {len(ids) + max(max_new, 1)} "
                    f"positions, but the model's window is {window}",
                    hint="shorten the prompt, lower max_new_tokens, or pass truncate='left' to drop its oldest tokens",
                )
            if wanted is None:
                max_new = min(DEFAULT_MAX_NEW_TOKENS, window // 2)
            ids = ids[len(ids) - (window - max_new) :]
        sampling = Sampling(
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            repetition_penalty=options.repetition_penalty,
            seed=options.seed,
        )
        return _Prompt(tuple(ids), sampling, max_new, options.stop)

    def forward(self, batch: Sequence[_Prompt]) -> list[_Raw]:
        cancelled: set[int] = set()
        steps = self._generate(batch, cancelled)
        while True:
            try:
                row, piece = next(steps)
            except StopIteration as done:
                return list(done.value)
            sink = batch[row].sink
            if sink is not None and not sink.emit(piece):
                cancelled.add(row)

    # -- decoding ----------------------------------------------------------------------------

    def _generate(self, batch: Sequence[_Prompt], cancelled: set[int]) -> Generator[tuple[int, str], None, list[_Raw]]:
        """Decode ``batch``; after each step yields ``(row, piece)`` for every active row.

        The consumer may add rows to ``cancelled`` between yields; they end at the next step.
        """
        rows = [_Row(prompt, self.runtime) for prompt in batch]
        decoder = self.runtime.decoder([p.ids for p in batch], [p.sampling for p in batch])
        while decoder.rows:
            tokens = decoder.step()
            self.generated_tokens += len(tokens)
            for index, token in zip(decoder.rows, tokens, strict=True):
                yield index, rows[index].push(token)
            for index in cancelled:
                if rows[index].finish is None:
                    rows[index].finish = "cancelled"
            decoder.keep([i for i in decoder.rows if rows[i].finish is None])
        return [row.raw() for row in rows]

    def stream(self, inputs: Any, /, **options: Any) -> TextStream:
        """Generate for one input, yielding text pieces as they are decoded (see ``TextStream``)."""
        opts = self.parse_options(options)
        return TextStream(self, self.preprocess(inputs, opts), opts)

    def attach_sink(self, encoded: _Prompt, sink: Sink) -> _Prompt:
        return dataclasses.replace(encoded, sink=sink)

    def can_retry_alone(self, batch: Sequence[_Prompt]) -> bool:
        # Text already streamed cannot be taken back, so a failed batch with a streaming row fails whole.
        return all(enc.sink is None for enc in batch)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "window": self.window, "streaming": True}


def _messages(raw: Any, max_chars: int) -> list[dict[str, str]]:
    """Validate a conversation: a non-empty list of ``{"role", "content"}`` with known roles and str content."""
    if isinstance(raw, Mapping) and "messages" in raw:
        raw = raw["messages"]
    if not isinstance(raw, (list, tuple)):
        raise InputTypeError(
            f"a chat input must be a list of messages, got {type(raw).__name__}",
            hint='send [{"role": "user", "content": "Hi"}]',
        )
    if not raw:
        raise InputTypeError(
            "the conversation has no messages", hint='send at least [{"role": "user", "content": ...}]'
        )
    messages: list[dict[str, str]] = []
    total = 0
    for i, message in enumerate(raw):
        if not isinstance(message, Mapping):
            raise InputTypeError(
                f"messages[{i}] must be an object with 'role' and 'content', got {type(message).__name__}",
                hint='write each message as {"role": "user", "content": "..."}',
            )
        for key in ("role", "content"):
            if key not in message:
                raise InputTypeError(f"messages[{i}] has no {key!r}", hint='each message needs "role" and "content"')
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise InputTypeError(
                f"messages[{i}]['role'] must be one of {', '.join(ROLES)}, got {role!r}",
                hint="use system, user or assistant",
            )
        if not isinstance(content, str):
            raise InputTypeError(
                f"messages[{i}]['content'] must be a string, got {type(content).__name__}",
                hint="send the message text as a string",
            )
        check_surrogates(content, f"messages[{i}]['content']")
        total += len(content)
        messages.append({"role": role, "content": content})
    if total > max_chars:
        raise InputTooLargeError(
            f"the conversation has {total:,} characters, more than the limit of {max_chars:,}",
            hint="drop old messages, or raise MODELDECK_MAX_TEXT_CHARS",
        )
    return messages


def _is_conversation(inputs: Any) -> bool:
    return isinstance(inputs, Mapping) or (
        isinstance(inputs, (list, tuple)) and not any(isinstance(m, (list, tuple)) for m in inputs)
    )


class GenerateTask(CausalLMTask[Generation, GenerateOptions]):
    name = "generate"
    result_type: ClassVar[type] = Generation
    options_type = GenerateOptions

    def postprocess(self, raw: _Raw, encoded: _Prompt, options: GenerateOptions) -> Generation:
        return Generation(raw.text, raw.finish_reason, len(encoded.ids), raw.completion_tokens)


class ChatTask(CausalLMTask[ChatResult, ChatOptions]):
    """Chat with a causal LM through its chat template: a list of messages in, the assistant's reply out.

    ``chat(messages)`` answers one conversation; ``chat([messages, messages])`` a batch of them.
    """

    name = "chat"
    result_type: ClassVar[type] = ChatResult
    options_type = ChatOptions

    def __init__(self, info: ModelInfo, backend: CausalLM | None = None, **kwargs: Any) -> None:
        self.template: str | None = None
        if backend is not None:
            card_template = info.card.get("chat_template")
            self.template = card_template if isinstance(card_template, str) else backend.runtime.chat_template
        super().__init__(info, backend, **kwargs)
        if backend is not None and self.template is None and self.default_options.chat_template is None:
            python = "modeldeck.load('chat', model=..., chat_template='{% for m in messages %}...{% endfor %}')"
            raise ConfigError(
                f"model {info.name!r} has no chat template, so the chat task cannot build its prompts",
                hint=f"pass one when loading: {python}, set 'chat_template' in the model's catalog card, or save "
                "the tokenizer with a chat_template; plain text generation works with the 'generate' task",
                fix=OptionFix("chat_template", None, python),
            )

    def check_options(self, options: ChatOptions) -> ChatOptions:
        options = super().check_options(options)
        template = options.chat_template
        if template is not None and self.runtime is not None:
            try:
                self.runtime.render_chat([{"role": "user", "content": "hi"}], template)
            except Exception as exc:
                raise OptionError(
                    f"chat: the chat_template does not render ({type(exc).__name__}: {exc})",
                    hint="give a Jinja template over 'messages' (each with 'role' and 'content')",
                ) from None
        return options

    def preprocess(self, raw: Any, options: ChatOptions) -> _Prompt:
        messages = _messages(raw, self.max_text_chars)
        if options.system is not None and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": options.system})
        template = options.chat_template or self.template
        try:
            text = self.runtime.render_chat(messages, template)
        except Exception as exc:
            raise InputError(
                f"the chat template could not render these messages ({type(exc).__name__}: {exc})",
                hint="some templates require alternating user/assistant turns or no system message",
            ) from None
        # The template writes the special tokens it wants (BOS included), so none are added here.
        return self._prompt(self.runtime.encode(text, special_tokens=False), options)

    def postprocess(self, raw: _Raw, encoded: _Prompt, options: ChatOptions) -> ChatResult:
        return ChatResult(
            {"role": "assistant", "content": raw.text}, raw.finish_reason, len(encoded.ids), raw.completion_tokens
        )

    def call_inputs(self, args: tuple[Any, ...], options: dict[str, Any]) -> tuple[list[Any], bool, dict[str, Any]]:
        """One conversation (a list of messages) gives one reply; a list of conversations, a list."""
        if len(args) != 1:
            return super().call_inputs(args, options)  # the error for a wrong argument count
        if _is_conversation(args[0]):
            return [args[0]], True, options
        return list(args[0]), False, options
