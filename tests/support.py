"""Shared test doubles: a tiny real task and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    """Echoes text; 'boom' makes forward raise; ``gate`` holds a batch until the test releases it."""

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
