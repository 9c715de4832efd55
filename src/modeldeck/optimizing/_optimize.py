"""``modeldeck.optimize``: export a model to ONNX (and int8), verify each variant against the original, store the good.

Each variant is loaded through the same task as the original and run on the same inputs (the
caller's calibration texts or a built-in varied sample), so tokenization, chunking and decoding
are part of what is compared. A variant inside the ``Budget`` becomes a store version of the
same model (``NAME@onnx``, ``NAME@int8``) with its provenance and figures in its card; one
outside it is reported with the figures that refused it, and not stored.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._progress import progress_bar
from ..config import Settings
from ..errors import ConfigError, InputError, OptionError, UnknownNameError
from ..types import ModelInfo
from ._compare import COMPARE, Budget, judge
from ._sample import QUESTIONS, builtin_scenes, builtin_texts

__all__ = ["Budget", "OptimizeReport", "VariantReport", "optimize"]

#: The runtimes each task can be exported from, and the export that reads them.
_SOURCES: Mapping[str, Mapping[str, str]] = {
    "embed": {"sentence-transformers": "sentence-transformers"},
    "classify": {"transformers": "sequence-classification"},
    "ner": {"transformers": "token-classification"},
    "qa": {"transformers": "question-answering"},
    "classify-image": {"torchvision": "torchvision-classifier"},
    "detect": {"torchvision": "torchvision-detector"},
}
#: Tasks whose inputs are images (verified on a folder of them, or on built-in images).
_IMAGE_TASKS = ("classify-image", "detect")


@dataclass(frozen=True)
class VariantReport:
    """One row of the report: a variant (or the original), its speed, size and agreement, and the verdict."""

    name: str  # "original", "onnx", "int8-dynamic", "int8-per-channel", ...
    kind: str  # "original", "fp32" or "int8"
    options: Mapping[str, Any]
    latency_ms: float  # median of one input at a time
    throughput: float  # inputs per second at batch 32
    size_bytes: int
    accuracy: Mapping[str, float] = field(default_factory=dict)
    accepted: bool | None = None  # None for the original
    reason: str = ""
    stored: str | None = None  # "name@version" once registered
    speedup: float = 1.0  # throughput over the original's, measured in the same run

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "options": dict(self.options),
            "latency_ms": self.latency_ms,
            "throughput": self.throughput,
            "speedup": self.speedup,
            "size_bytes": self.size_bytes,
            "accuracy": dict(self.accuracy),
            "accepted": self.accepted,
            "reason": self.reason,
            "stored": self.stored,
        }


@dataclass(frozen=True)
class OptimizeReport:
    task: str
    model: str  # the original, "name@version"
    sample: str  # what the variants were verified on
    budget: Budget
    variants: tuple[VariantReport, ...]

    @property
    def stored(self) -> list[str]:
        return [v.stored for v in self.variants if v.stored is not None]

    def variant(self, name: str) -> VariantReport:
        for v in self.variants:
            if v.name == name:
                return v
        raise UnknownNameError("variant", name, [v.name for v in self.variants])

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "sample": self.sample,
            "budget": self.budget.model_dump(),
            "variants": [v.to_dict() for v in self.variants],
        }


@dataclass(frozen=True)
class _Candidate:
    name: str
    kind: str
    options: Mapping[str, Any]
    #: Writes the variant's folder; answers options found while making it, or ``None`` when the
    #: variant is not needed (the guided search when plain per-channel int8 is already inside the budget).
    make: Callable[[Path], Mapping[str, Any] | None]


class _Probe:
    """Runs a variant folder through the task on (some of) the verification inputs, against the original's results."""

    def __init__(self, task: str, info: ModelInfo, inputs: Sequence[Any], reference: Sequence[Any], settings: Settings):
        self.task, self.info, self.inputs, self.reference, self.settings = task, info, inputs, reference, settings
        #: Each candidate's results on the whole sample, by candidate name (the search starts from per-channel's).
        self.seen: dict[str, list[Any]] = {}

    def load(self, folder: Path, version: str) -> Any:
        from .._api import load_info
        from ..store.sidecar import read_sidecar

        sidecar = read_sidecar(folder)  # a classify-image variant's labels and preprocessing
        card = sidecar.card() if sidecar is not None else {}
        variant = replace(self.info, version=version, runtime="onnxruntime", path=folder, card=card)
        return load_info(variant, self.task, settings=self.settings)

    def results(self, folder: Path, subset: Sequence[int] | None = None) -> list[Any]:
        loaded = self.load(folder, folder.name)
        try:
            return list(loaded.predict(self.inputs if subset is None else [self.inputs[i] for i in subset]))
        finally:
            loaded.close()

    def figures(self, results: Sequence[Any], subset: Sequence[int] | None = None) -> dict[str, float]:
        reference = self.reference if subset is None else [self.reference[i] for i in subset]
        return COMPARE[self.task](reference, results)

    def margins(self, results: Sequence[Any], budget: Budget, subset: Sequence[int] | None = None) -> list[float]:
        """Each input's own margin to ``budget`` (its worst figure minus that figure's limit)."""
        reference = self.reference if subset is None else [self.reference[i] for i in subset]
        return [_margin(COMPARE[self.task]([r], [v]), budget) for r, v in zip(reference, results, strict=True)]


