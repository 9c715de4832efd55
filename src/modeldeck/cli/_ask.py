"""``modeldeck ask``: index a folder of documents (or update its index) and answer a question from it."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..documents import AskResult, BuildReport

__all__ = ["add_parser", "run_ask"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``ask`` command; its work lives in a function named by ``handler``."""
    ask = commands.add_parser(
        "ask",
        help="answer a question from a folder of documents (.txt, .md, .html, .pdf)",
        description="Build or update the folder's document index (only new and changed files are embedded), "
        "then print the passages that best answer QUESTION, with their sources; with --qa-model, "
        "also the answer a reader model extracts from them.",
    )
    ask.add_argument("folder", help="folder of .txt, .md, .html and .pdf files")
    ask.add_argument("question", help="the question to answer")
    ask.add_argument("--top-k", type=int, default=5, help="passages to return (default 5)")
    ask.add_argument("--index-dir", help="where the index lives (default: FOLDER/.modeldeck-index)")
    ask.add_argument("--model", help="embedding model name, name@version or path (default: the index's, else embed)")
    ask.add_argument("--qa-model", help="a qa model (name or path) that reads the passages and extracts an answer")
    ask.add_argument("--rebuild", action="store_true", help="re-embed every file (needed to change --model)")
    ask.add_argument("--json", action="store_true", help="print the answer, passages and index report as JSON")
    ask.add_argument("--quiet", action="store_true", help="no progress bar or index summary")
    ask.set_defaults(handler="modeldeck.cli._ask:run_ask")


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich bar on stderr, started on the first call."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]embedding chunks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task("embed", total=total)
        bar.update(state["task"], completed=done, total=total)

    try:
        yield progress
    finally:
        if "task" in state:
            bar.stop()


def _summary(report: BuildReport, index_dir: str) -> None:
    print(f"index {index_dir}: {report.summary()}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _where(source: str, page: int | None) -> str:
    return f"{source}, page {page}" if page is not None else source


def _print_result(result: AskResult) -> None:
    if result.answer is not None:
        answer = result.answer
        print(f"Answer: {answer.text}")
        print(
            f"  from {_where(answer.source, answer.page)} (chars {answer.start}-{answer.end}, score {answer.score:.3f})"
        )
        print()
    for rank, passage in enumerate(result.passages, 1):
        span = f"chars {passage.start}-{passage.end}"
        print(f"{rank}. {_where(passage.source, passage.page)}  {span}  score {passage.score:.3f}")
        body = " ".join(passage.text.split())
        print(textwrap.indent(textwrap.fill(textwrap.shorten(body, 600, placeholder=" ..."), 100), "   "))


def run_ask(args: argparse.Namespace) -> int:
    from ..documents import DocumentIndex
    from ..errors import OptionError
    from ..tasks.base import check_text

    if args.top_k < 1:
        raise OptionError(f"--top-k must be >= 1, got {args.top_k}")
    check_text(args.question, field="question")  # before indexing, which can take a while
    with _progress_bar(not args.quiet) as progress:
        index = DocumentIndex.build(
            args.folder,
            model=args.model,
            index_dir=args.index_dir,
            qa_model=args.qa_model,
            rebuild=args.rebuild,
            progress=progress,
        )
    with index:
        if not args.quiet:
            _summary(index.report, str(index.index_dir))
        result = index.ask(args.question, top_k=args.top_k)
        if args.json:
            out = {**result.to_dict(), "index": {"dir": str(index.index_dir), "model": index.model,
                                                 "chunks": len(index), "report": index.report.to_dict()}}  # fmt: skip
            print(json.dumps(out, ensure_ascii=False, indent=2))
        elif result.passages:
            _print_result(result)
        else:
            print("no passages: the index is empty (see the skipped files above)", file=sys.stderr)
    return 0 if result.passages else 1
