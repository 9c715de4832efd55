"""The base of every image task: paths are read at the call's edge, every input is decoded the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import ModelDeckError
from ..images import Image, load_image, resolve_paths
from .base import EncT, InputKind, OptT, RawT, ResT, Task

__all__ = ["ImageTask"]


class ImageTask(Task[EncT, RawT, ResT, OptT]):
    """A task whose inputs are images (see ``modeldeck.images``).

    ``predict``, ``predict_each`` and ``__call__`` accept file paths, because they run in the
    caller's process; ``run_batch``, which the server and the batch jobs use, does not: a string
    there is base64, so a client can never make the server read its files.
    """

    input_kind: ClassVar[InputKind] = "image"

    def decode(self, raw: Any) -> Image:
        return load_image(raw, max_pixels=self.max_image_pixels)

    def predict(self, inputs: Sequence[Any], options: OptT | None = None) -> list[ResT]:
        return super().predict(resolve_paths(list(inputs)), options)

    def predict_each(self, inputs: Sequence[Any], options: OptT | None = None) -> list[ResT | ModelDeckError]:
        # One unreadable path must not fail the others: it travels as its error and fails alone.
        resolved: list[Any] = []
        for raw in inputs:
            try:
                resolved.extend(resolve_paths([raw]))
            except ModelDeckError as exc:
                resolved.append(_Failed(exc))
        return super().predict_each(resolved, options)

    def preprocess(self, raw: Any, options: OptT) -> EncT:
        if isinstance(raw, _Failed):
            raise raw.error
        return self.prepare(self.decode(raw), options)

    def prepare(self, image: Image, options: OptT) -> EncT:
        """Encode one decoded image for ``forward`` (resize, normalise); the default keeps the image."""
        return image  # type: ignore[return-value]


class _Failed:
    """A path that could not be read, carried to ``preprocess`` so it fails alone."""

    __slots__ = ("error",)

    def __init__(self, error: ModelDeckError) -> None:
        self.error = error