def _margin(figures: Mapping[str, float], budget: Budget) -> float:
    """How far inside ``budget`` the figures are (negative: outside), by the figure nearest its limit."""
    limits = {"cosine_mean": budget.cosine_mean, "cosine_min": budget.cosine_min, "agreement": budget.agreement}
    return min((figures[k] - limit for k, limit in limits.items() if k in figures), default=0.0)


#: How many of the worst inputs rank the nodes, and how many nodes at most the search keeps in fp32
#: (beyond a third of them the variant is no faster than the feed-forward recipe).
_PROBE_INPUTS = 48
_KEEP_STEPS = (1, 2, 3, 4, 6, 8, 12)


def _guided_exclusions(
    source: Path, out: Path, nodes: Sequence[str], probe: _Probe, budget: Budget, bar: Any
) -> Mapping[str, Any] | None:
    """Per-channel int8 with the fewest MatMuls kept fp32 that brings the variant inside ``budget``.

    Each quantized node is kept fp32 alone, and the variant run on the inputs that plain int8 hurts
    most; the nodes ranked by how far those inputs then still fall outside the budget (the sum of
    their shortfalls, smaller first) are kept, 1, 2, 3, ... at a time, until the whole sample is
    inside the budget (a sensitivity search: what "sensitive nodes may stay fp32" means, measured
    rather than guessed). ``None`` when plain per-channel int8 needs no help.
    """
    from ..runtimes import onnx_export

    plain = probe.seen.get("int8-per-channel")
    if plain is None:  # not among this run's candidates
        onnx_export.quantize_int8(source, out, per_channel=True)
        plain = probe.results(out)
    if judge(probe.figures(plain), budget) is None:
        return None
    margins = probe.margins(plain, budget)
    worst = sorted(range(len(margins)), key=margins.__getitem__)[:_PROBE_INPUTS]
    job = bar.add_task("int8: node sensitivity", total=len(nodes)) if bar is not None else None
    shortfall: dict[str, float] = {}
    for node in nodes:
        onnx_export.quantize_int8(source, out, per_channel=True, exclude=[node])
        # Summed per input, not the subset's aggregate figures: ranked by the mean of 48 bad inputs,
        # all-MiniLM-L6-v2 needed 4 big MatMuls kept (1.60x fp32); by their shortfall, 2 (1.76x).
        shortfall[node] = sum(max(0.0, -m) for m in probe.margins(probe.results(out, worst), budget, worst))
        if bar is not None:
            bar.advance(job)
    ranked = sorted(nodes, key=shortfall.__getitem__)
    steps = [k for k in _KEEP_STEPS if k <= max(1, len(nodes) // 3)]
    for k in steps:
        onnx_export.quantize_int8(source, out, per_channel=True, exclude=ranked[:k])
        if judge(probe.figures(probe.results(out)), budget) is None:
            break
    return {"fp32_nodes": ranked[:k], "searched_nodes": len(nodes)}


def _budget(budget: Budget | Mapping[str, Any] | None) -> Budget:
    if budget is None or isinstance(budget, Budget):
        return budget or Budget()
    try:
        return Budget.model_validate(dict(budget))
    except ValidationError as exc:
        from ..tasks.base import option_error

        raise option_error("optimize budget", Budget, exc) from None


def _read_calibration(path: str | Path, text_column: str | None) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no calibration file at {str(path)!r}", hint="give a .txt (one text a line), .csv or .jsonl")
    if file.suffix in (".txt", ""):
        texts = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        from ..finetuning._recipe import _read_unlabeled

        texts = list(_read_unlabeled(file, text_column))
    if len(texts) < 8:
        raise InputError(
            f"the calibration file {str(path)!r} has {len(texts)} usable texts; verification needs at least 8",
            hint="give a few hundred texts like the ones the model will see",
        )
    return texts


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _images(folder: str | Path | None, task: str = "classify-image") -> list[Any]:
    """The image files of ``folder``; else for ``detect`` 24 built-in scenes with shapes (``builtin_scenes``),
    for ``classify-image`` 48 built-in images: colour fields with noise and a patch, varied sizes."""
    if folder is not None:
        path = Path(folder)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES) if path.is_dir() else []
        if len(files) < 4:
            raise InputError(
                f"{str(folder)!r} holds {len(files)} images; {task} verification needs a folder of at least 4",
                hint=f"give a folder of {', '.join(_IMAGE_SUFFIXES)} files",
            )
        return [str(p) for p in files]
    if task == "detect":
        return list(builtin_scenes())
    import numpy as np

    rng = np.random.default_rng(0)
    images = []
    for i in range(48):
        h, w = int(rng.integers(64, 400)), int(rng.integers(64, 400))
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(x / rng.uniform(5, 60) + c) * np.cos(y / rng.uniform(5, 60)) for c in range(3)], -1)
        image = (base * 100 + 128 + rng.normal(0, 10 + i, (h, w, 3))).clip(0, 255).astype(np.uint8)
        image[h // 4 : h // 2, w // 3 : w // 2] = rng.integers(0, 255, 3)
        images.append(image)
    return images


def _timing(task: Any, inputs: Sequence[Any], seconds: float) -> tuple[float, float]:
    """Median latency of one input (ms) and throughput at batch 32 (inputs/s), each run for about ``seconds``."""
    single: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(single) < 3:
        start = time.perf_counter()
        task.predict([inputs[i % len(inputs)]])
        single.append(time.perf_counter() - start)
        i += 1
    batch = [inputs[j % len(inputs)] for j in range(32)]
    task.predict(batch)  # warm-up at this shape
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        task.predict(batch)
        done += len(batch)
    return statistics.median(single) * 1000, done / (time.perf_counter() - start)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _typical(inputs: Sequence[Any], count: int = 32) -> list[Any]:
    """The ``count`` inputs of median length: what timing runs on, so a few long paragraphs do not set the pace."""
    order = sorted(range(len(inputs)), key=lambda i: len(str(inputs[i])))
    start = max(0, len(order) // 2 - count // 2)
    return [inputs[i] for i in order[start : start + count]]


def _ffn_outputs(nodes: Sequence[str]) -> list[str]:
    # The feed-forward down-projections of BERT-family layers carry the largest activations, and
    # their int8 error is what moves sentence vectors most; kept fp32 they cost a sixth of the MatMuls.
    return [n for n in nodes if n.endswith("/output/dense/MatMul") and "/attention/" not in n]


def _candidates(task: str, info: ModelInfo, int8: bool, probe: _Probe, budget: Budget, bar: Any) -> list[_Candidate]:
    from ..runtimes import onnx_export

    head = _SOURCES[task][info.runtime]

    def export(out: Path) -> Mapping[str, Any]:
        if head == "sentence-transformers":
            onnx_export.export_sentence_transformer(Path(info.path), out)
        elif head == "torchvision-classifier":
            onnx_export.export_torchvision_classifier(Path(info.path), info.card, out)
        elif head == "torchvision-detector":
            onnx_export.export_torchvision_detector(Path(info.path), info.card, out)
        else:
            onnx_export.export_transformers_head(Path(info.path), head, out)
        return {}

    fp32 = _Candidate("onnx", "fp32", {"opset": onnx_export.OPSET, "exporter": "torch.onnx (TorchScript)"}, export)
    if not int8:
        return [fp32]

    def quantized(per_channel: bool, keep_ffn: bool) -> Callable[[Path], Mapping[str, Any]]:
        def make(out: Path) -> Mapping[str, Any]:
            source = out.parent / "onnx"
            exclude = _ffn_outputs(onnx_export.matmul_nodes(source / "model.onnx")) if keep_ffn else []
            onnx_export.quantize_int8(source, out, per_channel=per_channel, exclude=exclude)
            return {}

        return make

    def guided(out: Path) -> Mapping[str, Any] | None:
        source = out.parent / "onnx"
        return _guided_exclusions(source, out, onnx_export.matmul_nodes(source / "model.onnx"), probe, budget, bar)

    return [
        fp32,
        _Candidate("int8-dynamic", "int8", {"method": "dynamic", "per_channel": False}, quantized(False, False)),
        _Candidate("int8-per-channel", "int8", {"method": "dynamic", "per_channel": True}, quantized(True, False)),
        _Candidate(
            "int8-per-channel-ffn-fp32",
            "int8",
            {"method": "dynamic", "per_channel": True, "fp32_nodes": "feed-forward output MatMuls"},
            quantized(True, True),
        ),
        _Candidate("int8-per-channel-guided", "int8", {"method": "dynamic", "per_channel": True}, guided),
    ]


def optimize(
    task: str,
    *,
    model: str | None = None,
    int8: bool = False,
    calibration: str | Path | None = None,
    budget: Budget | Mapping[str, Any] | None = None,
    text_column: str | None = None,
    timing_seconds: float = 3.0,
    register: bool = True,
    progress: bool = False,
    settings: Settings | None = None,
) -> OptimizeReport:
    """Export ``model`` (default: the task's default model) to ONNX, and to int8 when ``int8``, then verify,
    time and store each variant inside ``budget`` as ``NAME@onnx`` / ``NAME@int8``. See docs/optimize.md."""
    from .._api import load_info
    from ..runtimes.onnx_export import tool_versions
    from ..store import ModelStore

    if task not in _SOURCES:
        raise UnknownNameError("optimize task", task, sorted(_SOURCES))
    if int8 and task in _IMAGE_TASKS:
        # Dynamic quantization covers MatMul and Gemm: a convolutional network would keep nearly all its work fp32.
        raise OptionError(
            f"int8 variants are made for embed, classify, ner and qa; {task} gets the fp32 ONNX variant",
            hint=f"run `modeldeck optimize {task}` without --int8",
        )
    if timing_seconds <= 0:
        raise OptionError(f"timing_seconds must be > 0, got {timing_seconds}")
    limits = _budget(budget)
    settings = settings or Settings.from_env()
    store = ModelStore(settings)
    info = store.resolve(model or task, task=task)
    if info.runtime not in _SOURCES[task]:
        raise ConfigError(
            f"model {info.name}@{info.version} runs on {info.runtime!r}; optimize exports {task} models from "
            f"{', '.join(_SOURCES[task])}",
            hint="name the original model (not an ONNX variant) with --model",
        )
    if task in _IMAGE_TASKS:
        inputs: list[Any] = _images(calibration, task)
        sample = (
            f"{Path(calibration).name} ({len(inputs)} images)" if calibration else f"built-in ({len(inputs)} images)"
        )
    elif calibration is not None:
        inputs = _read_calibration(calibration, text_column)
        sample = f"{Path(calibration).name} ({len(inputs)} texts)"
    else:
        inputs = builtin_texts()
        sample = f"built-in sample ({len(inputs)} texts)"
    if task == "qa":
        # Each text is a context, asked in turn each of a few questions that the model may or may not answer.
        inputs = [{"question": QUESTIONS[i % len(QUESTIONS)], "context": text} for i, text in enumerate(inputs)]

    # torchvision pads a detector's batch to its largest image, which moves its answers a little; the
    # ONNX variant runs each image alone, so the reference is the original's answer for a batch of one.
    original = load_info(info, task, settings=settings)
    try:
        if task == "detect":
            reference = [original.predict([image])[0] for image in inputs]
        else:
            reference = original.predict(inputs)
        latency, throughput = _timing(original, _typical(inputs), timing_seconds)
    finally:
        original.close()
    rows = [VariantReport("original", "original", {}, latency, throughput, _size(Path(info.path)))]
    probe = _Probe(task, info, inputs, reference, settings)
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="optimize-", dir=settings.home))
    try:
        folders: dict[str, Path] = {}
        with progress_bar(progress) as bar:
            candidates = _candidates(task, info, int8, probe, limits, bar)
            job = bar.add_task(f"optimize {task}", total=len(candidates)) if bar is not None else None
            for candidate in candidates:
                folder = work / candidate.name
                found = candidate.make(folder)
                if bar is not None:
                    bar.advance(job)
                if found is None:
                    continue
                folders[candidate.name] = folder
                options = {**candidate.options, **found}
                loaded = probe.load(folder, candidate.name)
                try:
                    probe.seen[candidate.name] = list(loaded.predict(inputs))
                    figures = probe.figures(probe.seen[candidate.name])
                    latency, throughput = _timing(loaded, _typical(inputs), timing_seconds)
                finally:
                    loaded.close()
                refused = judge(figures, limits)
                rows.append(
                    VariantReport(
                        candidate.name,
                        candidate.kind,
                        options,
                        latency,
                        throughput,
                        _size(folder / "model.onnx"),
                        figures,
                        accepted=refused is None,
                        reason=f"outside the budget: {refused}" if refused else "inside the budget",
                        speedup=throughput / rows[0].throughput,
                    )
                )
        rows, chosen = _choose(rows)
        if register:
            provenance = {
                "of": f"{info.name}@{info.version}",
                "task": task,
                "tools": tool_versions(),
                "verified_on": sample,
                "budget": limits.model_dump(),
            }
            rows = [
                _store(store, info, task, row, folders, provenance, rows[0]) if row.name in chosen else row
                for row in rows
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return OptimizeReport(task, f"{info.name}@{info.version}", sample, limits, tuple(rows))


def _choose(rows: list[VariantReport]) -> tuple[list[VariantReport], set[str]]:
    """The variants to store: the fp32 one when accepted, and the fastest accepted int8 one."""
    accepted_int8 = [r for r in rows if r.kind == "int8" and r.accepted]
    best = max(accepted_int8, key=lambda r: r.throughput, default=None)
    chosen = {r.name for r in rows if r.kind == "fp32" and r.accepted} | ({best.name} if best else set())
    out = []
    for row in rows:
        if best is not None and row.kind == "int8" and row.accepted and row is not best:
            row = replace(row, reason=f"inside the budget; {best.name} is faster")
        out.append(row)
    return out, chosen


def _store(
    store: Any,
    info: ModelInfo,
    task: str,
    row: VariantReport,
    folders: Mapping[str, Path],
    provenance: Mapping[str, Any],
    original: VariantReport,
) -> VariantReport:
    version = "onnx" if row.kind == "fp32" else "int8"
    if store.artifacts.read(info.name, version) is not None:  # a new run replaces the last one's variant
        store.remove(info.name, version)
    card = {
        "description": f"{info.name}@{info.version} as ONNX {row.kind} ({row.name}), verified by modeldeck optimize",
        "license": info.license,
        "variant": {**provenance, "name": row.name, "kind": row.kind, "options": dict(row.options)},
        "figures": {
            "accuracy": dict(row.accuracy),
            "latency_ms_batch1": round(row.latency_ms, 3),
            "throughput_batch32": round(row.throughput, 2),
            "original_throughput_batch32": round(original.throughput, 2),
            "speedup": round(row.speedup, 3),
            "size_bytes": row.size_bytes,
        },
    }
    stored = store.import_model(
        folders[row.name], info.name, version=version, tasks=(task,), runtime="onnxruntime", card=card
    )
    return replace(row, stored=f"{stored.name}@{stored.version}")
