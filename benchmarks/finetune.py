"""Fine-tuning: the ``plain`` recipe against a Hugging Face ``Trainer``, and peak memory as the data grows.

    python benchmarks/finetune.py throughput [--rows 480] [--epochs 2] [--batch-size 16] [--max-length 64]
    python benchmarks/finetune.py memory [--rows 2000] [--scale 10] [--max-steps 20] [--batch-size 32]

``throughput`` fine-tunes all-MiniLM-L6-v2 on the same generated rows (same base, batch size,
epochs, peak rate and linear decay) with a ``transformers.Trainer`` (evaluating and saving every
epoch, as modeldeck does) and then ``modeldeck.finetune(recipe="plain")``, in one process, and
reports training examples per second of the whole call (model load, epochs, per-epoch
validation and checkpoints, the final save, scoring the test rows; for modeldeck also the store
import) and of the epochs alone (Trainer's ``train_runtime``), and each one's test accuracy.
``--repeats N`` runs the pair N times, alternating which goes first (the shared machine's load
drifts), and reports the median of each figure.
``memory`` runs the plain recipe at batch 32 / max length 128 on ``rows`` and on ``scale * rows``
rows of long texts (past 128 tokens), each in a fresh subprocess, for the same ``max-steps``
optimizer steps (so both take the same steps and differ only in the data they read, tokenise
and hold), and reads each one's peak RSS (``ru_maxrss``).
Results go to .bench/finetune-<what>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import save

_TOPICS = ["the laptop", "my phone", "the printer", "the train", "the invoice", "the app", "the router", "the hotel"]
_GOOD = ["great", "reliable", "fast", "excellent", "easy to use"]
_BAD = ["broken", "unreliable", "slow", "awful", "hard to use"]
_FORMS = {
    "praise": ["{T} is {good}.", "{T} is not {bad}."],
    "complaint": ["{T} is {bad}.", "{T} is not {good}."],
    "question": ["Is {t} {good}?", "Is {t} {bad}?"],
}


def write_rows(path: Path, rows: int, seed: int, *, long: bool = False) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = list(_FORMS)[i % 3]
            topic = rng.choice(_TOPICS)
            text = rng.choice(_FORMS[label]).format(
                t=topic, T=topic.capitalize(), good=rng.choice(_GOOD), bad=rng.choice(_BAD)
            )
            if long:  # past 128 tokens, so every batch is full width
                text = " ".join([text] * 20)
            writer.writerow([text, label])
    return path


def run_modeldeck(data: dict[str, Path], args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from modeldeck import finetune
    from modeldeck.config import Settings

    started = time.perf_counter()
    report = finetune(
        "classify",
        data=data["train"],
        valid=data["valid"],
        test=data["test"],
        name="bench",
        settings=Settings(home=home),
        recipe="plain",
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=args.lr,
        patience=args.epochs,
    )
    seconds = time.perf_counter() - started
    # The epochs alone (steps, per-epoch validation and checkpoints), as Trainer's train_runtime counts them.
    epochs = sum(h["seconds"] for h in report.history)
    return {
        "seconds": seconds,
        "examples_per_s": args.rows * args.epochs / seconds,
        "train_seconds": epochs,
        "train_examples_per_s": args.rows * args.epochs / epochs,
        "test_accuracy": report.metrics["test"]["accuracy"],
    }


def run_trainer(data: dict[str, Path], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import numpy as np
    import torch
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from modeldeck import ModelStore
    from modeldeck.config import Settings

    base = ModelStore(Settings.from_env()).resolve("all-MiniLM-L6-v2").path
    started = time.perf_counter()
    rows = {k: list(csv.DictReader(v.open(encoding="utf-8"))) for k, v in data.items()}
    labels = sorted({r["label"] for r in rows["train"]})
    tokenizer = AutoTokenizer.from_pretrained(base)

    class Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __init__(self, items: list[dict[str, str]]) -> None:
            enc = tokenizer([r["text"] for r in items], truncation=True, max_length=args.max_length)
            self.items = [
                {"input_ids": ids, "attention_mask": mask, "labels": labels.index(r["label"])}
                for ids, mask, r in zip(enc["input_ids"], enc["attention_mask"], items, strict=True)
            ]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return self.items[i]

    transformers.set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)}
    )
    training = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=max(32, args.batch_size),
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=Rows(rows["train"]),
        eval_dataset=Rows(rows["valid"]),
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    output = trainer.train()
    trainer.save_model(str(out / "final"))
    # Scoring the test rows is inside the timed call, as it is inside modeldeck's (which reports test metrics).
    predicted = trainer.predict(Rows(rows["test"]))
    seconds = time.perf_counter() - started
    accuracy = float((np.argmax(predicted.predictions, axis=1) == predicted.label_ids).mean())
    return {
        "seconds": seconds,
        "examples_per_s": args.rows * args.epochs / seconds,
        "train_seconds": output.metrics["train_runtime"],
        "train_examples_per_s": args.rows * args.epochs / output.metrics["train_runtime"],
        "test_accuracy": accuracy,
    }


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = {
            "train": write_rows(folder / "train.csv", args.rows, 0),
            "valid": write_rows(folder / "valid.csv", max(30, args.rows // 8), 1),
            "test": write_rows(folder / "test.csv", max(60, args.rows // 4), 2),
        }
        # Load the BERT modelling code once before either is timed: whoever ran first paid for the import.
        from transformers import AutoModelForSequenceClassification  # noqa: F401
        from transformers.models.bert import modeling_bert  # noqa: F401

        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "theirs": []}
        for i in range(args.repeats):
            order = ["theirs", "ours"] if i % 2 == 0 else ["ours", "theirs"]
            for who in order:
                if who == "theirs":
                    runs[who].append(run_trainer(data, args, folder / f"trainer-{i}"))
                else:
                    runs[who].append(run_modeldeck(data, args, folder / f"home-{i}"))
    ours, theirs = _median(runs["ours"]), _median(runs["theirs"])
    return {
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "repeats": args.repeats,
        "modeldeck_plain": ours,
        "hf_trainer": theirs,
        "ratio": ours["examples_per_s"] / theirs["examples_per_s"],
        "train_ratio": ours["train_examples_per_s"] / theirs["train_examples_per_s"],
        "runs": runs,
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics

    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _one_memory_run(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    code = f"""
