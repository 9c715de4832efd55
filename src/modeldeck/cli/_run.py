"""``modeldeck run``: a task over a dataset (Parquet, CSV, JSON Lines, a folder), locally or on Spark."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import OptionError
from ._predict import parse_option

__all__ = ["add_run_parser", "parse_conf", "run_run"]


def add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a task over a dataset file or folder and write the results (resumable)",
        description="Run a task over every row of a dataset; output = input columns + result + error.",
    )
    run.add_argument("task", help="task name (ner, parse, embed), or a model name or path to run with its own task")
    run.add_argument("--input", required=True, help=".parquet, .csv, .jsonl file, or a folder of .txt/.md files")
    run.add_argument("--output", required=True, help="output path: a Parquet directory, or a .jsonl file")
    run.add_argument(
        "--column",
        help="input column holding the texts (implied for folders); for a tensor model, the input columns "
        "('features,mask') or one struct column (default: every column)",
    )
    run.add_argument("--model", help="model name, name@version or path (default: the task's default)")
    run.add_argument("--batch-size", type=int, default=32, help="items per model call (default 32)")
    run.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option (JSON value)"
    )
    run.add_argument("--format", choices=["parquet", "jsonl"], help="output format (default: from the extension)")
    run.add_argument("--chunk-rows", type=int, default=10_000, help="rows per committed output part (default 10000)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted job from its last commit")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    run.add_argument("--max-errors", type=int, help="stop once more rows than this have failed")
    run.add_argument("--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    run.add_argument("--engine", choices=["local", "spark"], default="local", help="where to run (default local)")
    run.add_argument("--master", help="Spark master URL, e.g. local[2] (--engine spark)")
    run.add_argument("--conf", action="append", default=[], metavar="K=V", help="Spark setting (repeatable)")


def parse_conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise OptionError(f"cannot read the Spark setting {text!r}", hint="write it as KEY=VALUE")
    return key, value


def run_run(args: argparse.Namespace) -> int:
    options = dict(parse_option(text) for text in args.option)
    if args.engine == "spark":
        return _run_spark(args, options)
    if args.master or args.conf:
        raise OptionError("--master and --conf apply to --engine spark only", hint="add --engine spark")
    from ..jobs._runner import run_job

    summary = run_job(
        args.task,
        args.input,
        args.output,
        column=args.column,
        model=args.model,
        batch_size=args.batch_size,
        options=options,
        output_format=args.format,
        resume=args.resume,
        overwrite=args.overwrite,
        max_errors=args.max_errors,
        progress=not args.quiet,
        chunk_rows=args.chunk_rows,
    )
    print(summary.describe())
    return 0


def _run_spark(args: argparse.Namespace, options: dict[str, Any]) -> int:
    if args.resume or args.max_errors is not None:
        raise OptionError("--resume and --max-errors apply to --engine local only", hint="leave them out with spark")
    from ..jobs._spark_job import run_spark_job

    summary = run_spark_job(
        args.task,
        args.input,
        args.output,
        column=args.column,
        model=args.model,
        options=options,
        master=args.master,
        conf=dict(parse_conf(text) for text in args.conf),
        overwrite=args.overwrite,
        output_format=args.format,
        batch_size=args.batch_size,
    )
    print(summary.describe())
    return 0
