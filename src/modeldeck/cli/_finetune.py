"""``modeldeck finetune``: fine-tune a classifier or an NER tagger the ULMFiT way and import it into the store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..finetuning import FinetuneReport

__all__ = ["add_parser", "run_finetune"]

# CLI flag -> FinetuneConfig field, for the flags given on the command line only.
_CONFIG_FLAGS = (
    "recipe",
    "epochs",
    "lm_epochs",
    "lr",
    "lm_lr",
    "factor",
    "unfreeze_per_epoch",
    "batch_size",
    "max_length",
    "patience",
    "valid_split",
    "max_steps",
    "seed",
    "device",
)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ft = commands.add_parser(
        "finetune",
        help="fine-tune a text classifier or NER tagger (ULMFiT recipe) into a new store version",
        description="Read labelled rows (classify: CSV, JSON Lines, Parquet; ner: JSON Lines of char spans), "
        "optionally fine-tune the encoder as a masked LM on the texts (--lm-epochs), train a classifier of "
        "texts or tokens with gradual unfreezing, discriminative rates and slanted triangular schedules, keep "
        "the best epoch, and import it as NAME@N.",
    )
    ft.add_argument("task", choices=["classify", "ner"], help="what to fine-tune for")
    ft.add_argument(
        "--data",
        required=True,
        help='labelled training rows: .csv, .jsonl or .parquet (ner: .jsonl of {"text", "entities": [[start, end, '
        "label]]})",
    )
    ft.add_argument("--name", required=True, help="store name; each run adds the next version (NAME@1, NAME@2, ...)")
    ft.add_argument("--base", default="all-MiniLM-L6-v2", help="encoder to start from (default all-MiniLM-L6-v2)")
    ft.add_argument("--valid", help="validation rows (default: a stratified --valid-split of --data)")
    ft.add_argument("--valid-split", type=float, help="share of each label held out for validation (default 0.1)")
    ft.add_argument("--test", help="test rows, scored once with the best epoch")
    ft.add_argument("--unlabeled", help="more target-domain texts for stage 1 (a file with a text column)")
    ft.add_argument("--text-column", help="column holding the text (default: text, sentence, body, ...)")
    ft.add_argument(
        "--label-column", help="column holding the label (default: label, class, category, ...; ner: entities)"
    )
    ft.add_argument("--recipe", choices=["ulmfit", "plain"], help="ulmfit (default) or plain one-stage fine-tuning")
    ft.add_argument("--epochs", type=int, help="stage 2 epochs at most (default 8)")
    ft.add_argument("--lm-epochs", type=int, help="stage 1 masked-LM epochs (default 0: skip)")
    ft.add_argument("--lr", type=float, help="peak rate of the top group (ulmfit 2e-3, plain 1e-4)")
    ft.add_argument("--lm-lr", type=float, help="stage 1 peak rate (default 1e-4)")
    ft.add_argument("--factor", type=float, help="discriminative factor between layer groups (default 2.6)")
    ft.add_argument("--unfreeze-per-epoch", type=int, help="layer groups unfrozen per epoch (default 1)")
    ft.add_argument("--batch-size", type=int, help="examples per step (default 16)")
    ft.add_argument("--max-length", type=int, help="tokens per text, longer ones are cut (default 128)")
    ft.add_argument("--patience", type=int, help="early stopping: epochs without a better valid score (default 3)")
    ft.add_argument("--max-steps", type=int, help="stop stage 2 after this many optimizer steps in all")
    ft.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    ft.add_argument("--device", help="torch device (default cpu)")
    ft.add_argument("--resume", action="store_true", help="continue the last run of NAME from its checkpoint")
    ft.add_argument("--json", action="store_true", help="print the report as JSON")
    ft.add_argument("--quiet", action="store_true", help="no progress bars")
    ft.set_defaults(handler="modeldeck.cli._finetune:run_finetune")


def run_finetune(args: argparse.Namespace) -> int:
    from ..finetuning import finetune

    overrides: dict[str, Any] = {
        key: getattr(args, key) for key in _CONFIG_FLAGS if getattr(args, key, None) is not None
    }
    report = finetune(
        args.task,
        data=args.data,
        name=args.name,
        base=args.base,
        valid=args.valid,
        test=args.test,
        unlabeled=args.unlabeled,
        text_column=args.text_column,
        label_column=args.label_column,
        resume=args.resume,
        progress=not args.quiet and sys.stderr.isatty(),
        **overrides,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _render(report)
    if report.interrupted:
        print(
            f"interrupted: the checkpoints are kept in {report.run_dir}; continue with the same command and --resume",
            file=sys.stderr,
        )
        return 130
    return 0


def _render(report: FinetuneReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    history = Table(title="fine-tuning history")
    ner = any("valid_f1" in h for h in report.history)
    score_columns = ("valid P", "valid R", "valid F1") if ner else ("valid acc", "valid F1")
    for column in ("stage", "epoch", "groups", "train loss", "valid loss", *score_columns, "s"):
        history.add_column(column, justify="right")
    for h in report.history:
        best = h.get("stage") == 2 and h.get("epoch") == report.best_epoch
        history.add_row(
            str(h["stage"]),
            f"{h['epoch']}{' *' if best else ''}",
            str(h.get("trainable_groups", "all")),
            f"{h['train_loss']:.4f}",
            f"{h['valid_loss']:.4f}" if "valid_loss" in h else "",
            *(
                f"{h[key]:.3f}" if key in h else ""
                for key in (
                    ("valid_precision", "valid_recall", "valid_f1") if ner else ("valid_accuracy", "valid_macro_f1")
                )
            ),
            f"{h['seconds']:.1f}",
        )
    console.print(history)
    summary = Table(title=f"model {report.model or '(not imported)'}", show_header=False)
    summary.add_row("labels", ", ".join(report.labels))
    summary.add_row("best epoch", str(report.best_epoch))
    for split, metrics in report.metrics.items():
        if "accuracy" in metrics:
            summary.add_row(f"{split} accuracy", f"{metrics['accuracy']:.4f}")
        else:  # ner: entity-level, exact span and label
            summary.add_row(f"{split} entity micro F1", f"{metrics['micro_f1']:.4f}")
        summary.add_row(f"{split} macro F1", f"{metrics['macro_f1']:.4f}")
    reasons = report.data_notes.get("bad_row_reasons", {})
    for split, count in report.bad_rows.items():
        if count:
            why = ", ".join(f"{n} {r}" for r, n in sorted(reasons.get(split, {}).items()))
            summary.add_row(f"bad rows in {split} (left out)", f"{count} ({why})" if why else str(count))
    for split, spans in report.data_notes.get("spans", {}).items():
        if spans.get("unaligned") or spans.get("truncated"):
            summary.add_row(
                f"{split} spans off token boundaries / cut by --max-length",
                f"{spans['unaligned']} / {spans['truncated']} of {spans['spans']}",
            )
    if report.plot is not None:
        summary.add_row("curves", str(report.plot))
    console.print(summary)
