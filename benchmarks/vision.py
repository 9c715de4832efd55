"""Vision benchmarks, each measured side by side in one run.

    python benchmarks/vision.py served [--duration 20] [--imgsz 320] [--width 16]
        served detect on a random-weight YOLO-shaped ONNX graph, 16 clients posting base64 JPEGs
        (real photos from scikit-image): adaptive batching vs --no-batching, next to the raw
        onnxruntime rate of the same graph at batch 1 and at batch 8. Both servers run at once
        (the idle one sleeps) and are measured in alternating rounds, so drift in the machine's
        load hits both modes alike.
    python benchmarks/vision.py preprocess [--rounds 5] [--batch 8] [--pre-width 20]
        YOLO ONNX preprocessing (letterbox, batch tensor) and decoding (NMS, boxes back to the
        original image; masks for the -seg graph) as a fraction of the model's own forward time,
        at batch 8, on a random-weight YOLO-sized graph (640x640 in, [8, 84, 8400] out).

Results are printed with their ratios and written to .bench/vision-<what>.json. Wall-clock rates
on a shared machine depend on its other load; the server's CPU milliseconds per image (server
process and model worker, from /proc) do not, so both are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import _descendants, save, server

from modeldeck.cli._bench import BenchReport, run_bench

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/vision/yolo_graphs.py builds the graphs

SERVED_CLIENTS = 16


def _photos() -> list[bytes]:
    """JPEG bytes of four real photographs of different sizes, as a camera or browser would send them."""
    import skimage.data
    from PIL import Image

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        buf = io.BytesIO()
        Image.fromarray(getattr(skimage.data, name)()).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _raw_rate(path: Path, imgsz: int, batch: int, seconds: float = 5.0) -> float:
    """Images per second of the bare onnxruntime session (the same options the runtime uses)."""
    import numpy as np

    from modeldeck.runtimes.onnx import OnnxRuntime

    runtime = OnnxRuntime.load(path)
    session = runtime.session
    x = np.random.default_rng(0).random((batch, 3, imgsz, imgsz), dtype=np.float32)
    session.run(None, {"images": x})
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        session.run(None, {"images": x})
        n += batch
    return n / (time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (the server and its model worker)."""
    total = 0
    for p in (pid, *_descendants(pid)):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _bench(url: str, pid: int, duration: float, inputs: list[str]) -> tuple[BenchReport, float]:
    """One round, and the server's CPU seconds spent in it (unlike wall time, immune to other load)."""
    before = _cpu_seconds(pid)
    report = asyncio.run(run_bench(url, "detect", concurrency=SERVED_CLIENTS, duration=duration, texts=inputs))
    return report, _cpu_seconds(pid) - before


