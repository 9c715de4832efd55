"""Resumable, verified downloads: the only code in modeldeck that touches the network."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ChecksumError, DependencyError, DownloadError, StoreError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["HttpxTransport", "Response", "Transport", "download_file", "sha256_file"]

_CHUNK = 1 << 16
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Response(Protocol):
    """One HTTP response as the downloader needs it."""

    status: int
    headers: Mapping[str, str]

    def iter_bytes(self) -> Iterator[bytes]: ...


class Transport(Protocol):
    """Opens a GET of ``url`` from byte ``start``.

    Connection failures and bodies cut short must surface as ``ConnectionError`` (so the
    downloader retries and resumes); anything else propagates.
    """

    def open(self, url: str, *, start: int) -> AbstractContextManager[Response]: ...


class _HttpxResponse:
    def __init__(self, response: object) -> None:
        self._response = response
        self.status: int = response.status_code  # type: ignore[attr-defined]
        self.headers: Mapping[str, str] = response.headers  # type: ignore[attr-defined]

    def iter_bytes(self) -> Iterator[bytes]:
        return self._response.iter_raw(_CHUNK)  # type: ignore[attr-defined,no-any-return]


class HttpxTransport:
    """The real transport: httpx, imported on first use."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout

    @contextmanager
    def open(self, url: str, *, start: int) -> Iterator[Response]:
        try:
            import httpx
        except ImportError:
            raise DependencyError("httpx", purpose="downloading models") from None
        # identity encoding keeps byte offsets in Range and Content-Length about the file itself.
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            with (
                httpx.Client(timeout=self.timeout, follow_redirects=True) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                yield _HttpxResponse(response)
        except httpx.TransportError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(enabled: bool) -> AbstractContextManager[Progress | None]:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def _range_start(headers: Mapping[str, str]) -> int | None:
    # "Content-Range: bytes 100-199/200"
    value = headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    first = spec.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _fetch_once(
    url: str, part: Path, have: int, transport: Transport, bar: Progress | None, task: TaskID | None
) -> bool:
    """One request; returns False when the server says the range is unsatisfiable (416)."""
    with transport.open(url, start=have) as response:
        status = response.status
        if status == 416 and have > 0:
            return False
        if status == 206 and have > 0 and _range_start(response.headers) == have:
            mode = "ab"
        elif status in (200, 206):
            mode, have = "wb", 0  # the server ignored our Range (or we asked for none): start over
        elif status in _RETRYABLE_STATUS:
            raise ConnectionError(f"HTTP {status}")
        else:
            raise DownloadError(f"GET {url} answered HTTP {status}", hint="check the URL in the catalog entry")
        length_header = response.headers.get("content-length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        if bar is not None and task is not None:
            bar.update(task, completed=have, total=have + expected if expected is not None else None)
        written = 0
        try:
            with part.open(mode) as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    written += len(chunk)
                    if bar is not None and task is not None:
                        bar.advance(task, len(chunk))
        except ConnectionError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {part}: {exc}", hint="check free disk space and permissions") from exc
        if expected is not None and written < expected:
            raise ConnectionError(f"connection closed after {written} of {expected} bytes")
    return True


def download_file(
    url: str,
    sha256: str,
    part: Path,
    *,
    transport: Transport | None = None,
    size: int | None = None,
    progress: bool = False,
    label: str = "",
    attempts: int = 3,
    backoff_s: float = 0.2,
) -> Path:
    """Download ``url`` into ``part``, resuming what is there, and check its sha256.

    Connection errors and short bodies are retried ``attempts`` times in all, each time resuming
    with a ``Range`` request. If every attempt fails, ``part`` is kept for the next call to resume;
    if the digest does not match, ``part`` is deleted and ``ChecksumError`` raised.
    """
    transport = transport or HttpxTransport()
    part.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    with _progress_bar(progress) as bar:
        task = bar.add_task(label or part.name, total=size) if bar is not None else None
        for attempt in range(attempts):
            if attempt:
                time.sleep(backoff_s * 2 ** (attempt - 1))
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have > size:
                part.unlink()
                have = 0
            if size is not None and have == size and size > 0:
                break
            try:
                if _fetch_once(url, part, have, transport, bar, task):
                    break
            except ConnectionError as exc:
                last_error = exc
                continue
            # 416: the server has nothing past what we hold; keep it if it is right, else start over.
            if sha256_file(part) == sha256:
                break
            part.unlink()
            last_error = ConnectionError("HTTP 416 for a partial file that does not match its sha256")
        else:
            kept = part.stat().st_size if part.exists() else 0
            raise DownloadError(
                f"download of {url} failed after {attempts} attempts: {last_error}",
                hint=f"{kept} bytes are kept in {part}; pull again to resume",
            )
    actual = sha256_file(part)
    if actual != sha256:
        part.unlink()
        raise ChecksumError(
            f"{url} has sha256 {actual}, expected {sha256}; the download was deleted",
            hint="if the file changed upstream, update 'sha256' in the catalog entry; otherwise pull again",
        )
    return part
