"""CPU spent turning embed answers into a response: float32 bytes from the worker vs JSON parsed back.

    python benchmarks/embed_wire.py [--dim 384] [--repeat 300]

For one request of 1 and of 32 texts, measures in this process (no model, no network) the CPU
of each side of the pipe, the old way and the new way, side by side:

- worker: the old worker wrote each ``Embedding`` as JSON; the new one sends its float32 bytes.
- pipe: pickling the batch's answers and reading them back (what ``multiprocessing`` does).
- server, per surface: OpenAI ``/v1/embeddings`` float and base64 (old: ``json.loads`` each
  answer, ``np.asarray``, then ``json.dumps`` the body; new: ``embedding_matrix`` then one
  encode), and the task API (old: splice the worker's JSON; new: encode the JSON here).

Ratios are new / old in the same run; results also go to .bench/embed-wire.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import pickle
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import save
from pydantic_core import to_json

from modeldeck.serving.wire import EmbeddingAnswer, as_json, embedding_matrix
from modeldeck.tasks.results import Embedding


def cpu_us(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    started = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - started) / repeat * 1e6


def old_openai(answers: list[bytes], fmt: str) -> bytes:
    data = []
    for i, answer in enumerate(answers):
        vector = np.asarray(json.loads(answer)["vector"], dtype=np.float32)
        encoded: Any = (
            base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii") if fmt == "base64" else vector.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    body = {"object": "list", "data": data, "model": "embed", "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    return json.dumps(body).encode()


def new_openai(answers: list[EmbeddingAnswer], fmt: str) -> bytes:
    vectors = embedding_matrix(answers)
    if fmt == "base64":
        data = [
            {"object": "embedding", "index": i, "embedding": base64.b64encode(row.tobytes()).decode("ascii")}
            for i, row in enumerate(vectors)
        ]
    else:
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(vectors.tolist())]
    body = {"object": "list", "data": data, "model": "embed", "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    return to_json(body)


def task_api(parts: list[bytes]) -> bytes:
    return b'{"model":"embed","version":"1","outputs":[' + b",".join(parts) + b"]}"


def measure(n: int, dim: int, repeat: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(n)
    results = [Embedding(rng.normal(size=dim).astype(np.float32)) for _ in range(n)]
    old = [to_json(r.to_dict()) for r in results]
    new = [EmbeddingAnswer.of(r) for r in results]
    rows = {
        "worker": (lambda: [to_json(r.to_dict()) for r in results], lambda: [EmbeddingAnswer.of(r) for r in results]),
        "pipe": (lambda: pickle.loads(pickle.dumps(old)), lambda: pickle.loads(pickle.dumps(new))),
        "openai float": (lambda: old_openai(old, "float"), lambda: new_openai(new, "float")),
        "openai base64": (lambda: old_openai(old, "base64"), lambda: new_openai(new, "base64")),
        "task api": (lambda: task_api(old), lambda: task_api([as_json(a) for a in new])),  # type: ignore[misc]
    }
    out = {}
    for name, (before, after) in rows.items():
        b, a = cpu_us(before, repeat), cpu_us(after, repeat)
        out[name] = {"old_us": b, "new_us": a, "ratio": a / b}
        print(f"  {n:3d} texts  {name:<14} old {b:9.1f} us  new {a:9.1f} us  ({a / b:5.2f}x)")
    sizes = {"old_pipe_bytes": len(pickle.dumps(old)), "new_pipe_bytes": len(pickle.dumps(new))}
    print(f"  {n:3d} texts  pipe bytes      old {sizes['old_pipe_bytes']:9d}     new {sizes['new_pipe_bytes']:9d}")
    return {**out, "sizes": sizes}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=384)  # all-MiniLM-L6-v2, the default embed model
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    print(f"embed answers, dim {args.dim}, CPU per request (mean of {args.repeat})")
    result = {str(n): measure(n, args.dim, args.repeat) for n in (1, 32)}
    print(f"  saved {save('embed-wire', result)}")


if __name__ == "__main__":
    main()
