"""``modeldeck models``: list, show, pull, import, remove and verify models in the store."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import Settings
from ..errors import StoreError, UnknownModelError, did_you_mean
from ..store import ModelStatus

__all__ = ["run_models"]


def _split(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


# Below this many columns the seven-column table truncates every cell: each model gets two lines instead.
_WIDE = 110


def _with_task(rows: list[ModelStatus], task: str) -> list[ModelStatus]:
    known = sorted({t for status in rows for t in status.tasks})
    if task not in known:
        raise UnknownModelError(
            f"no model serves the task {task!r}{did_you_mean(task, known)}", hint=f"tasks: {', '.join(known)}"
        )
    return [status for status in rows if task in status.tasks]


def _table(rows: list[ModelStatus]) -> Table:
    table = Table("name", "tasks", "runtime", "source", "license", "installed", "default for", box=None)
    table.columns[0].no_wrap = True
    for status in rows:
        table.add_row(
            status.name,
            ", ".join(status.tasks),
            status.runtime,
            status.source,
            status.license,
            ", ".join(status.installed) or "[dim]-[/]",
            ", ".join(status.default_for),
        )
    return table


def _print_compact(console: Console, rows: list[ModelStatus]) -> None:
    """Two lines a model, no cell cut short: name and installed versions, then what it is."""
    for status in rows:
        installed = ", ".join(status.installed)
        console.print(
            f"[bold]{escape(status.name)}[/]  "
            + (f"[green]{escape(installed)}[/]" if installed else "[dim]not installed[/]"),
            overflow="fold",
        )
        tasks = ", ".join(f"{t}*" if t in status.default_for else t for t in status.tasks)
        console.print(
            f"  {escape(tasks)} · {escape(status.runtime)} · {status.source} · {escape(status.license)}",
            overflow="fold",
        )
    console.print("[dim]* the task's default model; --json for every field, `modeldeck models show NAME` for one[/]")


def run_models(args: argparse.Namespace) -> int:
    from ..store import ModelStore

    console = Console()
    store = ModelStore(Settings.from_env())
    verb = args.verb
    if verb == "list":
        rows = store.list_models()
        if args.task is not None:
            rows = _with_task(rows, args.task)
        if args.json:
            print(json.dumps([asdict(status) for status in rows], indent=2))
        elif console.width >= _WIDE:
            console.print(_table(rows))
        else:
            _print_compact(console, rows)
    elif verb == "show":
        name, version = _split(args.name)
        status = next((s for s in store.list_models() if s.name == name), None)
        info = store.resolve(args.name, auto_pull=False)
        shown: dict[str, object] = {"status": asdict(status) if status else None, "resolved": info.to_dict()}
        if "tensor" in info.tasks:
            # A model you bring says what it takes only once its framework has read it.
            from .._api import load_info

            task = load_info(info, "tensor")
            try:
                shown["signature"] = task.signature()  # type: ignore[attr-defined]
                shown["runtime"] = task.describe().get("runtime")
            finally:
                task.close()
        print(json.dumps(shown, indent=2))
    elif verb == "pull":
        info = store.pull(args.name, progress=not args.quiet, force=args.force)
        console.print(f"[green]pulled[/] {info.name}@{info.version} -> {info.path}")
    elif verb == "import":
        info = store.import_model(
            args.path, args.name, version=args.model_version, tasks=args.tasks, runtime=args.runtime
        )
        console.print(f"[green]imported[/] {info.name}@{info.version} ({info.runtime}; tasks: {', '.join(info.tasks)})")
    elif verb == "remove":
        name, version = _split(args.name)
        removed = store.remove(name, version)
        console.print(f"[green]removed[/] {name}: {', '.join(removed)}")
    elif verb == "verify":
        name, version = _split(args.name)
        report = store.verify(name, version)
        if not report.ok:
            for problem in report.problems:
                console.print(f"[red]problem[/] {problem}")
            raise StoreError(
                f"{report.name}@{report.version}: {len(report.problems)} of {report.checked} files failed verification",
                hint=f"run: modeldeck models remove {report.name}@{report.version} and pull or import it again",
            )
        console.print(f"[green]ok[/] {report.name}@{report.version}: {report.checked} files verified")
    return 0
