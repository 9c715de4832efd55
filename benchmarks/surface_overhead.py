"""Server CPU per request of each HTTP surface, with models that cost nothing: this tree vs another.

    python benchmarks/surface_overhead.py --baseline OLD/src [--requests 3000] [--rounds 3]

``benchmarks/serving.py surfaces`` measures throughput with the real embed model, which on a
busy machine mostly measures the machine. This one serves a no-op text task and a no-op embed
task (384 float32 values) in the server process, sends the same requests with 32 keep-alive
clients, and reads the server process's own CPU time (``/proc``) before and after: the cost of
routing, middleware, the submit path and the response encoding, per request. Servers from the
two trees run one after the other, alternated per round; ratios are new / old.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, save, sentences

CLIENTS = 32
DIM = 384


def _serve(port: int) -> None:
    """The server side (run in a subprocess whose PYTHONPATH picks the tree)."""
    import numpy as np
    import uvicorn

    from modeldeck.config import Settings
    from modeldeck.serving import create_app
    from modeldeck.tasks.base import Options, Task
    from modeldeck.tasks.results import Embedding
    from modeldeck.types import ModelInfo

    class Text:
        def __init__(self, text: str) -> None:
            self.text = text

        def to_dict(self) -> dict[str, Any]:
            return {"text": self.text}

    class Echo(Task[str, str, Any, Options]):
        name = "classify"  # any text task: the server only needs its name and options
        options_type = Options

        def preprocess(self, raw: Any, options: Options) -> str:
            return str(raw)

        def forward(self, batch: Sequence[str]) -> list[str]:
            return list(batch)

        def postprocess(self, raw: str, encoded: str, options: Options) -> Any:
            return Text(raw)

    vector = np.random.default_rng(0).normal(size=DIM).astype(np.float32)

    class Embed(Echo):
        name = "embed"

        def postprocess(self, raw: str, encoded: str, options: Options) -> Any:
            return Embedding(vector)

        def describe(self) -> dict[str, Any]:
            return {**super().describe(), "dim": DIM}

    def info(task: str) -> ModelInfo:
        return ModelInfo(name=task, version="1", tasks=(task,), runtime="python", path=Path("."))

    settings = Settings.from_env({}, models=("echo=classify", "embed"), max_wait_ms=2.0)
    app = create_app(
        settings, loader=lambda spec: Embed(info("embed")) if spec.task == "embed" else Echo(info("classify"))
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _send(url: str, path: str, bodies: list[bytes], total: int) -> int:
    from modeldeck.cli._http import Connection, build_post

    endpoint = f"{url}{path}"
    requests = [build_post(endpoint, body)[2] for body in bodies]
    host, port, _ = build_post(endpoint, b"")
    counter = iter(range(total))
    failed = 0

    async def client() -> None:
        nonlocal failed
        connection = Connection(host, port, 60.0)
        try:
            for i in counter:
                status, _ = await connection.request(requests[i % len(requests)])
                failed += status != 200
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return failed


def measure(tree: str, total: int) -> dict[str, float]:
    texts = sentences(512)
    surfaces = {
        "task": ("/v1/models/echo/predict", [json.dumps({"inputs": t}).encode() for t in texts]),
        "task embed": ("/v1/models/embed/predict", [json.dumps({"inputs": t}).encode() for t in texts]),
        "openai float": (
            "/v1/embeddings",
            [json.dumps({"model": "embed", "input": t, "encoding_format": "float"}).encode() for t in texts],
        ),
        "openai base64": (
            "/v1/embeddings",
            [json.dumps({"model": "embed", "input": t, "encoding_format": "base64"}).encode() for t in texts],
        ),
    }
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        out = {}
        for name, (path, bodies) in surfaces.items():
            asyncio.run(_send(url, path, bodies, total // 5))  # warm-up
            before = _cpu_s(proc.pid)
            failed = asyncio.run(_send(url, path, bodies, total))
            out[name] = (_cpu_s(proc.pid) - before) * 1000 / total
            assert failed == 0, f"{failed} requests failed on {name}"
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="the src folder of the tree to compare against")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    if not args.baseline:
        parser.error("--baseline OLD/src is required")
    trees = {"old": str(Path(args.baseline).resolve()), "new": str(Path(__file__).resolve().parent.parent / "src")}
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    print(f"server CPU per request, no-op models, {CLIENTS} clients, {args.requests} requests per surface")
    for round_ in range(args.rounds):
        for tree in ["old", "new"] if round_ % 2 == 0 else ["new", "old"]:
            row = measure(trees[tree], args.requests)
            runs[tree].append(row)
            print(f"  round {round_ + 1} {tree:<3} " + "  ".join(f"{k} {v:5.3f} ms" for k, v in row.items()))
    ratios = {}
    for name in runs["old"][0]:
        old = statistics.median(r[name] for r in runs["old"])
        new = statistics.median(r[name] for r in runs["new"])
        ratios[name] = new / old
        print(f"  {name:<14} median old {old:5.3f} ms  new {new:5.3f} ms  ({new / old:4.2f}x)")
    print(f"  saved {save('surface-overhead', {'runs': runs, 'ratios': ratios})}")


if __name__ == "__main__":
    main()
