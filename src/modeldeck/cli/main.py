"""The ``modeldeck`` command: argument parsing here, each command's work in its own module.

Only the standard library is imported until a command runs, so ``modeldeck --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import (
    ConfigError,
    DependencyError,
    InputError,
    JobError,
    ModelDeckError,
    NotFoundError,
    ServiceError,
    StoreError,
    did_you_mean,
)

__all__ = ["exit_code", "main"]

# Exit codes: 0 ok, 1 unexpected, 2 bad usage or input (incl. job output exists, too many bad rows),
# 3 store, 4 missing dependency, 5 service.
_EXIT_CODES: tuple[tuple[type[ModelDeckError], int], ...] = (
    (ConfigError, 2),
    (InputError, 2),
    (JobError, 2),
    (NotFoundError, 2),
    (StoreError, 3),
    (DependencyError, 4),
    (ServiceError, 5),
)


def exit_code(exc: ModelDeckError) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modeldeck",
        description="Pre-trained models behind one typed task API: predict, serve, manage models, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"modeldeck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    predict = commands.add_parser("predict", help="run a task on inputs and print the results")
    predict.add_argument("task", help="task name (ner, parse, embed) or a model name or path")
    predict.add_argument("inputs", nargs="*", metavar="INPUT", help="texts; '-' reads one input per line from stdin")
    predict.add_argument("--model", help="model name, name@version or path (default: the task's default)")
    predict.add_argument("--file", help="read inputs from a file, one per line")
    predict.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option (JSON value)"
    )
    predict.add_argument("--json", action="store_true", help="print the outputs as JSON, as the server does")
    predict.add_argument("--question", help="qa: the question (the context comes from --context or --context-file)")
    predict.add_argument("--context", help="qa: the context text")
    predict.add_argument("--context-file", help="qa: read the context from this UTF-8 file")
    predict.add_argument("--save", metavar="PATH", help="image tasks: save the input drawn with its results here")

    from ._run import add_run_parser

    add_run_parser(commands)
    # Commands defined in their own modules: each adds its parser and sets ``handler``
    # ("module:function") that ``main`` imports only when the command runs.
    from . import _ask, _chat, _eval, _faces, _finetune, _optimize

    for module in (_eval, _faces, _chat, _ask, _finetune, _optimize):
        module.add_parser(commands)

    serve = commands.add_parser("serve", help="serve models over HTTP with adaptive batching")
    serve.add_argument("--models", help="comma-separated specs: TASK, MODEL, TASK:MODEL, ALIAS=TASK:MODEL")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--max-batch-size", type=int, help="largest batch per model (default 32)")
    serve.add_argument("--max-wait-ms", type=float, help="longest wait to fill a batch (default 10)")
    serve.add_argument("--no-batching", action="store_true", help="one request per model call (for comparison)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--allow-failed-models",
        action="store_true",
        help="serve the models that load when others fail (default: exit with the error)",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="require this bearer key on every route but health and metrics (repeatable; see MODELDECK_API_KEYS)",
    )
    serve.add_argument("--api-key-file", help="read more keys from this file, one per line")
    serve.add_argument(
        "--max-queue-wait-ms", help="refuse (429) requests expected to wait longer: MS, or MS,NAME=MS per model"
    )
    serve.add_argument("--onnx-threads", help="intra-op threads of each ONNX Runtime session: N, or N,NAME=N per model")
    serve.add_argument(
        "--onnx-graph-level",
        help="ONNX Runtime graph optimisation (disable, basic, extended, all): LEVEL, or LEVEL,NAME=LEVEL per model",
    )
    serve.add_argument(
        "--prefer-variant",
        help="onnx: serve a model's verified fp32 ONNX variant (NAME@onnx) where the deck names no version",
    )

    models = commands.add_parser("models", help="list, show, pull, import, remove and verify models")
    verbs = models.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="every model in the catalog and the store")
    listing.add_argument("--task", help="only the models that serve this task")
    listing.add_argument("--json", action="store_true", help="print every field as JSON")
    show = verbs.add_parser("show", help="one model's entry, card and installed versions")
    show.add_argument("name")
    pull = verbs.add_parser("pull", help="download a model into the store (verified, resumable)")
    pull.add_argument("name")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    pull.add_argument("--force", action="store_true", help="fetch again even if installed (after a failed check)")
    imp = verbs.add_parser("import", help="import a local file or directory as a named model version")
    imp.add_argument("path")
    imp.add_argument("--name", required=True)
    imp.add_argument("--version", dest="model_version")
    imp.add_argument("--task", action="append", dest="tasks", help="task(s) it serves (default: inferred)")
    imp.add_argument("--runtime", help="runtime that reads it (default: inferred)")
    remove = verbs.add_parser("remove", help="remove a model (NAME or NAME@VERSION) from the store")
    remove.add_argument("name")
    verify = verbs.add_parser("verify", help="check every file of a model against its recorded sha256")
    verify.add_argument("name")

    bench = commands.add_parser("bench", help="load-test a running server and report throughput and latency")
    bench.add_argument("--url", default="http://127.0.0.1:8000")
    bench.add_argument("--model", required=True, help="served model name")
    bench.add_argument("--concurrency", type=int, default=32)
    limit = bench.add_mutually_exclusive_group()
    limit.add_argument("--duration", type=float, help="seconds to run (default 10)")
    limit.add_argument("--requests", type=int, help="number of requests to send")
    bench.add_argument("--input", action="append", dest="texts", help="input text (repeatable)")
    bench.add_argument("--input-file", help="inputs, one per line")
    bench.add_argument(
        "--image", action="append", dest="images", metavar="FILE", help="image file sent base64-encoded (repeatable)"
    )
    bench.add_argument("--items-per-request", type=int, default=1)
    bench.add_argument("--api-key", help="bearer key for a server that needs one (default: $MODELDECK_API_KEY)")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parse_args``, except that inputs may also follow options: ``predict ner --model X "text"``.

    argparse fills a ``nargs`` list positional once, before the options, and rejects what comes
    after; ``parse_intermixed_args`` would fix that but does not work with sub-commands.
    """
    args, extras = parser.parse_known_args(argv)
    if extras and isinstance(getattr(args, "folder", None), list):
        args.folder.extend(x for x in extras if not x.startswith("-"))
        extras = [x for x in extras if x.startswith("-")]
    if extras and isinstance(getattr(args, "inputs", None), list):
        args.inputs.extend(x for x in extras if x == "-" or not x.startswith("-"))
        extras = [x for x in extras if x != "-" and x.startswith("-")]
    if extras:
        hint = did_you_mean(extras[0].split("=")[0], _flags_of(parser, args)) if extras[0].startswith("--") else ""
        parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
    return args


def _flags_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The option strings of the sub-command that ran (argparse keeps its actions in ``_actions``)."""
    flags: list[str] = []
    current = parser
    for dest in ("command", "verb"):
        sub = next((a for a in current._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, dest, None)
        if sub is None or name not in sub.choices:
            break
        current = sub.choices[name]
    for action in current._actions:
        flags += [flag for flag in action.option_strings if flag.startswith("--")]
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = _parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "predict":
            from ._predict import run_predict

            return run_predict(args)
        if args.command == "run":
            from ._run import run_run

            return run_run(args)
        if args.command == "serve":
            from ._serve import run_serve

            return run_serve(args)
        if args.command == "models":
            from ._models import run_models

            return run_models(args)
        if args.command == "bench":
            from ._bench import run_bench_command

            return run_bench_command(args)
        handler = getattr(args, "handler", None)
        if handler is not None:
            module, _, function = handler.partition(":")
            return int(getattr(importlib.import_module(module), function)(args))
    except ModelDeckError as exc:
        from ._hints import cli_error_text

        print(f"error: {cli_error_text(exc, args)}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``modeldeck ... | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
