"""ONNX Runtime variants of all-MiniLM-L6-v2 against torch, measured side by side in one run.

    python benchmarks/optimize.py throughput [--texts 512] [--rounds 5]   # torch encode vs ONNX fp32 vs int8
    python benchmarks/optimize.py coldstart  [--rounds 3]                 # process start to first answer
    python benchmarks/optimize.py served     [--duration 20]              # embed@onnx and @int8 served vs raw torch
    python benchmarks/optimize.py static     [--rounds 3]                 # static (calibrated) vs dynamic int8
    python benchmarks/optimize.py fusion     [--rounds 3]                 # onnxruntime's transformer fusions
    python benchmarks/optimize.py detect     [--images 4] [--rounds 3]    # Faster R-CNN: torch vs its ONNX variant

Each command first makes the variants with ``modeldeck.optimize("embed", int8=True)`` in a
fresh store (under .bench/optimize-home, reused by later commands), so the int8 variant is the
best one inside the default budget. ``throughput`` times ``SentenceTransformer.encode(batch_size
=32)`` and the variants' own ``encode(batch_size=32)`` on the same sentences, interleaved round by
round (best round of each). ``coldstart`` runs ``modeldeck.load(...)("...")`` in fresh
interpreters, alternating torch and onnx. ``served`` serves ``embed@onnx``, then ``embed@int8``, and
loads each with 32 concurrent clients, against the raw torch encode measured in the same run.
``static`` quantizes the fp32 variant statically (QDQ, per-channel weights, activations calibrated
on a third of the built-in sample, MinMax and percentile) and compares it with dynamic per-channel
int8 on accuracy and speed: the measurement behind optimize making only dynamic int8 variants.
``fusion`` exports the encoder again with eager attention (the form onnxruntime's BERT fusions
recognise), fuses it (Attention, SkipLayerNormalization, BiasGelu) and times fp32 and per-channel
int8 (QAttention) with and without the fusions: the measurement behind optimize exporting plain
graphs. ``detect`` builds a random-weight Faster R-CNN ResNet-50 FPN at torchvision's own sizes
(shorter side 800, longer at most 1333), exports it with ``runtimes.onnx_export.
export_torchvision_detector`` (what ``modeldeck optimize detect`` stores), and times ``detect``
over the same 640 x 480 images through the torch back-end (one batch) and the ONNX one,
interleaved round by round (best round of each); it checks the two answer alike on those
images. Results go to .bench/optimize-<what>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, best_times, save, sentences, server

HOME = RESULTS / "optimize-home"


def variants() -> dict[str, Any]:
    """Make (or reuse) all-MiniLM-L6-v2@onnx and @int8 in HOME; the report of the run that made them."""
    import json

    from modeldeck import Settings, optimize

    report_file = HOME / "report.json"
    if report_file.is_file():
        return dict(json.loads(report_file.read_text()))
    report = optimize("embed", int8=True, timing_seconds=2.0, settings=Settings(home=HOME)).to_dict()
    report_file.write_text(json.dumps(report, indent=2))
    return report


def run_throughput(n: int, rounds: int) -> dict[str, Any]:
    from modeldeck import Settings, load

    report = variants()
    stored = {v["kind"]: v for v in report["variants"] if v["stored"]}
    settings = Settings(home=HOME)
    torch_model = load("embed", settings=settings).runtime.model  # the SentenceTransformer itself
    onnx = load("embed", model="all-MiniLM-L6-v2@onnx", settings=settings).runtime
    texts = sentences(n)
    fns = {
        "torch encode(bs=32)": lambda: torch_model.encode(texts, batch_size=32),
        "onnx fp32": lambda: onnx.encode(texts, batch_size=32),
    }
    if "int8" in stored:
        int8 = load("embed", model="all-MiniLM-L6-v2@int8", settings=settings).runtime
        fns[f"onnx int8 ({stored['int8']['name']})"] = lambda: int8.encode(texts, batch_size=32)
    times = best_times(list(fns.values()), rounds)
    rates = {name: n / t for name, t in zip(fns, times, strict=True)}
    base = rates["torch encode(bs=32)"]
    print(f"all-MiniLM-L6-v2, {n} sentences, batch 32, best of {rounds} interleaved rounds")
    for name, rate in rates.items():
        print(f"  {name:<40} {rate:8.1f} sentences/s  {rate / base:5.2f}x torch")
    if "int8" in stored:
        acc = stored["int8"]["accuracy"]
        print(
            f"  int8 accuracy on the built-in sample: cosine mean {acc['cosine_mean']:.4f}, min {acc['cosine_min']:.4f}"
        )
    return {"sentences": n, "rounds": rounds, "items_per_s": rates, "ratios": {k: v / base for k, v in rates.items()}}


def _first_answer(model: str) -> float:
    code = f"import modeldeck\nmodeldeck.load('embed', model={model!r})('The first answer after a cold start.')"
    env = {**os.environ, "MODELDECK_HOME": str(HOME)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run_coldstart(rounds: int) -> dict[str, Any]:
    variants()
    models = {"torch": "all-MiniLM-L6-v2", "onnx": "all-MiniLM-L6-v2@onnx"}
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(_first_answer(model))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"cold start, process start to first embed answer, median of {rounds} (alternating)")
    for name in models:
        print(f"  {name:<6} {med[name]:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"  onnx / torch: {med['onnx'] / med['torch']:.2f}x the time")
    return {"seconds": times, "median": med, "onnx_over_torch": med["onnx"] / med["torch"]}


def run_served(duration: float) -> dict[str, Any]:
    from serving import CONCURRENCY, bench, raw_embed

    stored = {v["kind"] for v in variants()["variants"] if v["stored"]}
    texts = sentences(1024)
    raw = raw_embed(texts)
    print(f"served, {CONCURRENCY} clients, {duration:.0f} s each")
    print(f"  raw torch encode(bs=32)  {raw:8.1f} items/s")
    result: dict[str, Any] = {"raw_torch_items_per_s": raw}
    for version in ("onnx", "int8") if "int8" in stored else ("onnx",):
        model = f"embed@{version}"
        with server(model, env={"MODELDECK_HOME": str(HOME)}) as (url, _):
            served = bench(url, model, duration, texts)
        lat = served.latency_ms
        print(
            f"  served {model:<17} {served.items_per_s:8.1f} items/s  ({served.items_per_s / raw:5.2f}x raw torch)  "
            f"p50 {lat['p50']:6.1f} ms  p99 {lat['p99']:6.1f} ms  errors {served.errors or 0}"
        )
        result[model] = {"served": served.to_dict(), "served_over_raw_torch": served.items_per_s / raw}
    return result


def run_static(rounds: int) -> dict[str, Any]:
    import shutil
    from types import SimpleNamespace

    import numpy as np
    from onnxruntime import quantization as q

    from modeldeck import Settings, load
    from modeldeck.optimizing._compare import COMPARE
    from modeldeck.optimizing._sample import builtin_texts
    from modeldeck.runtimes import onnx_export
    from modeldeck.runtimes.onnx_text import OnnxSentenceEncoder

    variants()
    fp32 = Path(load("embed", model="all-MiniLM-L6-v2@onnx", settings=Settings(home=HOME)).info.path)
    encoder = OnnxSentenceEncoder.load(fp32)
    texts = builtin_texts()

    class Calibration(q.CalibrationDataReader):  # type: ignore[misc]
        """A third of the sample, 16 texts a batch, padded to 128 tokens (percentile needs one shape)."""

        def __init__(self) -> None:
            rows = [encoder.wrap(encoder.tokenize(t).ids[:126].tolist()) for t in texts[::3]]
            self.feeds = []
            for start in range(0, len(rows) - 15, 16):
                ids = np.zeros((16, 128), dtype=np.int64)
                for j, row in enumerate(rows[start : start + 16]):
                    ids[j, : len(row)] = row
                self.feeds.append(
                    {
                        "input_ids": ids,
                        "attention_mask": (ids != 0).astype(np.int64),
                        "token_type_ids": np.zeros_like(ids),
                    }
                )
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

        def rewind(self) -> None:
            self.it = iter(self.feeds)

    work = HOME / "static"
    shutil.rmtree(work, ignore_errors=True)
    folders = {"dynamic per-channel": work / "dynamic"}
    onnx_export.quantize_int8(fp32, folders["dynamic per-channel"], per_channel=True)
    for label, method in (
        ("static minmax", q.CalibrationMethod.MinMax),
        ("static percentile", q.CalibrationMethod.Percentile),
    ):
        out = work / label.split()[1]
        shutil.copytree(fp32, out, ignore=shutil.ignore_patterns("model.onnx"))
        q.quantize_static(
            str(fp32 / "model.onnx"),
            str(out / "model.onnx"),
            Calibration(),
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=onnx_export.matmul_nodes(fp32 / "model.onnx"),
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=method,
            extra_options={"CalibPercentile": 99.99},
        )
        folders[label] = out
    encoders = {"fp32": encoder, **{k: OnnxSentenceEncoder.load(f) for k, f in folders.items()}}
    reference = [SimpleNamespace(vector=v) for v in encoder.encode(texts, batch_size=32)]  # what COMPARE reads
    bench_texts = sentences(512)
    times = best_times([lambda e=e: e.encode(bench_texts, batch_size=32) for e in encoders.values()], rounds)
    result: dict[str, Any] = {}
    print(f"int8 of all-MiniLM-L6-v2: accuracy on the built-in sample, 512 sentences at batch 32, best of {rounds}")
    for (name, enc), t in zip(encoders.items(), times, strict=True):
        vectors = [SimpleNamespace(vector=v) for v in enc.encode(texts, batch_size=32)]
        figures = COMPARE["embed"](reference, vectors)
        result[name] = {**figures, "items_per_s": len(bench_texts) / t, "over_fp32": times[0] / t}
        print(
            f"  {name:<20} cosine mean {figures['cosine_mean']:.4f} min {figures['cosine_min']:.4f}  "
            f"{len(bench_texts) / t:7.1f}/s  {times[0] / t:5.2f}x fp32"
        )
    shutil.rmtree(work, ignore_errors=True)
    return result


def run_fusion(rounds: int) -> dict[str, Any]:
    import shutil

    import numpy as np
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    from modeldeck import Settings, load
    from modeldeck.runtimes import onnx_export
    from modeldeck.runtimes.onnx_text import OnnxSentenceEncoder

    variants()
    settings = Settings(home=HOME)
    plain = Path(load("embed", model="all-MiniLM-L6-v2@onnx", settings=settings).info.path)
    model = load("embed", settings=settings).runtime.model  # the SentenceTransformer
    model[0].auto_model.set_attn_implementation("eager")
    names = tuple(
        n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model.tokenizer.model_input_names
    )

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model  # a submodule, so the trace takes its weights as initializers

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    work = HOME / "fusion"
    shutil.rmtree(work, ignore_errors=True)
    folders = {"fp32 plain": plain, "fp32 eager": work / "eager", "fp32 eager fused": work / "fused"}
    shutil.copytree(plain, folders["fp32 eager"], ignore=shutil.ignore_patterns("model.onnx"))
    onnx_export._export(
        Encoder().eval(),
        onnx_export._sample_inputs(model.tokenizer, names),
        names,
        ("sentence_embedding",),
        folders["fp32 eager"] / "model.onnx",
    )
    shutil.copytree(folders["fp32 eager"], folders["fp32 eager fused"], ignore=shutil.ignore_patterns("model.onnx"))
    config = model[0].auto_model.config
    fused = optimize_model(
        str(folders["fp32 eager"] / "model.onnx"),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    counts = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(folders["fp32 eager fused"] / "model.onnx"))
    folders["int8 plain"] = work / "int8-plain"
    onnx_export.quantize_int8(plain, folders["int8 plain"], per_channel=True)
    folders["int8 fused (QAttention)"] = work / "int8-fused"
    onnx_export.quantize_int8(
        folders["fp32 eager fused"], work / "int8-fused", per_channel=True, op_types=("MatMul", "Gemm", "Attention")
    )
    encoders = {k: OnnxSentenceEncoder.load(f) for k, f in folders.items()}
    texts = sentences(512)
    reference = encoders["fp32 plain"].encode(texts, batch_size=32)
    times = best_times([lambda e=e: e.encode(texts, batch_size=32) for e in encoders.values()], rounds)
    print(f"onnxruntime fusions of all-MiniLM-L6-v2 ({counts}); 512 sentences at batch 32, best of {rounds}")
    result: dict[str, Any] = {"fused_operators": counts}
    for (name, enc), t in zip(encoders.items(), times, strict=True):
        out = enc.encode(texts, batch_size=32)
        cos = float(((out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)).min())
        result[name] = {"items_per_s": len(texts) / t, "over_plain_fp32": times[0] / t, "cosine_min": cos}
        print(f"  {name:<26} {len(texts) / t:7.1f}/s  {times[0] / t:5.2f}x plain fp32  cosine min {cos:.4f}")
    shutil.rmtree(work, ignore_errors=True)
    return result


def run_detect(count: int, rounds: int) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from modeldeck import ModelStore, Settings, load
    from modeldeck.optimizing._compare import COMPARE
    from modeldeck.optimizing._sample import builtin_scenes
    from modeldeck.runtimes.onnx_export import export_torchvision_detector
    from modeldeck.runtimes.torchvision import build_model, save_model_folder

    home, arch = HOME / "detect", "fasterrcnn_resnet50_fpn"
    settings = Settings(home=home)
    store = ModelStore(settings)
    if not (home / "onnx" / "model.onnx").is_file():
        import torch

        torch.manual_seed(0)
        folder = save_model_folder(build_model(arch, 91), home / "src", architecture=arch)
        export_torchvision_detector(folder, {}, home / "onnx")
        store.import_model(folder, "bench-frcnn", version="1")
        store.import_model(home / "onnx", "bench-frcnn", version="onnx", tasks=("detect",), runtime="onnxruntime")
    torch_task = load("detect", model="bench-frcnn@1", settings=settings)
    onnx_task = load("detect", model="bench-frcnn@onnx", settings=settings)
    images = [np.asarray(Image.fromarray(s).resize((640, 480))) for s in builtin_scenes(count, seed=2)]
    reference = torch_task(images, confidence=0.05)
    agreement = COMPARE["detect"](reference, onnx_task(images, confidence=0.05))
    agreement["boxes"] = sum(len(r) for r in reference)
    fns = {"torch": lambda: torch_task(images), "onnx": lambda: onnx_task(images)}
    times = best_times(list(fns.values()), rounds)
    rates = {name: count / t for name, t in zip(fns, times, strict=True)}
    load_average = os.getloadavg()[0]
    print(f"{arch} (random weights, 800 / 1333), {count} images of 640 x 480, best of {rounds} interleaved rounds")
    print(f"  torch detect (one batch)    {rates['torch']:6.2f} images/s")
    print(f"  onnx detect (image by image) {rates['onnx']:6.2f} images/s  {rates['onnx'] / rates['torch']:5.2f}x torch")
    print(f"  agreement at confidence 0.05: {agreement}; load average {load_average:.1f}")
    return {
        "images": count,
        "rounds": rounds,
        "images_per_s": rates,
        "onnx_over_torch": rates["onnx"] / rates["torch"],
        "agreement": agreement,
        "load_average": load_average,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "coldstart", "served", "static", "fusion", "detect"])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    HOME.mkdir(parents=True, exist_ok=True)
    if args.what == "throughput":
        result = run_throughput(args.texts, args.rounds or 5)
    elif args.what == "detect":
        result = run_detect(args.images, args.rounds or 3)
    elif args.what == "coldstart":
        result = run_coldstart(args.rounds or 3)
    elif args.what == "fusion":
        result = run_fusion(args.rounds or 3)
    elif args.what == "static":
        result = run_static(args.rounds or 3)
    else:
        result = run_served(args.duration)
    print(f"saved {save(f'optimize-{args.what}', result)}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
