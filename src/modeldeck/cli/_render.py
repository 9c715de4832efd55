"""Readable terminal tables for task outputs (the ``--json`` form is the plain ``to_dict``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render_outputs"]

_PREVIEW = 60


def _short(text: str, limit: int = _PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _score(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


def _entities(output: dict[str, Any]) -> Table:
    table = Table("text", "label", "start", "end", "score", box=None, pad_edge=False)
    for ent in output["entities"]:
        table.add_row(ent["text"], ent["label"], str(ent["start"]), str(ent["end"]), _score(ent.get("score")))
    return table


def _tokens(output: dict[str, Any]) -> Table:
    table = Table("#", "text", "lemma", "pos", "tag", "dep", "head", box=None, pad_edge=False)
    for i, tok in enumerate(output["tokens"]):
        table.add_row(str(i), tok["text"], tok["lemma"], tok["pos"], tok["tag"], tok["dep"], str(tok["head"]))
    return table


def _vector(output: dict[str, Any]) -> str:
    vector = output["vector"]
    norm = sum(v * v for v in vector) ** 0.5
    head = ", ".join(f"{v:+.4f}" for v in vector[:6])
    return f"dim={len(vector)} norm={norm:.4f} chunks={output.get('chunks', 1)} [{head}, …]"


def render_outputs(task: str, inputs: Sequence[Any], outputs: Sequence[dict[str, Any]]) -> None:
    console = Console()
    for raw, output in zip(inputs, outputs, strict=True):
        console.rule(f"[bold]{task}[/] {_short(str(raw))}", align="left")
        if "error" in output:
            console.print(f"[red]error {output['error']['code']}[/]: {output['error']['message']}")
        elif "entities" in output:
            console.print(_entities(output) if output["entities"] else "[dim](no entities)[/]")
        elif "tokens" in output:
            console.print(_tokens(output))
        elif "vector" in output:
            console.print(_vector(output))
        else:
            console.print_json(json.dumps(output))
