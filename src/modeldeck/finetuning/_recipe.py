"""The fine-tuning run: data, the two ULMFiT stages (or one plain stage), checkpoints, resume, export, import.

Every epoch ends with a checkpoint in the run folder (``$MODELDECK_HOME/finetune/<name>/``):
the weights, Adam's state and ``state.json`` (stage, epoch, history, best so far), each written
atomically. Everything random is seeded from ``(seed, stage, epoch)``, so ``resume=True`` after a
kill continues exactly where the last checkpoint left off and ends with the same metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import Settings
from ..errors import ConfigError, JobError, UnknownModelError, UnknownNameError
from ._cache import TokenRows
from ._data import file_digest
from ._kits import ClassifyKit, Kit, NerKit
from ._schedule import discriminative_rates, linear_decay, slanted_triangular, trainable_groups

__all__ = ["FinetuneConfig", "FinetuneReport", "finetune"]

_TASKS = ("classify", "ner")
_KITS: dict[str, type[ClassifyKit] | type[NerKit]] = {"classify": ClassifyKit, "ner": NerKit}
_BASE_RUNTIMES = ("transformers", "sentence-transformers")
#: The events ``on_epoch`` receives; a test uses it to stop a run the way a kill would.
EpochEvent = Mapping[str, Any]


class FinetuneConfig(BaseModel):
    """How to fine-tune; defaults follow ULMFiT (factor 2.6, STLR cut 0.1 ratio 32, one group per epoch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipe: Literal["ulmfit", "plain"] = "ulmfit"
    epochs: int = Field(default=8, ge=1, description="stage 2 epochs at most (early stopping may end sooner)")
    lm_epochs: int = Field(default=0, ge=0, description="stage 1: masked-LM epochs on the target texts (ulmfit)")
    lr: float | None = Field(default=None, gt=0, description="peak rate of the top group (ulmfit 2e-3, plain 1e-4)")
    lm_lr: float = Field(default=1e-4, gt=0, description="stage 1 peak rate of the top group")
    factor: float = Field(default=2.6, ge=1, description="each lower layer group's rate is divided by this")
    cut_frac: float = Field(default=0.1, gt=0, lt=1)
    ratio: float = Field(default=32.0, ge=1)
    unfreeze_per_epoch: int = Field(default=1, ge=1, description="layer groups unfrozen per epoch (ulmfit)")
    batch_size: int = Field(default=16, ge=1)
    max_length: int = Field(default=128, ge=8)
    patience: int = Field(default=3, ge=1, description="stop after this many epochs without a better valid score")
    valid_split: float = Field(default=0.1, gt=0, lt=1)
    max_steps: int | None = Field(
        default=None, ge=1, description="stage 2 stops after this many optimizer steps in all (short runs, benchmarks)"
    )
    seed: int = 0
    device: str = "cpu"

    @model_validator(mode="after")
    def _stage_one_is_ulmfit(self) -> FinetuneConfig:
        if self.recipe == "plain" and self.lm_epochs:
            raise ValueError(
                "lm_epochs is stage 1 of the ulmfit recipe; the plain recipe has no language-model stage "
                "(leave lm_epochs out, or use recipe ulmfit)"
            )
        return self

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.recipe == "ulmfit" else 1e-4


@dataclass(frozen=True)
class FinetuneReport:
    """What a run produced: the store reference, metrics at the best epoch, and per-epoch history."""

    model: str | None
    metrics: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]]
    best_epoch: int | None
    labels: tuple[str, ...]
    run_dir: Path
    bad_rows: Mapping[str, int] = field(default_factory=dict)
    interrupted: bool = False
    plot: Path | None = None
    #: What the data looked like beyond counts: for NER, bad rows by reason and spans not aligned to tokens.
    data_notes: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metrics": dict(self.metrics),
            "history": [dict(h) for h in self.history],
            "best_epoch": self.best_epoch,
            "labels": list(self.labels),
            "run_dir": str(self.run_dir),
            "bad_rows": dict(self.bad_rows),
            "interrupted": self.interrupted,
            "plot": None if self.plot is None else str(self.plot),
            "data_notes": dict(self.data_notes),
        }


