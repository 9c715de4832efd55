"""``modeldeck optimize``: ONNX and int8 variants of a model, verified against it, timed, stored when good."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..optimizing import OptimizeReport

__all__ = ["add_parser", "run_optimize"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    opt = commands.add_parser(
        "optimize",
        help="export a model to ONNX (and int8), verify it against the original, store the good variants",
        description="Export the model to ONNX Runtime, optionally quantize it to int8, compare every variant "
        "with the original on --calibration texts (or a built-in varied sample), time it at batch 1 and 32, "
        "and store the variants inside the accuracy budget as NAME@onnx and NAME@int8.",
    )
    opt.add_argument(
        "task",
        choices=["embed", "classify", "ner", "qa", "classify-image", "detect"],
        help="the task the model serves",
    )
    opt.add_argument("--model", help="model name, name@version or path (default: the task's default model)")
    opt.add_argument("--int8", action="store_true", help="also try int8 quantization (dynamic, per-channel, ...)")
    opt.add_argument(
        "--calibration",
        help="texts to verify on: .txt (one a line), .csv, .jsonl or .parquet; classify-image, detect: a folder "
        "of images",
    )
    opt.add_argument("--text-column", help="column of --calibration holding the text (default: text)")
    opt.add_argument("--min-cosine-mean", type=float, help="embed: least mean cosine to the original (default 0.99)")
    opt.add_argument("--min-cosine", type=float, help="embed: least cosine of any text (default 0.97)")
    opt.add_argument(
        "--min-agreement",
        type=float,
        help="classify/ner/qa/classify-image: least agreement; detect: least share of images whose "
        "box sets agree (default 0.99)",
    )
    opt.add_argument(
        "--min-iou",
        type=float,
        help="detect: least IoU of a variant's box with the original's it matches (default 0.99)",
    )
    opt.add_argument("--seconds", type=float, default=3.0, help="seconds each timing runs (default 3)")
    opt.add_argument("--dry-run", action="store_true", help="measure and report, store nothing")
    opt.add_argument("--json", action="store_true", help="print the report as JSON")
    opt.set_defaults(handler="modeldeck.cli._optimize:run_optimize")


def run_optimize(args: argparse.Namespace) -> int:
    from ..optimizing import optimize

    budget: dict[str, Any] = {}
    for flag, key in (
        ("min_cosine_mean", "cosine_mean"),
        ("min_cosine", "cosine_min"),
        ("min_agreement", "agreement"),
        ("min_iou", "iou_min"),
    ):
        if getattr(args, flag) is not None:
            budget[key] = getattr(args, flag)
    report = optimize(
        args.task,
        model=args.model,
        int8=args.int8,
        calibration=args.calibration,
        text_column=args.text_column,
        budget=budget,
        timing_seconds=args.seconds,
        register=not args.dry_run,
        progress=True,  # on stderr: --json output stays clean
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _render(report)
    return 0


def _render(report: OptimizeReport) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{report.task}: {report.model}, verified on {report.sample}")
    for column in ("variant", "batch 1 ms", "batch 32 /s", "speed-up", "accuracy vs original", "size MB", "verdict"):
        table.add_column(
            column, justify="left" if column in ("variant", "accuracy vs original", "verdict") else "right"
        )
    for v in report.variants:
        accuracy = ", ".join(f"{k} {x:.4f}" for k, x in v.accuracy.items()) or "-"
        if v.accepted is None:
            verdict = "reference"
        elif v.stored:
            verdict = f"[green]stored as {escape(v.stored)}[/]"
        elif v.accepted:
            verdict = f"[green]accepted[/]: {escape(v.reason)}"
        else:
            verdict = f"[red]refused[/]: {escape(v.reason)}"
        table.add_row(
            escape(v.name),
            f"{v.latency_ms:.1f}",
            f"{v.throughput:.1f}",
            f"{v.speedup:.2f}x",
            accuracy,
            f"{v.size_bytes / 1e6:.1f}",
            verdict,
        )
    Console().print(table)