import resource, sys, tempfile, json
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from finetune import write_rows
from modeldeck import finetune
from modeldeck.config import Settings
with tempfile.TemporaryDirectory() as tmp:
    t = Path(tmp)
    finetune("classify", data=write_rows(t / "train.csv", {rows}, 0, long=True),
             valid=write_rows(t / "valid.csv", 30, 1, long=True), name="mem", settings=Settings(home=t / "home"),
             recipe="plain", epochs=1, batch_size={args.batch_size}, max_length={args.max_length},
             max_steps={args.max_steps})
print(json.dumps({{"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rows": rows, **result, "seconds": time.perf_counter() - started}


def memory(args: argparse.Namespace) -> dict[str, Any]:
    small = _one_memory_run(args.rows, args)
    large = _one_memory_run(args.rows * args.scale, args)
    return {
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "max_steps": args.max_steps,
        "small": small,
        "large": large,
        "ratio": large["peak_rss_mib"] / small["peak_rss_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "memory"])
    parser.add_argument("--rows", type=int)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=1, help="throughput: run the pair this many times")
    parser.add_argument("--scale", type=int, default=10, help="memory: the large run has this many times the rows")
    parser.add_argument("--max-steps", type=int, default=20, help="memory: optimizer steps of each run")
    args = parser.parse_args()
    if args.what == "throughput":
        args.rows, args.batch_size = args.rows or 480, args.batch_size or 16
        args.max_length = args.max_length or 64
        result = throughput(args)
        ours, theirs = result["modeldeck_plain"], result["hf_trainer"]
        print(
            f"plain recipe vs Trainer, whole call {ours['examples_per_s']:.1f} vs {theirs['examples_per_s']:.1f} "
            f"examples/s: {result['ratio']:.2f}x; epochs only {ours['train_examples_per_s']:.1f} vs "
            f"{theirs['train_examples_per_s']:.1f}: {result['train_ratio']:.2f}x; test accuracy "
            f"{ours['test_accuracy']:.3f} vs {theirs['test_accuracy']:.3f}"
        )
    else:
        args.rows, args.batch_size = args.rows or 2000, args.batch_size or 32
        args.max_length = args.max_length or 128
        result = memory(args)
        print(
            f"peak RSS at batch {args.batch_size}, max length {args.max_length}: "
            f"{result['small']['peak_rss_mib']:.0f} MiB ({args.rows} rows) vs "
            f"{result['large']['peak_rss_mib']:.0f} MiB ({args.rows * args.scale} rows), {args.max_steps} steps each: "
            f"{result['ratio']:.2f}x"
        )
    save(f"finetune-{args.what}", result)


if __name__ == "__main__":
    main()
