"""What one request may cost, checked before it is queued: body size, inputs per request, text and image size.

The default limits per task are measured so that no input within them holds a model for more
than a few seconds: worker CPU for the largest allowed input, worst case (one token per
character of text), on this project's two-core machine; see docs/serving.md for the figures and
the command. A model's own ``MODELDECK_MAX_REQUEST_CHARS`` / ``MODELDECK_MAX_REQUEST_PIXELS``
entry replaces its default; ``MODELDECK_MAX_TEXT_CHARS`` and ``MODELDECK_MAX_IMAGE_PIXELS`` cap them all.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import InputTooLargeError, InputTypeError
from ..images import check_image
from ..tasks.base import check_text
from .errors import error_body

__all__ = ["TASK_IMAGE_PIXELS", "TASK_TEXT_CHARS", "BodyLimitMiddleware", "InputLimits", "check_count"]

#: Default longest text per input where the cost grows with the text. Worst case (one token per
#: character), worker CPU: ner 2.7 s and parse 3.2 s for 40,000 characters, embed 4.0 s for 10,000
#: (``python benchmarks/request_cost.py``).
TASK_TEXT_CHARS: Mapping[str, int] = {"embed": 10_000, "ner": 40_000, "parse": 40_000}
#: Default largest image per input for the dlib face tasks (HOG: about 0.4 s of CPU per megapixel;
#: face-verify reads two images).
TASK_IMAGE_PIXELS: Mapping[str, int] = {"face-detect": 8_000_000, "face-embed": 8_000_000, "face-verify": 4_000_000}


class InputLimits:
    """The checks one served model runs on each input before it is queued."""

    def __init__(self, name: str, task: str, input_kind: str, settings: Settings) -> None:
        chars = settings.request_chars(name)
        if chars is None:
            chars = TASK_TEXT_CHARS.get(task, settings.max_text_chars)
        self.max_chars = min(chars, settings.max_text_chars)
        pixels = settings.request_pixels(name)
        if pixels is None:
            pixels = TASK_IMAGE_PIXELS.get(task, settings.max_image_pixels)
        self.max_pixels = min(pixels, settings.max_image_pixels)
        self.input_kind = input_kind
        self._name = name
        self._hint = f"split the text, or raise MODELDECK_MAX_REQUEST_CHARS={name}=N (now {self.max_chars:,})"

    def check(self, raw: Any) -> None:
        """Raise the ``InputError`` that the model would give for this input's type or size."""
        if self.input_kind == "image":
            self._image(raw)
        elif self.input_kind == "image-pair":
            if isinstance(raw, Mapping) and set(raw) == {"a", "b"}:
                pair = [raw["a"], raw["b"]]
            elif isinstance(raw, (list, tuple)) and len(raw) == 2:
                pair = list(raw)
            else:
                got = f"a sequence of {len(raw)}" if isinstance(raw, (list, tuple)) else type(raw).__name__
                raise InputTypeError(
                    f"this model compares a pair of images, got {got}",
                    hint='send [image_a, image_b] or {"a": ..., "b": ...}',
                )
            for image in pair:
                self._image(image)
        elif isinstance(raw, (str, bytes, bytearray)):
            text = check_text(raw, max_chars=sys.maxsize)  # type, UTF-8, empty; the limit is this model's
            if len(text) > self.max_chars:
                raise self._too_long(len(text))
        elif isinstance(raw, (Mapping, list)):
            # Structured inputs (qa's question and context, chat messages): the model checks their
            # shape; here only their total text, which is what their cost grows with.
            total = _text_chars(raw)
            if total > self.max_chars:
                raise self._too_long(total)
        else:
            raise InputTypeError(f"input must be a string, got {type(raw).__name__}", hint="send the text as a string")

    def _image(self, raw: Any) -> None:
        try:
            check_image(raw, max_pixels=self.max_pixels)
        except InputTooLargeError as exc:
            raise InputTooLargeError(
                exc.message, hint=f"downscale the image, or raise MODELDECK_MAX_REQUEST_PIXELS={self._name}=N"
            ) from None

    def _too_long(self, chars: int) -> InputTooLargeError:
        return InputTooLargeError(
            f"input has {chars:,} characters, more than this model's limit of {self.max_chars:,}", hint=self._hint
        )


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_text_chars(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_text_chars(v) for v in value)
    return 0


def check_count(model: str, count: int, settings: Settings) -> None:
    """A request with more inputs than the queue can ever hold would never be answered: 413, at once."""
    if count > settings.max_queue:
        raise InputTooLargeError(
            f"the request has {count:,} inputs, more than model {model!r} can ever queue ({settings.max_queue:,})",
            hint=f"send at most {settings.max_queue:,} inputs per request, or raise MODELDECK_MAX_QUEUE",
        )


class BodyLimitMiddleware:
    """Answers 413 when Content-Length or the streamed body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> InputTooLargeError:
        return InputTooLargeError(
            f"the request body is larger than the limit of {self.max_bytes:,} bytes",
            hint="send fewer or smaller inputs per request, or raise MODELDECK_MAX_BODY_BYTES",
        )

    async def _reject(self, send: Send) -> None:
        from pydantic_core import to_json

        body = to_json(error_body(self._error()))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._reject(send)


class _BodyTooLarge(BaseException):
    """Raised inside receive() to unwind the app when a streamed body outgrows the limit.

    A BaseException so that body parsers which turn any Exception into a 400 let it through.
    """