def _row(name: str, rounds: list[tuple[BenchReport, float]], baseline: float) -> dict[str, Any]:
    reports = [r for r, _ in rounds]
    cpu_ms = 1000 * sum(c for _, c in rounds) / max(1, sum(r.items for r in reports))
    rate = sum(r.items for r in reports) / sum(r.seconds for r in reports)
    p50 = sorted(r.latency_ms["p50"] for r in reports)[len(reports) // 2]
    p95 = max(r.latency_ms["p95"] for r in reports)
    batch = sum((r.mean_batch_size or 0.0) for r in reports) / len(reports)
    errors = sum(sum(r.errors.values()) for r in reports)
    per_round = " ".join(f"{r.items_per_s:.1f}" for r in reports)
    print(
        f"  {name:<24} {rate:7.1f} img/s  ({rate / baseline:5.2f}x raw bs=1)  p50 {p50:7.1f} ms  "
        f"p95 {p95:7.1f} ms  mean batch {batch:4.1f}  server CPU {cpu_ms:5.1f} ms/img  errors {errors}  "
        f"(rounds: {per_round})"
    )
    return {"img_per_s": rate, "cpu_ms_per_img": cpu_ms, "p50_ms": p50, "p95_ms": p95, "mean_batch_size": batch,
            "errors": errors, "rounds": [r.to_dict() for r in reports]}  # fmt: skip


def run_served(duration: float, imgsz: int, width: int, rounds: int = 4) -> dict[str, Any]:
    from tests.vision.yolo_graphs import COCO, conv_graph, ultralytics_metadata

    with tempfile.TemporaryDirectory() as tmp:
        path, flops = conv_graph(
            Path(tmp) / "yolo-random.onnx",
            imgsz=imgsz,
            width=width,
            metadata=ultralytics_metadata(dict(enumerate(COCO)), (imgsz, imgsz)),
        )
        raw1, raw8 = _raw_rate(path, imgsz, 1), _raw_rate(path, imgsz, 8)
        inputs = [base64.b64encode(photo).decode("ascii") for photo in _photos()]
        print(
            f"served detect, {SERVED_CLIENTS} clients, {duration:.0f} s per mode in {rounds} rounds; "
            f"random-weight YOLO-shaped graph at {imgsz}x{imgsz} ({flops / 1e9:.2f} GFLOP/image), "
            "base64 JPEG photos 451x300 to 640x427"
        )
        print(f"  {'raw onnxruntime bs=1':<24} {raw1:7.1f} img/s")
        print(f"  {'raw onnxruntime bs=8':<24} {raw8:7.1f} img/s  ({raw8 / raw1:5.2f}x raw bs=1)")
        spec = f"detect:{path}"
        adaptive: list[tuple[BenchReport, float]] = []
        unbatched: list[tuple[BenchReport, float]] = []
        with server(spec) as (url_a, pid_a), server(spec, extra_args=("--no-batching",)) as (url_b, pid_b):
            _bench(url_a, pid_a, 3.0, inputs)  # warm-up
            _bench(url_b, pid_b, 3.0, inputs)
            for _ in range(rounds):
                adaptive.append(_bench(url_a, pid_a, duration / rounds, inputs))
                unbatched.append(_bench(url_b, pid_b, duration / rounds, inputs))
    result = {
        "imgsz": imgsz,
        "gflop_per_image": flops / 1e9,
        "clients": SERVED_CLIENTS,
        "raw_bs1_img_per_s": raw1,
        "raw_bs8_img_per_s": raw8,
        "adaptive": _row("served, adaptive", adaptive, raw1),
        "no_batching": _row("served, no batching", unbatched, raw1),
        "raw_bs8_over_bs1": raw8 / raw1,
    }
    result["adaptive_over_no_batching"] = result["adaptive"]["img_per_s"] / result["no_batching"]["img_per_s"]
    result["cpu_efficiency_adaptive_over_no_batching"] = (
        result["no_batching"]["cpu_ms_per_img"] / result["adaptive"]["cpu_ms_per_img"]
    )
    print(
        f"  adaptive / no batching: {result['adaptive_over_no_batching']:.2f}x img/s, "
        f"{result['cpu_efficiency_adaptive_over_no_batching']:.2f}x images per CPU second   "
        f"(the graph alone, bs=8 / bs=1: {result['raw_bs8_over_bs1']:.2f}x)"
    )
    return result


def _preprocess_one(task: Any, images: list[Any], rounds: int, options: Any) -> dict[str, float]:
    """Best-of-``rounds`` seconds per batch of each stage of ``task`` over ``images``; the model call timed alone.

    The best round is the one least disturbed by other processes; the stages are timed in the
    same rounds, so their ratio to the model is measured side by side.
    """
    detector, runtime = task.detector, task.detector.runtime
    run, model_times = runtime.run, []

    def timed_run(feeds: Any, outputs: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return run(feeds, outputs)
        finally:
            model_times.append(time.perf_counter() - started)

    runtime.run = timed_run
    stages: dict[str, list[float]] = {"prepare": [], "stack": [], "model": [], "decode": [], "postprocess": []}
    try:
        for i in range(rounds + 1):  # the first round warms the session up and is dropped
            t0 = time.perf_counter()
            prepared = [task.prepare(image, options) for image in images]
            t1 = time.perf_counter()
            raws = task.forward(prepared)
            t2 = time.perf_counter()
            decoded = [detector.decode(raw, p.data, options, None) for raw, p in zip(raws, prepared, strict=True)]
            t3 = time.perf_counter()
            for raw, p in zip(raws, prepared, strict=True):
                task.postprocess(raw, p, options)
            t4 = time.perf_counter()
            if i:
                model = model_times[-1]
                for name, value in (("prepare", t1 - t0), ("stack", t2 - t1 - model), ("model", model),
                                    ("decode", t3 - t2), ("postprocess", t4 - t3)):  # fmt: skip
                    stages[name].append(value)
    finally:
        runtime.run = run
    out = {k: min(v) for k, v in stages.items()}
    out["kept_per_image"] = sum(len(d.score) for d in decoded) / len(images)
    return out


def run_preprocess(rounds: int, batch: int, width: int) -> dict[str, Any]:
    from tests.vision.yolo_graphs import conv_graph

    from modeldeck.images import load_image
    from modeldeck.tasks.detect import DetectTask, SegmentTask
    from modeldeck.types import ModelInfo

    photos = (_photos() * batch)[:batch]
    started = time.perf_counter()
    images = [load_image(photo) for photo in photos]
    jpeg_decode = time.perf_counter() - started
    sizes = sorted({image.size for image in images})
    print(
        f"YOLO ONNX pre/post-processing vs the model's forward, batch {batch}, best of {rounds} rounds; "
        f"photos {', '.join(f'{w}x{h}' for w, h in sizes)}"
    )
    result: dict[str, Any] = {"batch": batch, "rounds": rounds, "jpeg_decode_s": jpeg_decode}
    cases = (
        ("detect", DetectTask, False, {}),
        ("segment", SegmentTask, True, {}),
        ("segment, max_detections=30", SegmentTask, True, {"max_detections": 30}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, task_cls, seg, options in cases:
            kind = task_cls.name
            path, flops = conv_graph(Path(tmp) / f"yolo-{kind}.onnx", imgsz=640, width=width, seg=seg)
            info = ModelInfo(name=f"yolo-{kind}", version="1", tasks=(kind,), runtime="onnxruntime", path=path)
            task = task_cls.from_model(info, batch_size=batch)
            shape = "x".join(str(d) for d in (batch, *task.detector.runtime.outputs[0].shape[1:]))
            t = _preprocess_one(task, images, rounds, task.parse_options(options))
            overhead = t["prepare"] + t["stack"] + t["decode"]
            row = {**t, "gflop_per_image": flops / 1e9, "overhead_over_model": overhead / t["model"]}
            result[label] = row
            kept, extra = t["kept_per_image"], " and mask RLE" if seg else ""
            print(
                f"  {label}: graph {flops / 1e9:.1f} GFLOP/image, output [{shape}], {kept:.0f} kept/image\n"
                f"    model {t['model'] * 1e3:7.1f} ms | letterbox {t['prepare'] * 1e3:5.1f} ms  batch tensor "
                f"{t['stack'] * 1e3:5.1f} ms  decode {t['decode'] * 1e3:6.1f} ms"
                f" = {overhead / t['model'] * 100:5.1f}% of the model"
                f"   (postprocess incl. result objects{extra}: {t['postprocess'] * 1e3:.1f} ms)"
            )
    print(f"  (decoding the {batch} JPEGs, common to every image task: {jpeg_decode * 1e3:.1f} ms)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["served", "preprocess"])
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per served mode, over 4 rounds")
    parser.add_argument("--imgsz", type=int, default=320, help="model input side (YOLO exports use 640)")
    parser.add_argument("--width", type=int, default=16, help="base channel width of the random graph")
    parser.add_argument("--rounds", type=int, default=5, help="preprocess: timed rounds (median reported)")
    parser.add_argument("--batch", type=int, default=8, help="preprocess: images per batch")
    parser.add_argument("--pre-width", type=int, default=20, help="preprocess: graph width (20: ~6.9 GFLOP/image)")
    args = parser.parse_args()
    if args.what == "preprocess":
        result = run_preprocess(args.rounds, args.batch, args.pre_width)
    else:
        result = run_served(args.duration, args.imgsz, args.width)
    print(f"  saved {save(f'vision-{args.what}', result)}")


if __name__ == "__main__":
    main()
