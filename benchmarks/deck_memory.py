"""Memory and readiness of the default deck (`make serve`), old code beside new in one run.

    python benchmarks/deck_memory.py [--baseline /work/main/src] [--rounds 2] [--requests 12] [--bursts 4]

Each variant is `python -m modeldeck serve` (the default deck) in a subprocess on 127.0.0.1,
with PYTHONPATH set to a checkout's `src`: `--baseline` names the old one, this checkout's
`src` is the new one, and `new-spawn` is the new code with MODELDECK_WORKER_START=spawn (the
sharing without the preloaded start). Variants alternate round by round. For each start it
measures the time from the process start to /readyz 200; PSS, USS and RSS of the server and
every descendant (workers, the fork server, the resource tracker) once ready and again after the
load; and the throughput of each model: the best of `--bursts` bursts of `--requests` requests
from 4 client threads, the models taking turns.
PSS splits each shared page between the processes that map it, so the sum is the deck's real
footprint; the RSS sum counts shared library pages once per process. The kernel's PSS also
splits a page with programs outside the deck (any other process of the machine that imported
the same torch), so on a shared machine it moves with them: "deck PSS" (`deck_pss.py`, root only)
splits each page among the deck's own processes, and is the figure to compare. Its breakdown by
kind of mapping is printed for each process after the load, and saved.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import free_port, save, sentences, wait_ready
from deck_pss import KINDS, deck_breakdown

HERE = Path(__file__).resolve().parent.parent / "src"
MODELS = ("ner", "parse", "embed", "face-detect", "face-verify")
MB = 2**20


def _photo() -> bytes:
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _role(proc: psutil.Process, server: int, workers: dict[int, list[str]]) -> str:
    if proc.pid == server:
        return "server"
    if proc.pid in workers:
        return "worker " + "+".join(workers[proc.pid])
    cmdline = " ".join(proc.cmdline())
    for marker, role in (("forkserver", "fork server"), ("resource_tracker", "resource tracker")):
        if marker in cmdline:
            return role
    return "other"


def memory(server: int, workers: dict[int, list[str]]) -> dict[str, Any]:
    """PSS, USS and RSS (MiB) of the server and every descendant, and their sums."""
    root = psutil.Process(server)
    rows = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            full = proc.memory_full_info()
            role = _role(proc, server, workers)
        except psutil.NoSuchProcess:
            continue
        rows.append({"pid": proc.pid, "role": role, "pss": full.pss / MB, "uss": full.uss / MB, "rss": full.rss / MB})
    total = {key: sum(row[key] for row in rows) for key in ("pss", "uss", "rss")}
    names = {pid: "+".join(models) for pid, models in workers.items()}
    try:
        kinds = deck_breakdown(server, names)  # shared only within the deck: see deck_pss.py
    except PermissionError:  # page frames are root's to read: the kernel's PSS stands in
        kinds = [{"role": row["role"], **dict.fromkeys(KINDS, 0.0), "pss": row["pss"]} for row in rows]
    return {
        "processes": rows,
        **{f"{key}_mb": value for key, value in total.items()},
        "deck_pss_mb": sum(row["pss"] for row in kinds),
        "kinds": kinds,
    }


def _request(client: httpx.Client, url: str, model: str, photo: bytes, i: int) -> None:
    route = f"{url}/v1/models/{model}/predict"
    if model == "face-detect":
        response = client.post(route, files=[("image", ("a.jpg", photo, "image/jpeg"))])
    elif model == "face-verify":
        pair = [("image", ("a.jpg", photo, "image/jpeg")), ("image", ("b.jpg", photo, "image/jpeg"))]
        response = client.post(route, files=pair)
    else:
        response = client.post(route, json={"inputs": sentences(8 + i % 3)[i % 3 :]})
    response.raise_for_status()
    assert "error" not in response.json()["outputs"][0], response.text


def throughput(url: str, requests: int, bursts: int, photo: bytes, clients: int = 4) -> dict[str, float]:
    """Requests per second of each model: the best of ``bursts`` bursts of ``requests`` requests from
    ``clients`` threads, the models taking turns burst by burst. The best, because on a shared
    machine other work only ever slows a burst down."""
    best = dict.fromkeys(MODELS, 0.0)
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(clients) as pool:
        for model in MODELS:
            _request(client, url, model, photo, 0)  # the first batch of a worker warms it
        for _ in range(bursts):
            for model in MODELS:
                started = time.perf_counter()
                list(pool.map(lambda i, model=model: _request(client, url, model, photo, i), range(requests)))
                best[model] = max(best[model], requests / (time.perf_counter() - started))
    return best


def run_deck(pythonpath: Path, env: dict[str, str], requests: int, bursts: int, photo: bytes) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        proc_env = {**os.environ, **env, "MODELDECK_HOME": home, "PYTHONPATH": str(pythonpath)}
        proc_env.pop("MODELDECK_MODELS", None)  # the default deck
        cmd = [sys.executable, "-m", "modeldeck", "serve", "--port", str(port), "--log-level", "warning"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=proc_env)
        try:
            wait_ready(proc, url, timeout_s=240, poll_s=0.05)
            ready_s = time.perf_counter() - started
            workers: dict[int, list[str]] = {}
            for model in MODELS:
                pid = httpx.get(f"{url}/v1/models/{model}", timeout=10).json()["worker_pid"]
                workers.setdefault(pid, []).append(model)
            idle = memory(proc.pid, workers)
            rates = throughput(url, requests, bursts, photo)
            loaded = memory(proc.pid, workers)
        finally:
            proc.terminate()
            proc.wait(60)
    return {"ready_s": ready_s, "idle": idle, "after_load": loaded, "req_per_s": rates, "worker_count": len(workers)}


def _print(name: str, run: dict[str, Any]) -> None:
    print(f"\n{name}: ready in {run['ready_s']:.1f} s, {run['worker_count']} worker process(es)")
    for label in ("idle", "after_load"):
        m = run[label]
        print(
            f"  {label:10}  deck PSS {m['deck_pss_mb']:7.0f} MiB   PSS {m['pss_mb']:7.0f} MiB   "
            f"USS {m['uss_mb']:7.0f} MiB   RSS {m['rss_mb']:7.0f} MiB"
        )
    print(f"    {'after the load, MiB':28}" + "".join(f"{kind:>13}" for kind in (*KINDS, "pss")))
    for row in run["after_load"]["kinds"]:
        print(f"    {row['role'][:28]:28}" + "".join(f"{row[kind]:13.1f}" for kind in (*KINDS, "pss")))
    print("  req/s " + "  ".join(f"{model} {rate:.1f}" for model, rate in run["req_per_s"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=None, help="the old checkout's src folder")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--requests", type=int, default=12, help="requests per model in each burst")
    parser.add_argument("--bursts", type=int, default=4, help="bursts per model; its best rate counts")
    parser.add_argument("--no-spawn-variant", action="store_true", help="leave out new code with spawned workers")
    args = parser.parse_args()
    variants: dict[str, tuple[Path, dict[str, str]]] = {}
    if args.baseline is not None:
        variants["old"] = (args.baseline.resolve(), {})
    variants["new"] = (HERE, {"MODELDECK_WORKER_START": "forkserver"})
    if not args.no_spawn_variant:
        variants["new-spawn"] = (HERE, {"MODELDECK_WORKER_START": "spawn"})
    photo = _photo()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))  # alternate, so drift hits all
        for name in order:
            pythonpath, env = variants[name]
            run = run_deck(pythonpath, env, args.requests, args.bursts, photo)
            runs[name].append(run)
            _print(f"{name} (round {round_ + 1})", run)
    summary: dict[str, dict[str, float]] = {}
    for name, done in runs.items():
        summary[name] = {
            "ready_s": statistics.median(r["ready_s"] for r in done),
            "deck_pss_idle_mb": statistics.median(r["idle"]["deck_pss_mb"] for r in done),
            "deck_pss_after_load_mb": statistics.median(r["after_load"]["deck_pss_mb"] for r in done),
            "pss_idle_mb": statistics.median(r["idle"]["pss_mb"] for r in done),
            "pss_after_load_mb": statistics.median(r["after_load"]["pss_mb"] for r in done),
            "rss_after_load_mb": statistics.median(r["after_load"]["rss_mb"] for r in done),
            **{f"{m}_req_per_s": statistics.median(r["req_per_s"][m] for r in done) for m in MODELS},
        }
    print(f"\nmedians of {args.rounds} round(s):")
    for name, s in summary.items():
        print(
            f"  {name:10} ready {s['ready_s']:5.1f} s  deck PSS idle {s['deck_pss_idle_mb']:6.0f} MiB, "
            f"after load {s['deck_pss_after_load_mb']:6.0f} MiB  (kernel PSS {s['pss_idle_mb']:6.0f} / "
            f"{s['pss_after_load_mb']:6.0f} MiB)  RSS after load {s['rss_after_load_mb']:6.0f} MiB"
        )
    if "old" in summary:
        old = summary["old"]
        for name, s in summary.items():
            if name == "old":
                continue
            rates = "  ".join(f"{m} {s[f'{m}_req_per_s'] / old[f'{m}_req_per_s']:.2f}x" for m in MODELS)
            print(
                f"  {name} / old: ready {s['ready_s'] / old['ready_s']:.2f}x, deck PSS after load "
                f"{s['deck_pss_after_load_mb'] / old['deck_pss_after_load_mb']:.2f}x, throughput {rates}"
            )
    print(f"  saved {save('deck_memory', {'rounds': args.rounds, 'summary': summary, 'runs': runs})}")


if __name__ == "__main__":
    main()
