"""``modeldeck predict``: run a task on inputs from the command line, stdin or a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputDecodeError, InputError, ModelDeckError, OptionError

__all__ = ["parse_option", "read_inputs", "run_predict", "save_drawings"]


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON when it parses (``true``, ``3``, ``["A"]``), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise OptionError(f"cannot read the option {text!r}", hint="write options as KEY=VALUE, e.g. -o normalize=true")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _qa_input(args: argparse.Namespace) -> dict[str, str]:
    """``--question`` with ``--context`` or ``--context-file``: one question-answering input."""
    if args.context_file:
        path = Path(args.context_file)
        if not path.is_file():
            raise InputError(
                f"context file {str(path)!r} does not exist", hint="check the path given to --context-file"
            )
        context = path.read_text(encoding="utf-8")
    elif args.context is not None:
        context = args.context
    else:
        raise InputError("--question needs a context", hint="add --context TEXT or --context-file PATH")
    return {"question": args.question, "context": context}


def _json_example(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputDecodeError(
            f"tensor input {raw[:60]!r} is not JSON ({exc})", hint="write each input as JSON: '{\"features\": [1, 2]}'"
        ) from None


def read_inputs(args: argparse.Namespace) -> list[Any]:
    if getattr(args, "question", None) is not None:
        return [_qa_input(args)]
    inputs: list[Any] = []
    for item in args.inputs:
        if item == "-":
            inputs.extend(line.rstrip("\n") for line in sys.stdin if line.strip())
        else:
            inputs.append(item)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise InputError(f"input file {str(path)!r} does not exist", hint="check the path given to --file")
        inputs.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not inputs:
        raise InputError("no inputs given", hint="pass texts as arguments, '-' for stdin, or --file PATH")
    return inputs


def _save_targets(save: str, inputs: list[Path]) -> list[Path]:
    """Where each drawn input goes: the file ``save`` for one input, else one file per input in folder ``save``."""
    target = Path(save)
    if len(inputs) == 1 and not target.is_dir():
        from PIL import Image

        if target.suffix.lower() not in Image.registered_extensions():
            raise OptionError(
                f"--save {save!r} has no image file extension",
                hint="end it with .png or .jpg, or name an existing folder",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        return [target]
    if target.exists() and not target.is_dir():
        raise OptionError(
            f"--save {save!r} is a file, but {len(inputs)} inputs need a folder", hint="give --save a folder"
        )
    target.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for path in inputs:
        name = f"{path.stem}.png"
        candidate, n = target / name, 1
        while candidate in paths:  # two inputs with the same file name in different folders
            candidate, n = target / f"{path.stem}-{n}.png", n + 1
        paths.append(candidate)
    return paths


def save_drawings(targets: list[Path], inputs: list[Path], results: list[Any]) -> list[Path]:
    """Draw each answered input with its result and write it to its target; failed inputs are skipped."""
    from .._draw import draw

    written = []
    for path, target, result in zip(inputs, targets, results, strict=True):
        if isinstance(result, ModelDeckError):
            continue
        draw(path, result).save(target)
        written.append(target)
    return written


def run_predict(args: argparse.Namespace) -> int:
    from .. import load
    from ._render import render_outputs

    options = dict(parse_option(text) for text in args.option)
    inputs = read_inputs(args)
    task = load(args.task, model=args.model) if args.model else load(args.task)
    save = getattr(args, "save", None)
    targets: list[Path] = []
    if task.input_kind == "image":
        # Every command-line input of an image task names a file; the task reads it (a missing one fails alone).
        inputs = [Path(raw) for raw in inputs]
        targets = _save_targets(save, inputs) if save else []
    elif task.input_kind == "image-pair":
        # A pair task (face-verify) compares the files two at a time: A B [A B ...].
        if len(inputs) % 2:
            raise InputError(
                f"{task.name} compares pairs of images, got {len(inputs)} file(s)",
                hint="give the files of each pair one after the other: A.jpg B.jpg [C.jpg D.jpg ...]",
            )
        inputs = [(Path(inputs[i]), Path(inputs[i + 1])) for i in range(0, len(inputs), 2)]
        if save:
            raise OptionError(f"--save draws detections; the {task.name} task answers a verdict per pair")
    elif task.input_kind == "tensor":
        # Each input is one example as a JSON object: '{"features": [0.3, 1.2, 5.0, 0.0]}'.
        inputs = [_json_example(raw) for raw in inputs]
        if save:
            raise OptionError(f"--save draws image results; the {task.name} task answers tensors")
    elif save:
        raise OptionError(f"--save draws image results; the {task.name} task takes text", hint="leave out --save")
    results = task.predict_each(inputs, task.parse_options(options))
    outputs: list[dict[str, Any]] = [
        {"error": r.to_dict()} if isinstance(r, ModelDeckError) else r.to_dict() for r in results
    ]
    if args.json:
        print(json.dumps(outputs, ensure_ascii=False))
    else:
        from ._hints import cli_error_dict

        # The table is read by a person at the command line: hints name this command's flags.
        shown = [
            {"error": cli_error_dict(r, args)} if isinstance(r, ModelDeckError) else o
            for r, o in zip(results, outputs, strict=True)
        ]
        render_outputs(task.name, inputs, shown)
    if targets:
        for target in save_drawings(targets, inputs, results):
            print(f"saved {target}", file=sys.stderr)
    return 1 if any("error" in out for out in outputs) else 0
