"""Where a running deck's memory goes: PSS per process and per kind of mapping.

    python benchmarks/deck_pss.py SERVER_PID [--url http://127.0.0.1:8000] [--json]    (as root)

Walks the server and every descendant (fork server, workers, resource tracker), reads the
physical page behind every resident page of each (``/proc/PID/maps`` and ``/proc/PID/pagemap``),
and divides each page among the deck's processes that map it (see ``deck_pss``). Each process's
share is summed by kind of mapping: anonymous memory (the Python heap, malloc arenas, tensors,
tokenizers' Rust heap) that it holds alone ("anon private") or shares with the fork server and
its siblings ("anon shared": copy-on-write pages nobody wrote), torch's own libraries, the CUDA
libraries the CUDA build of torch loads even on a CPU machine (``nvidia/*``, ``libtorch_cuda``,
triton), other native libraries, model files mapped from disk and other files. psutil's
``memory_maps()`` gives the kernel's PSS, which also divides pages with processes outside the
deck, so the frames are read here. ``--url`` names each worker by the models it serves.
``deck_memory.py`` prints the same breakdown after its load.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

import httpx
import numpy as np
import psutil

MB = 2**20
PAGE = 4096
_PFN_MASK = np.uint64((1 << 55) - 1)
KINDS = (
    "anon private",
    "anon shared",
    "torch libs",
    "CUDA libs",
    "other libs",
    "model files",
    "other files",
)
_MODEL_SUFFIXES = (".safetensors", ".bin", ".dat", ".onnx", ".pt", ".pth", ".npy", ".h5", ".keras")
_CUDA_MARKERS = ("/nvidia/", "libtorch_cuda", "/triton/", "libcudnn", "libnccl", "cusparselt")


def kind_of(path: str) -> str:
    """The kind of a mapping, from its path (an empty path or ``[heap]``: anonymous)."""
    if not path or (path.startswith("[") and path != "[vdso]"):
        return "anon"
    if any(marker in path for marker in _CUDA_MARKERS):
        return "CUDA libs"
    if "/site-packages/torch/" in path:
        return "torch libs"
    if ".so" in path.rsplit("/", 1)[-1]:
        return "other libs"
    if path.endswith(_MODEL_SUFFIXES):
        return "model files"
    return "other files"


def _pages(pid: int) -> tuple[np.ndarray, np.ndarray]:
    """The physical frame of every resident page of ``pid``, and the kind of its mapping (index in KINDS)."""
    frames, kinds = [], []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            fields = line.split(maxsplit=5)
            if fields[1].startswith("---"):
                continue  # reserved address space, never resident
            start, end = (int(x, 16) for x in fields[0].split("-"))
            pagemap.seek(start // PAGE * 8)
            entries = np.frombuffer(pagemap.read((end - start) // PAGE * 8), dtype=np.uint64)
            present = entries[(entries >> np.uint64(63)) == 1] & _PFN_MASK
            kind = kind_of(fields[5].strip() if len(fields) > 5 else "")
            frames.append(present)
            kinds.append(np.full(len(present), KINDS.index("anon private" if kind == "anon" else kind), np.int8))
    return np.concatenate(frames), np.concatenate(kinds)


def deck_pss(pids: list[int]) -> list[dict[str, float]]:
    """Each process's PSS (MiB) by kind, counting only the processes in ``pids``.

    The kernel's PSS divides a page among every process on the machine that maps it, so a deck's
    figure drops whenever another program maps the same torch libraries (other test runs on a
    shared machine) and rises when it stops. Here a page is divided among the deck's own processes
    only, from the frames /proc/PID/pagemap gives (root only: others read frame 0), so the sum is
    the memory the deck holds: every distinct resident page once. Anonymous pages mapped by more
    than one process of the deck (copy-on-write pages of the fork server not yet written) count
    as "anon shared".
    """
    pages = [_pages(pid) for pid in pids]
    every = np.concatenate([frames for frames, _ in pages])
    if every.size and not every.any():
        raise PermissionError("/proc/PID/pagemap gave no page frames: run as root")
    unique, counts = np.unique(every, return_counts=True)
    rows = []
    for frames, kinds in pages:
        sharers = counts[np.searchsorted(unique, frames)]
        kinds = np.where((kinds == KINDS.index("anon private")) & (sharers > 1), KINDS.index("anon shared"), kinds)
        share = PAGE / sharers / MB
        row = {kind: float(share[kinds == i].sum()) for i, kind in enumerate(KINDS)}
        row["pss"] = float(share.sum())
        row["uss"] = float((sharers == 1).sum() * PAGE / MB)
        rows.append(row)
    return rows


def role_of(proc: psutil.Process, server: int, workers: dict[int, str]) -> str:
    if proc.pid == server:
        return "server"
    if proc.pid in workers:
        return "worker " + workers[proc.pid]
    cmdline = " ".join(proc.cmdline())
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if "forkserver" in cmdline:  # the fork server, and the workers forked from it
        return "fork server" if proc.ppid() == server else "worker"
    return "other"


def worker_names(url: str) -> dict[int, str]:
    """``{worker pid: "ner+parse"}`` from a running server's /v1/models."""
    names: dict[int, list[str]] = defaultdict(list)
    for model in httpx.get(f"{url}/v1/models", timeout=10).json()["models"]:
        pid = httpx.get(f"{url}/v1/models/{model['name']}", timeout=10).json().get("worker_pid")
        if pid is not None:
            names[pid].append(model["name"])
    return {pid: "+".join(models) for pid, models in names.items()}


def deck_breakdown(server: int, workers: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """One row per process of the deck: pid, role, and its PSS by kind (MiB), shared within the deck."""
    root = psutil.Process(server)
    procs = [root, *root.children(recursive=True)]
    roles = {proc.pid: role_of(proc, server, workers or {}) for proc in procs}
    rows = deck_pss(list(roles))
    return [{"pid": pid, "role": role, **row} for (pid, role), row in zip(roles.items(), rows, strict=True)]


def print_breakdown(rows: list[dict[str, Any]]) -> None:
    head = f"  {'process':28}" + "".join(f"{kind:>13}" for kind in (*KINDS, "pss", "uss"))
    print(head)
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        print(f"  {row['role'][:28]:28}" + "".join(f"{row[kind]:13.1f}" for kind in (*KINDS, "pss", "uss")))
        for kind in (*KINDS, "pss", "uss"):
            totals[kind] += row[kind]
    print(f"  {'total':28}" + "".join(f"{totals[kind]:13.1f}" for kind in (*KINDS, "pss", "uss")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server_pid", type=int, help="the pid of `modeldeck serve`")
    parser.add_argument("--url", default=None, help="the server's URL, to name each worker by its models")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = deck_breakdown(args.server_pid, worker_names(args.url) if args.url else None)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_breakdown(rows)


if __name__ == "__main__":
    main()
