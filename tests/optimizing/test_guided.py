"""The guided int8 search: the fewest MatMuls kept fp32 that bring a variant inside the budget, found by measuring."""

from __future__ import annotations

from pathlib import Path

import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.optimizing import optimize
from modeldeck.optimizing._compare import COMPARE, Budget, judge
from modeldeck.runtimes.onnx_export import matmul_nodes

from ..support import TINY_WORDS, save_tiny_bert_ner
from ..tasks.language_models import QA_WORDS, save_tiny_bert_classifier
from .test_heads import _texts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _stored(tmp_path: Path, task: str) -> tuple[Settings, Path]:
    settings = Settings(home=tmp_path / "home")
    folder = tmp_path / task
    folder.mkdir()
    path = save_tiny_bert_ner(folder) if task == "ner" else save_tiny_bert_classifier(folder)
    modeldeck.ModelStore(settings).import_model(
        path, f"tiny-{task}", version="1", tasks=(task,), runtime="transformers"
    )
    calibration = tmp_path / "texts.txt"
    calibration.write_text("\n".join(_texts(TINY_WORDS if task == "ner" else QA_WORDS, 200, 60, seed=2)), "utf-8")
    return settings, calibration


def test_the_search_keeps_the_few_sensitive_nodes_fp32_where_fixed_recipes_fail(tmp_path: Path) -> None:
    # The tiny random NER model's logits sit close together, so every fixed int8 recipe flips a few
    # entities (agreement ~0.98 < 0.99); one MatMul kept fp32, found by the search, is enough.
    settings, calibration = _stored(tmp_path, "ner")
    report = optimize(
        "ner", model="tiny-ner@1", int8=True, calibration=calibration, timing_seconds=0.02, settings=settings
    )
    fixed = [report.variant(n) for n in ("int8-dynamic", "int8-per-channel", "int8-per-channel-ffn-fp32")]
    assert not any(v.accepted for v in fixed), [(v.name, v.accuracy) for v in fixed]
    guided = report.variant("int8-per-channel-guided")
    assert guided.accepted and guided.stored == "tiny-ner@int8"
    kept = guided.options["fp32_nodes"]
    searched = guided.options["searched_nodes"]
    store = modeldeck.ModelStore(settings)
    assert searched == len(matmul_nodes(Path(store.resolve("tiny-ner@onnx").path) / "model.onnx"))
    assert 1 <= len(kept) <= searched // 3
    # Exactly the kept nodes are still float MatMuls in the stored graph; every other one is int8.
    assert matmul_nodes(Path(store.resolve("tiny-ner@int8").path) / "model.onnx") == kept

    texts = calibration.read_text("utf-8").splitlines()
    original = modeldeck.load("ner", model="tiny-ner@1", settings=settings)(texts)
    variant = modeldeck.load("ner", model="tiny-ner@int8", settings=settings)(texts)
    assert sum(len(r.entities) for r in original) > 0
    assert judge(COMPARE["ner"](original, variant), Budget()) is None


def test_no_search_when_plain_per_channel_int8_is_inside_the_budget(tmp_path: Path) -> None:
    settings, calibration = _stored(tmp_path, "classify")
    report = optimize(
        "classify", model="tiny-classify@1", int8=True, calibration=calibration, timing_seconds=0.02, settings=settings
    )
    assert report.variant("int8-per-channel").accepted
    assert "int8-per-channel-guided" not in [v.name for v in report.variants]
