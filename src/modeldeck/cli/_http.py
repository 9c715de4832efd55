"""A minimal keep-alive HTTP/1.1 client for the load generator's hot loop.

A general client (httpx) spends over a millisecond of CPU per request; on a small machine
the load generator would then steal the cores it is measuring. This one sends pre-encoded
requests over one connection and reads back the status and a Content-Length or chunked body.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["Connection", "build_post"]


def build_post(
    url: str, body: bytes, content_type: str = "application/json", *, api_key: str | None = None
) -> tuple[str, int, bytes]:
    """(host, port, raw request bytes) for a POST of ``body`` to ``url``, with a bearer key if given."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported by the load generator, got {url!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n"
        + (f"Authorization: Bearer {api_key}\r\n" if api_key else "")
        + "\r\n"
    )
    return host, port, head.encode("latin-1") + body


class Connection:
    """One persistent connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one pre-encoded request; returns (status, body)."""
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(raw)
            return await asyncio.wait_for(self._read_response(self._reader), self.timeout)
        except BaseException:
            self.close()
            raise

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = bytearray(await reader.readexactly(int(headers.get("content-length", "0"))))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, bytes(body)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
