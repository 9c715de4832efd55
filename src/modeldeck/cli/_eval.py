"""``modeldeck eval``: score a model on a labelled dataset (COCO mAP for vision, ROC for face pairs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InputError

__all__ = ["add_parser", "run_eval"]

_VISION = ("detect", "segment")
_FACES = ("face-verify",)
_CLASSIFY = ("classify-image",)


def add_parser(commands: Any) -> None:
    ev = commands.add_parser(
        "eval",
        help="evaluate a model: COCO mAP (detect, segment), verification ROC (face-verify), accuracy (classify-image)",
        description="Evaluate a task's model on labelled data and print (or --json) its metrics.",
    )
    ev.add_argument("task", choices=[*_VISION, *_FACES, *_CLASSIFY], help="which task to evaluate")
    ev.add_argument("--model", help="model name, name@version or path (default: the task's default)")
    ev.add_argument("--coco", help="COCO annotations JSON (detect, segment)")
    ev.add_argument("--images", help="folder holding the annotated images (detect, segment)")
    ev.add_argument("--pairs", help="CSV of image pairs: path_a,path_b,same (face-verify)")
    ev.add_argument("--folder", help="folder with one subfolder of images per class (classify-image)")
    ev.add_argument(
        "--plot", help="save the ROC curve (face-verify) or the confusion matrix (classify-image) as this PNG"
    )
    ev.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    ev.add_argument("--limit", type=int, help="evaluate only the first N images or pairs")
    ev.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option (JSON value)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(handler="modeldeck.cli._eval:run_eval")


def run_eval(args: argparse.Namespace) -> int:
    from .. import load
    from ._predict import parse_option

    options = dict(parse_option(text) for text in args.option)
    if args.task in _VISION:
        if not args.coco or not args.images:
            raise InputError(f"eval {args.task} needs --coco and --images", hint="--coco ann.json --images DIR")
        from ..evaluation.coco import evaluate_coco

        task = load(args.task, model=args.model, **options) if args.model else load(args.task, **options)
        report = evaluate_coco(
            task, args.coco, args.images, batch_size=args.batch_size, limit=args.limit, progress=not args.quiet
        )
    elif args.task in _CLASSIFY:
        if not args.folder:
            raise InputError("eval classify-image needs --folder", hint="--folder DIR with one subfolder per class")
        from ..evaluation.classification import evaluate_folder

        task = load(args.task, model=args.model, **options) if args.model else load(args.task, **options)
        report = evaluate_folder(
            task,
            args.folder,
            batch_size=args.batch_size,
            limit=args.limit,
            plot=args.plot,
            progress=not args.quiet,
        )
    else:
        if not args.pairs:
            raise InputError("eval face-verify needs --pairs", hint="--pairs pairs.csv (path_a,path_b,same)")
        from ..evaluation.faces import evaluate_pairs

        task = load(args.task, model=args.model, **options) if args.model else load(args.task, **options)
        report = evaluate_pairs(task, args.pairs, plot=args.plot, limit=args.limit, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0
