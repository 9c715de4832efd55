"""Document Q&A over HTTP: the index of ``MODELDECK_DOCUMENTS``, its contents, and questions answered with sources.

The index is one a build already wrote (``DocumentIndex.build`` or ``modeldeck ask FOLDER ...``);
the server opens it as it is, on the first request that needs it, and never updates it or reads a
path from a request. ``MODELDECK_DOCUMENTS_QA`` adds a reader whose answer is picked out of the
passages. Embedding and reading run off the event loop, one request at a time: an embed task and
a reader are not safe to call from two threads at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings
from ..errors import DocumentIndexNotFoundError, InputDecodeError, InputTooLargeError, OptionError
from ..tasks.base import check_text
from .errors import error_responses
from .metrics import surface_router

if TYPE_CHECKING:
    from .._api import Loader
    from ..documents import DocumentIndex

__all__ = ["MAX_QUESTION_CHARS", "MAX_TOP_K", "AskRequest", "DocumentsHolder", "router"]

#: More passages than a person reads; each one also costs a reader's forward pass.
MAX_TOP_K = 50
#: A question is embedded as one query: anything longer is a document, not a question.
MAX_QUESTION_CHARS = 2000
_BODY_HINT = 'send JSON like {"question": "How many vacation days do I get?", "top_k": 5}'


class AskRequest(BaseModel):
    # strict: "5" or true for top_k is a mistake to report, not a value to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(description="The question; passages are ranked by cosine similarity to it.")
    top_k: int = Field(default=5, description=f"How many passages to return, 1 to {MAX_TOP_K}.")


class DocumentsHolder:
    """Opens the configured document index once, on first use; answers 404 while none is configured."""

    def __init__(self, settings: Settings, loader: Loader) -> None:
        self.settings = settings
        self.loader = loader
        # One lock for opening and for every use: the embed task and the reader are not thread-safe.
        self._lock = threading.Lock()
        self._index: DocumentIndex | None = None

    def _open(self) -> DocumentIndex:
        folder = self.settings.documents
        if not folder:
            raise DocumentIndexNotFoundError(
                "this server has no document index",
                hint="index a folder (`modeldeck ask FOLDER QUESTION`), then start the server with "
                "MODELDECK_DOCUMENTS=FOLDER",
            )
        if self._index is None:
            from ..documents import DocumentIndex

            self._index = DocumentIndex.open(
                folder, qa_model=self.settings.documents_qa or None, settings=self.settings, loader=self.loader
            )
        return self._index

    def describe(self) -> dict[str, Any]:
        with self._lock:
            index = self._open()
            files = index.store.files()
            return {
                "folder": Path(self.settings.documents).name,
                "model": index.model,
                "qa_model": self.settings.documents_qa or None,
                "chunks": len(index),
                "files": [
                    {"source": f.path, "kind": f.kind, "chars": f.chars, "pages": f.pages, "chunks": f.chunks}
                    for f in sorted(files.values(), key=lambda f: f.path)
                ],
            }

    def ask(self, question: str, top_k: int) -> dict[str, Any]:
        with self._lock:
            return self._open().ask(question, top_k=top_k).to_dict()

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    holder: DocumentsHolder = app.state.documents
    await run_in_threadpool(holder.close)


router = surface_router("documents", prefix="/v1/documents", tags=["documents"], lifespan=_lifespan)


def _holder(request: Request) -> DocumentsHolder:
    return request.app.state.documents  # type: ignore[no-any-return]


@router.get("", responses=error_responses(401, 404, 500))
async def documents(request: Request) -> dict[str, Any]:
    """The served index: its folder, embedding model, reader, chunk count and files."""
    return await run_in_threadpool(_holder(request).describe)


def _parse(body: bytes) -> AskRequest:
    try:
        parsed = AskRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())) or "body"
            if err["type"] == "json_invalid":
                raise StarletteHTTPException(400) from None  # the app's one answer to a malformed body
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown field {where!r}")
            else:
                problems.append(f"{where}: {err['msg']}")
        raise InputDecodeError("; ".join(problems), hint=_BODY_HINT) from None
    if not 1 <= parsed.top_k <= MAX_TOP_K:
        raise OptionError(f"top_k must be between 1 and {MAX_TOP_K}, got {parsed.top_k}", hint="for example 5")
    if len(parsed.question) > MAX_QUESTION_CHARS:
        raise InputTooLargeError(
            f"the question has {len(parsed.question)} characters, more than {MAX_QUESTION_CHARS}",
            hint="ask a shorter question",
        )
    check_text(parsed.question, field="question")  # empty or blank: refused before the index opens
    return parsed


@router.post(
    "/ask",
    responses=error_responses(400, 401, 404, 413, 422, 500),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": AskRequest.model_json_schema()}}}
    },
)
async def ask(request: Request) -> dict[str, Any]:
    """Rank the index's passages for ``{"question", "top_k"}``, best first, each with its file,
    character span, page and cosine score; ``answer`` is the reader's when the server has one."""
    body = _parse(await request.body())
    return await run_in_threadpool(_holder(request).ask, body.question, body.top_k)