def _config(config: FinetuneConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> FinetuneConfig:
    base = config.model_dump() if isinstance(config, FinetuneConfig) else dict(config or {})
    try:
        return FinetuneConfig.model_validate({**base, **overrides})
    except ValidationError as exc:
        from ..tasks.base import option_error

        raise option_error("finetune", FinetuneConfig, exc) from None  # type: ignore[arg-type]


def _batches(n: int, size: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + size] for i in range(0, n, size)]


def _write_json(data: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


class _Progress:
    """A rich progress bar per epoch (stage, epoch, loss), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def epoch(self, description: str, total: int) -> Any:
        return None if self._bar is None else self._bar.add_task(description, total=total, loss=float("nan"))

    def step(self, handle: Any, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(handle, advance=1, loss=loss)

    def note(self, handle: Any, text: str) -> None:
        if self._bar is not None:
            self._bar.update(handle, description=text)


@dataclass
class _Run:
    """The run folder and its ``state.json``: what is done, the history, and the best epoch so far."""

    folder: Path
    state: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / "state.json"

    def save(self) -> None:
        _write_json(self.state, self.path)

    def file(self, name: str) -> Path:
        return self.folder / name


def _open_run(folder: Path, fingerprint: str, resume: bool) -> _Run:
    state_path = folder / "state.json"
    if resume and state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != fingerprint:
            raise JobError(
                f"the run in {str(folder)!r} was started with other data, base or settings",
                hint="resume with the same arguments, or start afresh without --resume",
            )
        return _Run(folder, state)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    run = _Run(folder, {"fingerprint": fingerprint, "stage1_done": 0, "stage2_done": 0, "history": [], "best": None})
    run.save()
    return run


def _next_version(store: Any, name: str) -> str:
    numbers = [int(m.version) for m in store.artifacts.versions(name) if m.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def _resolve_base(store: Any, base: str) -> Any:
    """The base encoder's files: a store / catalog model, or a local Hugging Face encoder folder."""
    from ..types import ModelInfo

    folder = Path(base).expanduser()
    if (folder / "config.json").is_file() and store.entry(base) is None:
        # A plain encoder folder (``BertModel``) serves no task, so the store cannot infer one for it.
        return ModelInfo(
            name=folder.resolve().name,
            version="local",
            tasks=("embed",),
            runtime="transformers",
            path=folder.resolve(),
            source="local",
        )
    info = store.resolve(base)
    if info.runtime not in _BASE_RUNTIMES or not (Path(info.path) / "config.json").is_file():
        raise UnknownModelError(
            f"base {base!r} ({info.runtime}) is not a BERT-family encoder modeldeck can fine-tune",
            hint="use an embed model such as all-MiniLM-L6-v2, or a Hugging Face BERT-family folder",
        )
    return info


def finetune(
    task: str,
    *,
    data: str | Path,
    name: str,
    base: str = "all-MiniLM-L6-v2",
    valid: str | Path | None = None,
    test: str | Path | None = None,
    unlabeled: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    config: FinetuneConfig | Mapping[str, Any] | None = None,
    resume: bool = False,
    progress: bool = False,
    settings: Settings | None = None,
    on_epoch: Callable[[EpochEvent], None] | None = None,
    **overrides: Any,
) -> FinetuneReport:
    """Fine-tune ``base`` on labelled ``data`` and import the result into the store as a new version of ``name``.

    ``config`` (or keyword overrides such as ``epochs=4``) sets the recipe; see ``FinetuneConfig``.
    ``on_epoch`` is called after each epoch's checkpoint is written.
    """
    if task not in _TASKS:
        raise UnknownNameError("fine-tuning task", task, _TASKS)
    cfg = _config(config, overrides)
    settings = settings or Settings.from_env()
    from ..store import ModelStore
    from ..store.catalog import check_name

    check_name(name, "a model name")
    store = ModelStore(settings)
    kit: Kit = _KITS[task](
        data,
        valid,
        test,
        text_column=text_column,
        label_column=label_column,
        valid_split=cfg.valid_split,
        seed=cfg.seed,
    )
    extra_texts = _read_unlabeled(unlabeled, text_column) if unlabeled is not None else ()
    from ..runtimes.awd_lstm import is_awd_lstm_base

    awd = is_awd_lstm_base(base)
    if awd and task != "classify":
        raise ConfigError(
            f"fine-tuning {task} needs a BERT-family base with a fast tokenizer; AWD-LSTM is a classify base",
            hint="use --base all-MiniLM-L6-v2 or a Hugging Face BERT-family folder",
        )
    info = _awd_info(base) if awd else _resolve_base(store, base)
    digests = {"data": file_digest(data)}
    if valid is not None:
        digests["valid"] = file_digest(valid)
    if unlabeled is not None:
        digests["unlabeled"] = file_digest(unlabeled)
    identity = [task, cfg.model_dump(), digests, info.name, info.version, text_column, label_column]
    fingerprint = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    run = _open_run(Path(settings.home) / "finetune" / name, fingerprint, resume)
    make = _trainers(run, cfg, base, info, kit, [*kit.train_texts, *extra_texts] if awd else ())

    interrupted = False
    with _Progress(progress) as bar:
        try:
            if _stage1_pending(run, cfg):
                _stage1(run, cfg, make("lm"), [*kit.train_texts, *extra_texts], bar, on_epoch)
            clf = make(kit.head)
            _stage2(run, cfg, clf, kit, bar, on_epoch)
        except KeyboardInterrupt:
            interrupted = True
    best = run.state["best"]
    bad = dict(kit.bad_rows)
    if interrupted or best is None:
        return FinetuneReport(
            None,
            {},
            run.state["history"],
            None,
            kit.labels,
            run.folder,
            bad,
            interrupted=True,
            data_notes=kit.data_notes(),
        )

    if best["epoch"] != run.state["stage2_done"]:  # the model in memory is the last epoch's
        clf.load_weights(run.file("best.safetensors"))
    eval_batch = max(cfg.batch_size, 32)
    # A run checkpointed before the best epoch's figures were kept in state.json scores them again.
    metrics: dict[str, Any] = {"valid": best.get("valid") or kit.scores(clf, "valid", eval_batch)}
    if kit.has_split("test"):
        metrics["test"] = kit.scores(clf, "test", eval_batch)
    export = run.file("export")
    if export.exists():
        shutil.rmtree(export)
    clf.export(export)
    plot = _curve_plot(run.state["history"], export / "curves.png")
    notes = kit.data_notes()
    card = {
        "description": f"{base} fine-tuned for {task} on {Path(data).name} ({cfg.recipe})",
        "base": {"name": info.name, "version": info.version},
        "data": {
            **{k: f"sha256:{v}" for k, v in digests.items()},
            **kit.sizes(),
            "bad_rows": bad,
            **notes,
        },
        "recipe": cfg.model_dump(),
        "labels": list(kit.labels),
        "multi_label": kit.multi_label,
        "metrics": metrics,
        "best_epoch": best["epoch"],
        "history": run.state["history"],
        "plots": {"curves": "curves.png"} if plot is not None else {},
    }
    imported = store.import_model(
        export, name, version=_next_version(store, name), tasks=(task,), runtime=clf.name, card=card
    )
    return FinetuneReport(
        f"{imported.name}@{imported.version}",
        metrics,
        run.state["history"],
        best["epoch"],
        kit.labels,
        run.folder,
        bad,
        plot=plot,
        data_notes=notes,
    )


def _awd_info(base: str) -> Any:
    from ..types import ModelInfo

    if base == "awd-lstm":  # fastai's default sizes, random initial weights (pretrained=False)
        return ModelInfo(name="awd-lstm", version="random", tasks=("classify",), runtime="awd-lstm", path=Path("."))
    folder = Path(base).expanduser().resolve()
    return ModelInfo(name=folder.name, version="local", tasks=("classify",), runtime="awd-lstm", path=folder)


def _trainers(
    run: _Run,
    cfg: FinetuneConfig,
    base: str,
    info: Any,
    kit: Kit,
    vocab_texts: Sequence[str],
) -> Callable[[str], Any]:
    """``make(head)`` for ``"lm"`` (stage 1) and the kit's head (stage 2) of the base's family.

    An AWD-LSTM's vocabulary is built once from the target texts and kept in the run folder, so
    both stages, and a resumed run, number words alike.
    """
    common = {"device": cfg.device, "max_length": cfg.max_length, "seed": cfg.seed}
    if vocab_texts:
        from ..runtimes.awd_lstm import AwdLstmTrainer

        vocab_file = run.file("vocab.json")
        if not vocab_file.is_file():
            _write_json(AwdLstmTrainer.build_vocab(vocab_texts), vocab_file)
        vocab = json.loads(vocab_file.read_text(encoding="utf-8"))

        def make_awd(head: str) -> Any:
            extra = {"labels": kit.classes, "multi_label": kit.multi_label} if head == "classify" else {}
            return AwdLstmTrainer.load(base, head=head, vocab=vocab, **extra, **common)

        return make_awd
    from ..runtimes.training import EncoderTrainer

    def make_encoder(head: str) -> Any:
        if head == "lm":
            return EncoderTrainer.load(info.path, head="mlm", **common)
        return EncoderTrainer.load(info.path, head=head, labels=kit.classes, multi_label=kit.multi_label, **common)

    return make_encoder


def _stage1_pending(run: _Run, cfg: FinetuneConfig) -> bool:
    """Stage 1 still has epochs to run, or its encoder was not handed over before a kill."""
    if cfg.recipe != "ulmfit" or cfg.lm_epochs == 0 or run.state["stage2_done"] > 0:
        return False
    return run.state["stage1_done"] < cfg.lm_epochs or not run.file("lm-encoder.safetensors").is_file()


def _read_unlabeled(path: str | Path, text_column: str | None) -> tuple[str, ...]:
    from ..errors import ModelDeckError
    from ..jobs._readers import open_source

    source = open_source(path, text_column or "text")
    return tuple(
        v
        for _, values in source.batches()
        for v in values
        if isinstance(v, str) and v.strip() and not isinstance(v, ModelDeckError)
    )


def _stage1(
    run: _Run,
    cfg: FinetuneConfig,
    lm: Any,
    texts: Sequence[str],
    bar: _Progress,
    on_epoch: Callable[[EpochEvent], None] | None,
) -> None:
    """LM fine-tuning on the target texts (masked LM for encoders, next token for AWD-LSTM): all groups
    train, discriminative rates, one slanted triangular schedule."""
    rows = TokenRows.encode(run.file("lm-ids.int32"), texts, lm.encode)
    n_groups = len(lm.groups)
    rates = discriminative_rates(cfg.lm_lr, n_groups, cfg.factor)
    steps = -(-len(rows) // cfg.batch_size)
    total = steps * cfg.lm_epochs
    lm.set_trainable(n_groups)
    done = run.state["stage1_done"]
    if done:
        lm.load_weights(run.file("lm.safetensors"))
        lm.load_optimizer(run.file("lm-optimizer.safetensors"))
    for epoch in range(done, cfg.lm_epochs):
        started = time.perf_counter()
        lm.seed(cfg.seed * 7919 + 1000 + epoch)
        handle = bar.epoch(f"stage 1 (LM) epoch {epoch + 1}/{cfg.lm_epochs}", steps)
        losses = []
        for i, batch in enumerate(_batches(len(rows), cfg.batch_size, cfg.seed * 7919 + 1000 + epoch)):
            mult = slanted_triangular(epoch * steps + i, total, cut_frac=cfg.cut_frac, ratio=cfg.ratio)
            lm.set_rates([r * mult for r in rates])
            losses.append(lm.train_step([rows[j] for j in batch]))
            bar.step(handle, losses[-1])
        lm.save_weights(run.file("lm.safetensors"))
        lm.save_optimizer(run.file("lm-optimizer.safetensors"))
        entry = {
            "stage": 1,
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "seconds": round(time.perf_counter() - started, 3),
        }
        run.state["history"].append(entry)
        run.state["stage1_done"] = epoch + 1
        run.save()
        if on_epoch is not None:
            on_epoch(entry)
    lm.save_encoder(run.file("lm-encoder.safetensors"))


def _stage2(
    run: _Run,
    cfg: FinetuneConfig,
    clf: Any,
    kit: Kit,
    bar: _Progress,
    on_epoch: Callable[[EpochEvent], None] | None,
) -> None:
    """The classifier (of texts or tokens): gradual unfreezing, discriminative rates and STLR (ulmfit), or
    all layers at one rate (plain)."""
    rows, targets = kit.train_rows(clf, run.folder)
    n_groups = len(clf.groups)
    ulmfit = cfg.recipe == "ulmfit"
    rates = discriminative_rates(cfg.peak_lr, n_groups, cfg.factor) if ulmfit else [cfg.peak_lr] * n_groups
    steps = -(-len(rows) // cfg.batch_size)
    total = steps * cfg.epochs if cfg.max_steps is None else min(steps * cfg.epochs, cfg.max_steps)
    done = run.state["stage2_done"]
    if done:
        clf.load_weights(run.file("last.safetensors"))
        clf.load_optimizer(run.file("optimizer.safetensors"))
    elif run.file("lm-encoder.safetensors").is_file():
        clf.load_encoder(run.file("lm-encoder.safetensors"))
    for epoch in range(done, cfg.epochs):
        best = run.state["best"]
        if best is not None and epoch - best["epoch"] >= cfg.patience:
            break  # early stopping: the best epoch is already kept
        if epoch * steps >= total:
            break  # max_steps reached
        started = time.perf_counter()
        top = trainable_groups(epoch, n_groups, per_epoch=cfg.unfreeze_per_epoch) if ulmfit else n_groups
        clf.set_trainable(top)
        seed = cfg.seed * 7919 + 2000 + epoch
        clf.seed(seed)
        handle = bar.epoch(f"stage 2 (classifier) epoch {epoch + 1}/{cfg.epochs}", steps)
        losses = []
        for i, batch in enumerate(_batches(len(rows), cfg.batch_size, seed)):
            step = epoch * steps + i
            if step >= total:
                break  # max_steps: the epoch ends early, then is scored and checkpointed as usual
            mult = (
                slanted_triangular(step, total, cut_frac=cfg.cut_frac, ratio=cfg.ratio)
                if ulmfit
                else linear_decay(step, total)
            )
            clf.set_rates([r * mult for r in rates])
            losses.append(clf.train_step([rows[j] for j in batch], [targets[j] for j in batch]))
            bar.step(handle, losses[-1])
        scores = kit.scores(clf, "valid", max(cfg.batch_size, 32))
        entry = {
            "stage": 2,
            "epoch": epoch + 1,
            "trainable_groups": top,
            "train_loss": float(np.mean(losses)),
            "valid_loss": scores["loss"],
            **kit.history_fields(scores),
            "seconds": round(time.perf_counter() - started, 3),
        }
        bar.note(handle, f"stage 2 epoch {epoch + 1}: valid score {scores['score']:.3f}")
        key = (scores["score"], -scores["loss"])
        clf.save_weights(run.file("last.safetensors"))
        if best is None or key > (best["score"], -best["loss"]):
            _link(run.file("last.safetensors"), run.file("best.safetensors"))
            # The best epoch's valid figures are kept: the report needs no second pass over the valid rows.
            run.state["best"] = {"epoch": epoch + 1, "score": scores["score"], "loss": scores["loss"], "valid": scores}
        clf.save_optimizer(run.file("optimizer.safetensors"))
        run.state["history"].append(entry)
        run.state["stage2_done"] = epoch + 1
        run.save()
        if on_epoch is not None:
            on_epoch(entry)


def _link(source: Path, target: Path) -> None:
    """``target`` becomes a second name of ``source`` (no second 90 MB write); ``last`` is rewritten, never edited."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _curve_plot(history: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Train and valid loss and valid accuracy per stage-2 epoch, as a PNG (matplotlib, Agg)."""
    rows = [h for h in history if h["stage"] == 2]
    if not rows:
        return None
    from ..evaluation._plot import pyplot

    plt = pyplot()
    epochs = [h["epoch"] for h in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h["train_loss"] for h in rows], marker="o", label="train loss")
    left.plot(epochs, [h["valid_loss"] for h in rows], marker="o", label="valid loss")
    left.set_xlabel("epoch")
    left.legend()
    for key, label in (
        ("valid_accuracy", "valid accuracy"),
        ("valid_f1", "valid micro F1 (entities)"),
        ("valid_macro_f1", "valid macro F1"),
    ):
        if key in rows[0]:
            right.plot(epochs, [h[key] for h in rows], marker="o", label=label)
    right.set_xlabel("epoch")
    right.set_ylim(0, 1.02)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
