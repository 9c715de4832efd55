"""Helpers shared by the benchmarks: a server subprocess, RSS sampling, result files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent.parent / ".bench"

_SUBJECTS = (
    "The committee",
    "A young engineer",
    "Maria Garcia",
    "The old bridge",
    "Our new service",
    "The Berlin office",
    "Dr. Chen",
    "The football team",
    "A small startup",
    "The river",
)
_VERBS = ("announced", "reviewed", "rebuilt", "questioned", "celebrated", "measured", "shipped", "described")
_OBJECTS = (
    "the annual budget in London",
    "a faster search engine",
    "the results from Tokyo last week",
    "an unusual painting by Picasso",
    "the contract with Siemens",
    "plans for the summer festival",
    "three new trains for Amtrak",
    "the history of the Roman Empire",
)


def sentences(n: int) -> list[str]:
    """``n`` varied, deterministic English sentences (a few named entities in most of them)."""
    out = []
    for i in range(n):
        s, v, o = _SUBJECTS[i % len(_SUBJECTS)], _VERBS[(i // 3) % len(_VERBS)], _OBJECTS[(i // 7) % len(_OBJECTS)]
        out.append(f"{s} {v} {o} on day {i % 365}.")
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], url: str, *, timeout_s: float, poll_s: float = 0.2) -> None:
    """Wait until the server at ``url`` answers /readyz with 200; raise if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not become ready in {timeout_s:.0f} s")
        time.sleep(poll_s)


@contextmanager
def server(
    models: str, *, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``modeldeck serve`` in a subprocess on 127.0.0.1; yields (url, pid) once /readyz is 200."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        proc_env = {**os.environ, "MODELDECK_HOME": home, **(env or {})}
        cmd = [
            sys.executable,
            "-m",
            "modeldeck",
            "serve",
            "--models",
            models,
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra_args,
        ]
        proc = subprocess.Popen(cmd, env=proc_env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, url, timeout_s=180)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(60)


def _descendants(pid: int) -> list[int]:
    kids = [int(k) for task in Path(f"/proc/{pid}/task").iterdir() for k in (task / "children").read_text().split()]
    return kids + [d for kid in kids for d in _descendants(kid)]


def _own_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants: the server and its model workers."""
    return sum(_own_rss(p) for p in [pid, *_descendants(pid)])


def best_times(fns: list[Any], rounds: int) -> list[float]:
    """Best time of each function, the functions interleaved round by round so drift hits them alike."""
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
