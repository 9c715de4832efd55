"""face-verify: do two images show the same person? One face per image, embedded and compared.

An input is a pair: ``(img_a, img_b)`` / ``[img_a, img_b]``, or ``{"a": img_a, "b": img_b}``. Over
HTTP, ``{"inputs": [[a, b], [c, d]]}`` verifies two pairs and ``{"inputs": {"a": ..., "b": ...}}``
one. An image with no face, or several faces (unless ``largest``), makes that pair's outcome a
``NoFaceError`` / ``MultipleFacesError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, StrictBool

from ...errors import InputTypeError, ModelDeckError
from ...images import DEFAULT_MAX_IMAGE_PIXELS, Image, is_image_path, load_image, read_path
from ...types import ModelInfo
from ..base import InputKind, Options, Task
from ._embed import FaceEmbedOptions, FaceEmbedTask, Prepared, select_face
from ._embedders import FaceEmbedder, distance, match_confidence
from ._results import FaceEmbeddings, Verification

__all__ = ["FaceVerifyOptions", "FaceVerifyTask"]

_PAIR_HINT = 'send a pair: [image_a, image_b] or {"a": image_a, "b": image_b}'


class FaceVerifyOptions(FaceEmbedOptions):
    largest: StrictBool = Field(default=False, description="use the largest face of an image that holds several")
    match_threshold: float | None = Field(
        default=None, ge=0.0, description="distance at or below which the faces match; default: the model's threshold"
    )


@dataclass(frozen=True, slots=True)
class _Pair:
    a: Prepared
    b: Prepared


def _pair_parts(raw: Any) -> tuple[Any, Any]:
    if isinstance(raw, Mapping):
        if set(raw) != {"a", "b"}:
            keys = sorted(map(str, raw))
            raise InputTypeError(
                f"a face-verify input object needs exactly the keys 'a' and 'b', got {keys}", hint=_PAIR_HINT
            )
        return raw["a"], raw["b"]
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return raw[0], raw[1]
    got = f"a sequence of {len(raw)}" if isinstance(raw, (list, tuple)) else type(raw).__name__
    raise InputTypeError(f"a face-verify input must be a pair of images, got {got}", hint=_PAIR_HINT)


def _resolve(raw: Any) -> Any:
    """Read file paths inside a pair (the Python call's edge), like ``ImageTask`` does for single images."""
    try:
        a, b = _pair_parts(raw)
    except InputTypeError:
        return raw
    a, b = (read_path(x) if is_image_path(x) else x for x in (a, b))
    return {"a": a, "b": b}


class FaceVerifyTask(Task[_Pair, tuple[Any, Any], Verification, FaceVerifyOptions]):
    """Verification over a face-embed task: ``verify(a, b)``, ``verify((a, b))`` or ``verify([(a, b), ...])``."""

    name = "face-verify"
    input_kind: ClassVar[InputKind] = "image-pair"
    result_type: ClassVar[type] = Verification
    options_type: ClassVar[type[Options]] = FaceVerifyOptions

    load_args: ClassVar[frozenset[str]] = FaceEmbedTask.load_args
    default_batch_size: ClassVar[int] = FaceEmbedTask.default_batch_size
    backend: FaceEmbedder

    def __init__(
        self,
        info: ModelInfo,
        backend: FaceEmbedder,
        *,
        batch_size: int | None = None,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        **kwargs: Any,
    ) -> None:
        # Built first: option checks (in ``super().__init__``) are the embed task's own.
        self.embed = FaceEmbedTask(info, backend, batch_size=batch_size, max_image_pixels=max_image_pixels)
        super().__init__(info, backend, batch_size=batch_size, max_image_pixels=max_image_pixels, **kwargs)

    @property
    def model_id(self) -> str:
        return self.embed.model_id

    @property
    def metric(self) -> str:
        return self.embed.metric

    @property
    def threshold(self) -> float:
        return self.embed.threshold

    def check_options(self, options: FaceVerifyOptions) -> FaceVerifyOptions:
        self.embed.check_options(options)
        return options

    def _decode(self, raw: Any) -> Image:
        return load_image(raw, max_pixels=self.max_image_pixels)

    def preprocess(self, raw: Any, options: FaceVerifyOptions) -> _Pair:
        if isinstance(raw, _Unreadable):
            raise raw.error
        a, b = _pair_parts(raw)
        return _Pair(Prepared(self._decode(a), options), Prepared(self._decode(b), options))

    def forward(self, batch: Sequence[_Pair]) -> list[tuple[Any, Any]]:
        flat = self.embed.forward([p for pair in batch for p in (pair.a, pair.b)])
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(len(batch))]

    def postprocess(self, raw: tuple[Any, Any], encoded: _Pair, options: FaceVerifyOptions) -> Verification:
        found: list[FaceEmbeddings] = [
            self.embed.postprocess(r, p, options) for r, p in zip(raw, (encoded.a, encoded.b), strict=True)
        ]
        face_a = select_face(found[0], largest=options.largest, what="image a")
        face_b = select_face(found[1], largest=options.largest, what="image b")
        threshold = self.threshold if options.match_threshold is None else options.match_threshold
        dist = distance(face_a.vector, face_b.vector, self.metric)
        return Verification(
            distance=dist,
            threshold=threshold,
            match=dist <= threshold,
            confidence=match_confidence(dist, threshold),
            model=self.model_id,
            metric=self.metric,
            faces=(len(found[0]), len(found[1])),
        )

    # -- calling: pairs, with paths read here ------------------------------------------

    def predict(self, inputs: Sequence[Any], options: FaceVerifyOptions | None = None) -> list[Verification]:
        return super().predict([_resolve(raw) for raw in inputs], options)

    def predict_each(
        self, inputs: Sequence[Any], options: FaceVerifyOptions | None = None
    ) -> list[Verification | ModelDeckError]:
        resolved: list[Any] = []
        for raw in inputs:
            try:
                resolved.append(_resolve(raw))
            except ModelDeckError as exc:  # an unreadable path fails its own pair only
                resolved.append(_Unreadable(exc))
        return super().predict_each(resolved, options)

    def call_inputs(self, args: tuple[Any, ...], options: dict[str, Any]) -> tuple[list[Any], bool, dict[str, Any]]:
        """``verify(img_a, img_b)`` and ``verify((img_a, img_b))`` give one result; a list of pairs, a list."""
        if len(args) == 2:
            return [args], True, options
        if len(args) != 1:
            raise InputTypeError(
                f"face-verify takes two images, a pair or a list of pairs, got {len(args)} positional arguments",
                hint="call verify(img_a, img_b) or verify([(a1, b1), (a2, b2)])",
            )
        (a,) = args
        if isinstance(a, list) and (not a or all(_is_pair(x) for x in a)):
            return a, False, options
        return [a], True, options

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(model_id=self.model_id, dim=self.embed.dim, metric=self.metric, threshold=self.threshold)
        return out

    def close(self) -> None:
        self.embed.close()


def _is_pair(value: Any) -> bool:
    return isinstance(value, Mapping) or (isinstance(value, (list, tuple)) and len(value) == 2)


class _Unreadable(dict):  # type: ignore[type-arg]
    """A pair whose path could not be read; preprocessing re-raises its error for that pair alone."""

    def __init__(self, error: ModelDeckError) -> None:
        super().__init__()
        self.error = error
