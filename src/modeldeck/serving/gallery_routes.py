"""The face gallery over HTTP: enrol, identify, list and remove people in ``MODELDECK_GALLERY``.

The gallery (and its face-embed model) opens on the first request that needs it, under a lock,
and lives on ``app.state.gallery``. Embedding and SQLite work run off the event loop. Images
arrive as multipart files or base64 strings in JSON; a string is never read as a path.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..config import Settings
from ..errors import EmptyInputError, GalleryNotFoundError, InputDecodeError, InputTypeError, OptionError
from ..images import decode_base64
from .errors import error_responses
from .limits import InputLimits
from .metrics import surface_router

if TYPE_CHECKING:
    from .._api import Loader
    from ..gallery import Gallery

__all__ = ["GalleryHolder", "router"]

_PREFIX = "/v1/gallery"
_MAX_ROWID = 2**63 - 1  # SQLite's integer range: a larger id would overflow inside the driver


class GalleryHolder:
    """Opens the configured gallery once, on first use; answers 404 while none is configured or exists."""

    def __init__(self, settings: Settings, loader: Loader) -> None:
        self.settings = settings
        self.loader = loader
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None

    def get(self, *, create: bool = False) -> Gallery:
        path = self.settings.gallery
        if not path:
            raise GalleryNotFoundError(
                "this server has no face gallery", hint="start it with MODELDECK_GALLERY=/path/to/team.db"
            )
        with self._lock:
            if self._gallery is None:
                if not create and not Path(path).is_file():
                    raise GalleryNotFoundError(
                        f"the face gallery {path!r} does not exist yet",
                        hint="enroll someone first: POST /v1/gallery/people/{name}/images",
                    )
                from ..gallery import Gallery

                self._gallery = Gallery(path, None, create=True, settings=self.settings, loader=self.loader)
            return self._gallery

    def close(self) -> None:
        with self._lock:
            if self._gallery is not None:
                self._gallery.close()
                self._gallery = None


def _decode_b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InputTypeError(f"{where} must be a base64 string, got {type(value).__name__}", hint=_IMAGE_HINT)
    try:
        data = decode_base64(value)
    except InputDecodeError as exc:
        raise InputDecodeError(f"{where}: {exc.message}", hint=_IMAGE_HINT) from None
    if not data:
        raise EmptyInputError(f"{where} is empty", hint=_IMAGE_HINT)
    return data


_IMAGE_HINT = "send images as multipart files, or as base64 strings in JSON"


class _EnrollBody(BaseModel):
    images: list[str] = Field(description="base64 images (or data URLs) of one person")
    sources: list[str] | None = Field(default=None, description="one label per image")
    largest: bool = Field(default=False, description="take the largest face where an image holds several")


class _IdentifyBody(BaseModel):
    image: str = Field(description="one base64 image (or data URL)")
    top_k: int = Field(default=5, description="best matches per face")
    threshold: float | None = Field(default=None, description="distance limit (default: the gallery's)")
    largest: bool = Field(default=False, description="identify the largest face only")


def _body_docs(body: type[BaseModel], files: str) -> dict[str, Any]:
    """The JSON or multipart body a route reads itself, for the OpenAPI document."""
    form: dict[str, Any] = {
        "type": "object",
        "properties": {files: {"type": "array", "items": {"type": "string", "format": "binary"}}},
        "required": [files],
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": body.model_json_schema()},
                "multipart/form-data": {"schema": form},
            },
        }
    }


async def _read_images(request: Request, *, many: bool) -> tuple[list[bytes], list[str], dict[str, Any]]:
    """``(images, source labels, other fields)`` from a multipart form or a JSON body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        images, sources, fields = [], [], {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                images.append(await value.read())
                sources.append(value.filename or f"upload {len(images)}")
            else:
                fields[key] = value
        return images, sources, fields
    try:
        body = await request.json()
    except ValueError:
        raise InputDecodeError("the body is neither JSON nor a multipart form", hint=_IMAGE_HINT) from None
    if not isinstance(body, dict):
        raise InputTypeError("the JSON body must be an object", hint='{"image": "<base64>"}')
    fields = dict(body)
    raw = fields.pop("images", None) if many else None
    if raw is None:
        raw = fields.pop("image", None)
        raw = None if raw is None else [raw]
    if raw is None:
        key = '"images": [...]' if many else '"image"'
        raise EmptyInputError("no image in the request", hint=f"send {key} as base64, or multipart files")
    if not isinstance(raw, list):
        raise InputTypeError('"images" must be a list of base64 strings', hint=_IMAGE_HINT)
    images = [_decode_b64(item, f"image {i + 1}") for i, item in enumerate(raw)]
    sources = fields.pop("sources", None) or [f"image {i + 1}" for i in range(len(images))]
    if not isinstance(sources, list) or len(sources) != len(images):
        raise OptionError('"sources" must be a list with one label per image')
    return images, [str(s) for s in sources], fields


def _check_sizes(request: Request, images: list[bytes]) -> None:
    """The served face-embed limits (serving/limits.py), checked from each header before any face work."""
    limits = InputLimits("gallery", "face-embed", "image", request.app.state.settings)
    for image in images:
        limits.check(image)


def _flag(fields: dict[str, Any], name: str) -> bool:
    value = fields.pop(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise OptionError(f"{name} must be true or false, got {value!r}")


def _number(fields: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = fields.pop(name, None)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a {kind.__name__}, got {value!r}") from None


def _no_extra(fields: dict[str, Any], allowed: str) -> None:
    if fields:
        raise OptionError(f"unknown field(s): {', '.join(sorted(fields))}", hint=f"valid fields: {allowed}")


router = surface_router("gallery", prefix=_PREFIX, tags=["gallery"])


def _holder(request: Request) -> GalleryHolder:
    return request.app.state.gallery  # type: ignore[no-any-return]


@router.post(
    "/people/{name}/images",
    status_code=201,
    openapi_extra=_body_docs(_EnrollBody, "images"),
    responses=error_responses(400, 401, 403, 404, 413, 422, 500, 503),
)
async def enroll(name: str, request: Request) -> JSONResponse:
    """Enroll photos of ``name`` (multipart files, or JSON ``{"images": [base64...], "largest": false}``)."""
    images, sources, fields = await _read_images(request, many=True)
    _check_sizes(request, images)
    largest = _flag(fields, "largest")
    _no_extra(fields, "images, sources, largest")
    if not images:
        raise EmptyInputError("no image files in the form", hint="attach one or more files")

    def work() -> dict[str, Any]:
        gallery = _holder(request).get(create=True)
        return gallery.enroll(name, images, largest=largest, sources=sources).to_dict()

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.post(
    "/identify",
    openapi_extra=_body_docs(_IdentifyBody, "image"),
    responses=error_responses(400, 401, 404, 413, 422, 500, 503),
)
async def identify(request: Request) -> dict[str, Any]:
    """Identify the faces of one photo (multipart file, or JSON ``{"image": base64, "top_k": 5}``)."""
    images, _, fields = await _read_images(request, many=False)
    _check_sizes(request, images)
    top_k = _number(fields, "top_k", int, 5)
    threshold = _number(fields, "threshold", float, None)
    largest = _flag(fields, "largest")
    _no_extra(fields, "image, top_k, threshold, largest")
    if len(images) != 1:
        raise InputTypeError(f"identify takes one image, got {len(images)}", hint="send one file")

    def work() -> dict[str, Any]:
        gallery = _holder(request).get()
        return gallery.identify(images[0], top_k=top_k, threshold=threshold, largest=largest).to_dict()

    return await run_in_threadpool(work)


@router.get("/people", responses=error_responses(401, 404))
async def people(request: Request) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        gallery = _holder(request).get()
        return {
            "model": gallery.model_id,
            "metric": gallery.metric,
            "threshold": gallery.threshold,
            "people": [p.to_dict() for p in gallery.people()],
        }

    return await run_in_threadpool(work)


@router.get("/people/{name}", responses=error_responses(401, 404, 422))
async def person(name: str, request: Request) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        images = _holder(request).get().images(name)
        return {"name": name, "images": [{"image_id": i.image_id, "source": i.source} for i in images]}

    return await run_in_threadpool(work)


@router.delete("/people/{name}", responses=error_responses(401, 403, 404, 422))
async def remove_person(name: str, request: Request) -> dict[str, Any]:
    removed = await run_in_threadpool(lambda: _holder(request).get().remove_person(name))
    return {"name": name, "removed": removed}


@router.delete("/images/{image_id}", responses=error_responses(401, 403, 404, 422))
async def remove_image(
    request: Request, image_id: int = PathParam(ge=1, le=_MAX_ROWID, description="an image_id from enrolment")
) -> dict[str, Any]:
    name = await run_in_threadpool(lambda: _holder(request).get().remove_image(image_id))
    return {"image_id": image_id, "name": name}
