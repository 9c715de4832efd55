"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import EchoTask, LiveServer, echo_info


@pytest.fixture
def echo_task() -> EchoTask:
    return EchoTask(echo_info(), batch_size=32, max_text_chars=1000)


@pytest.fixture
def live() -> Iterator[list[LiveServer]]:
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()
