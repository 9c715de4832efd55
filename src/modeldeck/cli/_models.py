"""``modeldeck models``: list, show, pull, import, remove and verify models in the store."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..errors import StoreError

__all__ = ["run_models"]


def _split(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


def run_models(args: argparse.Namespace) -> int:
    from ..store import ModelStore

    console = Console()
    store = ModelStore(Settings.from_env())
    verb = args.verb
    if verb == "list":
        table = Table("name", "tasks", "runtime", "source", "license", "installed", "default for", box=None)
        table.columns[0].no_wrap = True
        for status in store.list_models():
            table.add_row(
                status.name,
                ", ".join(status.tasks),
                status.runtime,
                status.source,
                status.license,
                ", ".join(status.installed) or "[dim]-[/]",
                ", ".join(status.default_for),
            )
        console.print(table)
    elif verb == "show":
        name, version = _split(args.name)
        status = next((s for s in store.list_models() if s.name == name), None)
        info = store.resolve(args.name, auto_pull=False)
        print(json.dumps({"status": asdict(status) if status else None, "resolved": info.to_dict()}, indent=2))
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
