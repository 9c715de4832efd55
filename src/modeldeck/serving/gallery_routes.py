"""The face gallery over HTTP: enrol, identify, list and remove people in ``MODELDECK_GALLERY``.

The gallery opens on the first request that needs it, under a lock, and lives on
``app.state.gallery``; its storage and search (``modeldeck.gallery``) run in the server, off the
event loop. Its face-embed model is a deployment like any served model, started on the first
request that embeds a face, under the reserved name ``_gallery``: batched, in a worker process
of its own (``MODELDECK_ISOLATION``), counted in ``/metrics`` under ``model="_gallery"`` and not
listed in ``/v1/models``. Images arrive as multipart files or base64 strings in JSON; a string is
never read as a path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.from_thread
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..config import Settings
from ..errors import (
    ConfigError,
    EmptyInputError,
    GalleryNotFoundError,
    InputDecodeError,
    InputTypeError,
    ModelDeckError,
    OptionError,
)
from ..images import decode_base64
from .deck import Deployment
from .errors import error_responses
from .limits import InputLimits
from .metrics import ServerMetrics, surface_router
from .models import ServedModel
from .specs import ModelSpec

if TYPE_CHECKING:
    from ..gallery import Gallery
    from ..tasks.faces._results import EmbeddedFace, FaceEmbeddings

__all__ = ["GALLERY_ALIAS", "GalleryHolder", "ServedFaceEmbedder", "router"]

#: The name of the gallery's face-embed deployment (in metrics and logs); not a served model name.
GALLERY_ALIAS = "_gallery"
_PREFIX = "/v1/gallery"
_MAX_ROWID = 2**63 - 1  # SQLite's integer range: a larger id would overflow inside the driver


class ServedFaceEmbedder:
    """The face-embed contract ``Gallery`` reads (``model_id``, ``dim``, ``metric``, ``threshold``,
    ``__call__``, ``embed_one``), answered by the gallery's deployment.

    Called on a worker thread (``Gallery`` is synchronous); each image is submitted through
    ``Deployment.answer`` on the event loop, so concurrent requests batch together.
    """

    def __init__(self, deployment: Deployment, timeout: float) -> None:
        if deployment.model.task != "face-embed":
            raise ConfigError(
                f"the gallery needs a face-embed model, and its model serves the {deployment.model.task!r} task",
                hint='point the gallery at a face-embed model, e.g. "face-embed"',
            )
        described = deployment.model.describe()
        self.deployment = deployment
        self.model_id = str(described["model_id"])
        self.dim = int(described["dim"])
        self.metric = str(described["metric"])
        self.threshold = float(described["threshold"])
        self._timeout = timeout

    def __call__(self, image: Any) -> FaceEmbeddings:
        from ..tasks.faces._results import FaceEmbeddings

        (answer,) = anyio.from_thread.run(self.deployment.answer, [image], {}, self._timeout)
        if isinstance(answer, ModelDeckError):
            raise answer
        return FaceEmbeddings.from_dict(json.loads(answer))

    def embed_one(self, image: Any, *, largest: bool = False) -> EmbeddedFace:
        from ..tasks.faces._embed import select_face

        return select_face(self(image), largest=largest)


class GalleryHolder:
    """Opens the configured gallery once, on first use; answers 404 while none is configured or exists.

    ``build`` loads a model spec where served models run (a worker process, or a test's loader);
    the deployment it feeds starts the first time the gallery needs an embedding.
    """

    def __init__(self, settings: Settings, build: Callable[[ModelSpec], ServedModel], metrics: ServerMetrics) -> None:
        self.settings = settings
        self.build = build
        self.metrics = metrics
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._gallery: Gallery | None = None
        self.deployment: Deployment | None = None

    def get(self, *, create: bool = False) -> Gallery:
        """The gallery (blocking: call from a worker thread)."""
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

                self._gallery = Gallery(
                    path, None, create=True, settings=self.settings, loader=self._embedder, serialize_embedding=False
                )
            return self._gallery

    def _embedder(self, name_or_path: str, *, model: str | None = None, **_: Any) -> ServedFaceEmbedder:
        """``Gallery``'s loader: ``("face-embed")`` or ``("face-embed", model=recorded)``, on a worker thread."""
        with self._start_lock:
            if self.deployment is None:
                spec = ModelSpec(GALLERY_ALIAS, "face-embed", model)
                self.deployment = anyio.from_thread.run(self._start, spec)
            return ServedFaceEmbedder(self.deployment, self.settings.request_timeout_s)

    async def _start(self, spec: ModelSpec) -> Deployment:
        model = await run_in_threadpool(self.build, spec)
        deployment = Deployment(GALLERY_ALIAS, model, self.settings, self.metrics)
        await deployment.start()
        return deployment

    async def aclose(self) -> None:
        """Stop the embedding deployment (its accepted work finishes first), then close the file."""
        if self.deployment is not None:
            await self.deployment.stop()
            self.deployment = None
        await run_in_threadpool(self._close_gallery)

    def _close_gallery(self) -> None:
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
