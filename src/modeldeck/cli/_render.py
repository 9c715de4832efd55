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


def _answers(output: dict[str, Any]) -> Table | str:
    if not output["answers"]:
        return "[dim](no answer)[/]"
    from rich.markup import escape

    table = Table("answer", "start", "end", "score", box=None, pad_edge=False)
    for ans in output["answers"]:
        text = escape(ans["text"]) or "[dim](no answer)[/]"
        table.add_row(text, str(ans["start"]), str(ans["end"]), _score(ans["score"]))
    return table


def _labels(output: dict[str, Any]) -> Table:
    table = Table("label", "score", box=None, pad_edge=False)
    for lab in output["labels"]:
        table.add_row(lab["label"], _score(lab["score"]))
    return table


def _boxes(output: dict[str, Any], key: str) -> Table | str:
    """Detections or instances: label, score, box in original-image pixels (and mask area)."""
    items = output[key]
    if not items:
        return f"[dim](nothing detected in {output.get('width')}x{output.get('height')})[/]"
    from rich.markup import escape

    columns = ["#", "label", "score", "x1", "y1", "x2", "y2"] + (["mask px"] if key == "instances" else [])
    table = Table(*columns, box=None, pad_edge=False, caption=f"{output.get('width')}x{output.get('height')} px")
    for col in table.columns[2:]:
        col.justify = "right"
    for i, item in enumerate(items):
        row = [str(i), escape(str(item["label"])), _score(item["score"]), *(f"{v:.1f}" for v in item["box"])]
        if key == "instances":
            row.append(_mask_area(item.get("mask")))
        table.add_row(*row)
    return table


def _describe(raw: Any) -> str:
    """How an input is named in its heading: a text, a file, ``a ↔ b`` for a pair, a question."""
    if isinstance(raw, (tuple, list)) and len(raw) == 2:
        return f"{raw[0]} ↔ {raw[1]}"
    if isinstance(raw, dict) and "question" in raw:
        return str(raw["question"])
    return str(raw)


def _faces(output: dict[str, Any]) -> Table | str:
    """Faces found (face-detect) or embedded (face-embed): score, box, landmarks, vector size."""
    faces = output["faces"]
    if not faces:
        return f"[dim](no face in {output.get('width')}x{output.get('height')})[/]"
    embedded = "vector" in faces[0]
    columns = ["#", "score", "x1", "y1", "x2", "y2", "landmarks"] + (["dim"] if embedded else [])
    table = Table(*columns, box=None, pad_edge=False, caption=f"{output.get('width')}x{output.get('height')} px")
    for i, face in enumerate(faces):
        row = [str(i), _score(face["score"]), *(f"{v:.1f}" for v in face["box"]), str(len(face.get("landmarks") or []))]
        table.add_row(*row, *([str(len(face["vector"]))] if embedded else []))
    return table


def _verdict(output: dict[str, Any]) -> str:
    """One face-verify answer: same person or not, and by how much."""
    head = "[green]same person[/]" if output["match"] else "[yellow]different people[/]"
    return (
        f"{head}: distance {output['distance']:.4f} {'<=' if output['match'] else '>'} threshold "
        f"{output['threshold']:g} ({output['metric']}, {output['model']}), confidence {output['confidence']:.3f}"
    )


def _mask_area(mask: dict[str, Any] | None) -> str:
    if not mask:
        return ""
    from ..tasks.vision_results import Mask

    return f"{Mask.from_dict(mask).area:,}"


def render_outputs(task: str, inputs: Sequence[Any], outputs: Sequence[dict[str, Any]]) -> None:
    console = Console()
    from rich.markup import escape

    for raw, output in zip(inputs, outputs, strict=True):
        console.rule(f"[bold]{task}[/] {escape(_short(_describe(raw)))}", align="left")
        if "error" in output:
            console.print(f"[red]error {output['error']['code']}[/]: {output['error']['message']}")
        elif "entities" in output:
            console.print(_entities(output) if output["entities"] else "[dim](no entities)[/]")
        elif "tokens" in output:
            console.print(_tokens(output))
        elif "vector" in output:
            console.print(_vector(output))
        elif "instances" in output:
            console.print(_boxes(output, "instances"))
        elif "detections" in output:
            console.print(_boxes(output, "detections"))
        elif "match" in output and "distance" in output:
            console.print(_verdict(output))
        elif "faces" in output:
            console.print(_faces(output))
        elif "answers" in output:
            console.print(_answers(output))
        elif "labels" in output and "multi_label" in output:
            console.print(_labels(output))
        elif "target_lang" in output and "text" in output:
            console.print(output["text"], markup=False, highlight=False)
        else:
            console.print_json(json.dumps(output))
