"""Shared test doubles: a tiny real task and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from modeldeck.config import Settings
from modeldeck.tasks.base import Options, Task, check_text
from modeldeck.types import ModelInfo


class EchoOptions(Options):
    upper: bool = False


@dataclass(frozen=True)
class EchoResult:
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text}


class EchoTask(Task[str, str, EchoResult, EchoOptions]):
    """Echoes text; 'boom' makes forward raise; ``gate`` holds a batch until the test releases it.

    In a worker process: 'crash' exits it, 'hang' never returns, 'hog' holds 400 MiB and never returns.
    """

    name = "echo"
    options_type = EchoOptions

    def __init__(self, info: ModelInfo, **kwargs: Any) -> None:
        super().__init__(info, **kwargs)
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.batches: list[int] = []

    def preprocess(self, raw: Any, options: EchoOptions) -> str:
        return check_text(raw, max_chars=self.max_text_chars)

    def forward(self, batch: Sequence[str]) -> list[str]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never released"
        self.batches.append(len(batch))
        if "boom" in batch:
            raise RuntimeError("boom is poison")
        if "crash" in batch:
            os._exit(3)  # what a segfault in native code looks like from outside
        if "hog" in batch:
            hoard = b"x" * (400 * 1024 * 1024)  # written, so resident
            threading.Event().wait(60)
            del hoard
        if "hang" in batch:
            threading.Event().wait(60)  # a model stuck in native code
        return list(batch)

    def postprocess(self, raw: str, encoded: str, options: EchoOptions) -> EchoResult:
        return EchoResult(raw.upper() if options.upper else raw)


def echo_info() -> ModelInfo:
    return ModelInfo(name="echo-model", version="1.0", tasks=("echo",), runtime="python", path=Path("."))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn in a thread, bound to 127.0.0.1; ``stop()`` is the same path as SIGTERM."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=10
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "models did not become ready"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def echo_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings.from_env({}, home=tmp_path / "home", models=("echo",), **overrides)


def echo_loader(spec: Any, settings: Settings) -> EchoTask:
    """A worker-process loader (module level, so a spawned process can import it)."""
    return EchoTask(echo_info(), batch_size=settings.max_batch_size, max_text_chars=settings.max_text_chars)


TINY_WORDS = [
    "tim", "cook", "visited", "paris", "jose", "new", "york", "in", "the", "and", "to", "went", "with",
    "play", "london", "berlin", "cat", "a", "is", "of", "##s", "##ing", "##ed", "##er", "##e",
    ".", ",", "!", "?", "-", "'",
]  # fmt: skip
TINY_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def save_tiny_bert_ner(path: Path) -> Path:
    """Save a random-weight BertForTokenClassification and its word-piece tokenizer, as hubs ship them."""
    import torch
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab=str(path / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label=TINY_LABELS,
        label2id={v: k for k, v in TINY_LABELS.items()},
    )
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(config)
    # Larger classifier weights make random predictions spread over all labels, so entities appear.
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


@dataclass
class FileServer:
    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    drop: str = "none"  # "none" | "first" | "always" | "stall"
    ignore_range: bool = False
    half_sent: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, data: bytes) -> tuple[str, str]:
        self.files[path] = data
        return f"{self.base}{path}", hashlib.sha256(data).hexdigest()

    def ranges(self) -> list[str | None]:
        return [r for _, r in self.requests]


class _FileHandler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state: FileServer = self.server.state
        rng = self.headers.get("Range")
        with state.lock:
            state.requests.append((self.path, rng))
            number = len(state.requests)
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and not state.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        chunk = body[start:]
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if state.drop == "always" or (state.drop in ("first", "stall") and number == 1):
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            state.half_sent.set()
            if state.drop == "stall":
                state.release.wait(20)
            return  # HTTP/1.0: the connection closes here, short of Content-Length
        self.wfile.write(chunk)


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 (a free port) in the background; yields its base URL.

    ``attributes`` are set on the server, where the handler reads them as ``self.server.NAME``.
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    for name, value in attributes.items():
        setattr(httpd, name, value)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def serve_files() -> Iterator[FileServer]:
    """A real HTTP server on 127.0.0.1 serving ``state.files``; it honours Range and can misbehave."""
    state = FileServer()
    with loopback_server(_FileHandler, state=state) as base:
        state.base = base
        try:
            yield state
        finally:
            state.release.set()  # a request held open by the test must not block the shutdown


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF written by hand: one Helvetica text stream per page, one line per string."""

    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        stream = ("BT /F1 11 Tf 14 TL 72 760 Td " + " ".join(f"({escape(x)}) Tj T*" for x in lines) + " ET").encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
