"""``modeldeck eval``: score a model on a labelled dataset (COCO mAP, face-pair ROC, classifier metrics)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InputError

__all__ = ["add_parser", "run_eval"]

_VISION = ("detect", "segment")
_FACES = ("face-verify",)
_CLASSIFY = ("classify-image",)
_TEXT = ("classify",)
_NER = ("ner",)


def add_parser(commands: Any) -> None:
    ev = commands.add_parser(
        "eval",
        help="evaluate a model: COCO mAP (detect, segment), verification ROC (face-verify), accuracy (classify-image), "
        "accuracy and F1 (classify), entity-level F1 (ner)",
        description="Evaluate a task's model on labelled data and print (or --json) its metrics.",
    )
    ev.add_argument("task", choices=[*_VISION, *_FACES, *_CLASSIFY, *_TEXT, *_NER], help="which task to evaluate")
    ev.add_argument("--model", help="model name, name@version or path (default: the task's default)")
    ev.add_argument("--coco", help="COCO annotations JSON (detect, segment)")
    ev.add_argument("--images", help="folder holding the annotated images (detect, segment)")
    ev.add_argument("--pairs", help="CSV of image pairs: path_a,path_b,same (face-verify)")
    ev.add_argument("--folder", help="folder with one subfolder of images per class (classify-image)")
    ev.add_argument(
        "--data", help='labelled rows: .csv, .jsonl or .parquet (classify); .jsonl of {"text", "entities"} (ner)'
    )
    ev.add_argument("--text-column", help="classify, ner: column holding the text (default: text, sentence, ...)")
    ev.add_argument(
        "--label-column", help="classify: column holding the label (default: label, class, ...); ner: entities"
    )
    ev.add_argument(
        "--plot", help="save the ROC curve (face-verify) or the confusion matrix (classify, classify-image) as this PNG"
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
    elif args.task in _TEXT:
        if not args.data:
            raise InputError(f"eval {args.task} needs --data", hint="--data holdout.csv (text and label columns)")
        from ..evaluation.classify import evaluate_classify

        task = load(args.task, model=args.model, **options) if args.model else load(args.task, **options)
        report = evaluate_classify(
            task, args.data, text_column=args.text_column, label_column=args.label_column, plot=args.plot
        )
    elif args.task in _NER:
        if not args.data:
            raise InputError("eval ner needs --data", hint='--data holdout.jsonl ({"text", "entities"} per line)')
        from ..evaluation.ner import evaluate_ner

        task = load(args.task, model=args.model, **options) if args.model else load(args.task, **options)
        report = evaluate_ner(task, args.data, text_column=args.text_column, entities_column=args.label_column)
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
