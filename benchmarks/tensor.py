"""Tensor models you bring: served with batching on vs off, and modeldeck's per-item overhead at batch 32.

    python benchmarks/tensor.py served   [--duration 15] [--model mlp|resnet18|both]
    python benchmarks/tensor.py overhead [--rounds 30] [--threads 1]

``served``: a Keras MLP (``.keras``, torch backend) and a TorchScript resnet18 (random weights,
64x64 inputs so that a request body stays small), each behind ``modeldeck serve`` twice, with
adaptive batching and with ``--no-batching``, loaded by 32 concurrent clients in the same run.
``overhead``: ``task.run_batch`` on 32 examples (checks, casts, stacking, the framework call,
splitting, results) against the framework alone called on the same stacked batch
(``model.predict_on_batch``, the TorchScript module), best of several rounds. Results are
written to ``.bench/tensor-<what>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import best_times, save, server

from modeldeck.cli._bench import BenchReport, run_bench

CLIENTS = 32
BATCH = 32
RESNET_SIDE = 64


def build_mlp(folder: Path) -> Path:
    from modeldeck.runtimes.keras import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(64,), name="features")
    x = keras.layers.Dense(256, activation="relu")(inputs)
    x = keras.layers.Dense(256, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="probability")(x))
    path = folder / "mlp.keras"
    model.save(path)
    return path


def build_resnet18(folder: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    path = folder / "resnet18.ts"
    torch.jit.script(model).save(str(path))
    return path


def examples(model: str, n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    if model == "mlp":
        return [{"features": rng.normal(size=64).round(4).tolist()} for _ in range(n)]
    return [{"x": rng.random((3, RESNET_SIDE, RESNET_SIDE)).round(3).tolist()} for _ in range(n)]


def _bench(url: str, alias: str, duration: float, inputs: list[dict[str, Any]]) -> BenchReport:
    asyncio.run(run_bench(url, alias, concurrency=CLIENTS, duration=min(3.0, duration), texts=inputs))  # warm-up
    return asyncio.run(run_bench(url, alias, concurrency=CLIENTS, duration=duration, texts=inputs))  # type: ignore[arg-type]


def _row(name: str, report: BenchReport) -> dict[str, Any]:
    lat = report.latency_ms
    print(
        f"  {name:<22} {report.items_per_s:8.1f} items/s  p50 {lat['p50']:7.1f} ms  p95 {lat['p95']:7.1f} ms  "
        f"mean batch {report.mean_batch_size or 0:4.1f}  errors {sum(report.errors.values())}"
    )
    return report.to_dict()


def run_served(duration: float, which: str) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": CLIENTS, "duration_s": duration}
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("mlp", "resnet18") if which == "both" else (which,):
            path = build_mlp(Path(tmp)) if model == "mlp" else build_resnet18(Path(tmp))
            spec = f"{model}=tensor:{path}"
            inputs = examples(model, 64)
            print(f"served tensor {model} ({path.name}), {CLIENTS} clients, {duration:.0f} s per mode")
            with server(spec) as (url_on, _):
                on = _bench(url_on, model, duration, inputs)
            with server(spec, extra_args=("--no-batching",)) as (url_off, _):
                off = _bench(url_off, model, duration, inputs)
            out[model] = {"batching": _row("adaptive batching", on), "no_batching": _row("batching off", off)}
            ratio = on.items_per_s / max(off.items_per_s, 1e-9)
            out[model]["ratio"] = ratio
            print(f"  batching on / off: {ratio:.2f}x")
    return out


def _overhead(model: str, path: Path, rounds: int) -> dict[str, float]:
    import modeldeck

    task = modeldeck.load(str(path), batch_size=BATCH)
    options = task.default_options
    as_lists = examples(model, BATCH)
    as_arrays = [{k: np.asarray(v, dtype=np.float32) for k, v in e.items()} for e in as_lists]
    stacked = {k: np.stack([e[k] for e in as_arrays]) for k in as_arrays[0]}
    runtime = task.backend.runtime
    if model == "mlp":
        keras_model = runtime.model

        def direct() -> Any:
            return keras_model.predict_on_batch(stacked["features"])
    else:
        import torch

        module = runtime.module
        x = torch.from_numpy(stacked["x"])

        def direct() -> Any:
            with torch.inference_mode():
                return module(x)

    framework, arrays, lists = best_times(
        [
            direct,
            lambda: task.run_batch([(e, options) for e in as_arrays]),
            lambda: task.run_batch([(e, options) for e in as_lists]),
        ],
        rounds,
    )
    return {
        "framework_ms": 1000 * framework,
        "modeldeck_arrays_ms": 1000 * arrays,
        "modeldeck_json_lists_ms": 1000 * lists,
        "overhead_arrays": arrays / framework - 1,
        "overhead_json_lists": lists / framework - 1,
    }


def run_overhead(rounds: int, threads: int) -> dict[str, Any]:
    import torch

    # On a small shared machine torch's thread pool swings with whatever else runs; a fixed, small
    # pool makes the framework-only and modeldeck timings comparable.
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"batch": BATCH, "rounds": rounds, "torch_threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("mlp", "resnet18"):
            path = build_mlp(Path(tmp)) if model == "mlp" else build_resnet18(Path(tmp))
            row = out[model] = _overhead(model, path, rounds)
            print(
                f"{model}: framework {row['framework_ms']:.2f} ms per batch of {BATCH}; modeldeck run_batch "
                f"{row['modeldeck_arrays_ms']:.2f} ms from arrays (+{100 * row['overhead_arrays']:.1f}%), "
                f"{row['modeldeck_json_lists_ms']:.2f} ms from JSON lists (+{100 * row['overhead_json_lists']:.1f}%)"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["served", "overhead"])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--model", choices=["mlp", "resnet18", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for overhead (default 1)")
    args = parser.parse_args()
    if args.what == "served":
        data = run_served(args.duration, args.model)
    else:
        data = run_overhead(args.rounds, args.threads)
    print(f"saved {save(f'tensor-{args.what}', data)}")


if __name__ == "__main__":
    main()
