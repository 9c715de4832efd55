"""The parts of ``modeldeck.optimize`` that need no model: budget, verdicts, comparisons, the built-in sample."""

from __future__ import annotations

import numpy as np
import pytest

from modeldeck.config import Settings
from modeldeck.errors import ConfigError, ModelNotInstalledError, OptionError, UnknownNameError
from modeldeck.optimizing import Budget, optimize
from modeldeck.optimizing._compare import COMPARE, judge
from modeldeck.optimizing._sample import builtin_scenes, builtin_texts
from modeldeck.store import ModelStore
from modeldeck.tasks.classify import ClassifyResult, Label
from modeldeck.tasks.results import Embedding, Entity, NERResult
from modeldeck.tasks.vision_results import DetectResult


def test_judge_names_each_figure_below_the_budget() -> None:
    budget = Budget()
    assert judge({"cosine_mean": 0.995, "cosine_min": 0.98}, budget) is None
    assert (
        judge({"cosine_mean": 0.96, "cosine_min": 0.95}, budget)
        == "cosine_mean 0.9600 < 0.9900; cosine_min 0.9500 < 0.9700"
    )
    assert judge({"agreement": 0.5}, Budget(agreement=0.4)) is None
    assert judge({"cosine_min": 0.99999994}, Budget(cosine_min=1)) == "cosine_min 0.99999994 < 1.0000"


def test_a_bad_budget_is_refused_with_the_valid_keys() -> None:
    with pytest.raises(OptionError, match=r"cosine_minimum.*valid options for optimize budget: agreement, cosine_mean"):
        optimize("embed", budget={"cosine_minimum": 0.9})
    with pytest.raises(OptionError, match="cosine_mean"):
        optimize("embed", budget={"cosine_mean": 2})


def test_unknown_task_lists_the_ones_optimize_exports() -> None:
    with pytest.raises(UnknownNameError, match="classify, classify-image, detect, embed, ner, qa"):
        optimize("parse")


def test_a_model_of_another_runtime_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="runs on 'spacy'"):
        optimize("ner", settings=Settings(home=tmp_path))


def test_embed_comparison_is_cosine() -> None:
    a = [Embedding(np.array([1, 0], np.float32)), Embedding(np.array([0, 2], np.float32))]
    b = [Embedding(np.array([2, 0], np.float32)), Embedding(np.array([1, 1], np.float32))]
    figures = COMPARE["embed"](a, b)
    assert figures["cosine_mean"] == pytest.approx((1 + 2**-0.5) / 2)
    assert figures["cosine_min"] == pytest.approx(2**-0.5)


def test_classify_and_ner_comparisons() -> None:
    def labels(*pairs: tuple[str, float]) -> ClassifyResult:
        return ClassifyResult(labels=tuple(Label(k, v) for k, v in pairs))

    figures = COMPARE["classify"]([labels(("a", 0.9), ("b", 0.1)), labels(("b", 0.6), ("a", 0.4))],
                                  [labels(("a", 0.8), ("b", 0.2)), labels(("a", 0.55), ("b", 0.45))])  # fmt: skip
    assert figures["agreement"] == 0.5 and figures["score_error"] == pytest.approx(0.15)
    e1, e2 = Entity("Paris", "LOC", 0, 5), Entity("Anna", "PER", 10, 14)
    assert COMPARE["ner"]([NERResult((e1, e2))], [NERResult((e1,))])["agreement"] == pytest.approx(2 / 3)
    assert COMPARE["ner"]([NERResult(())], [NERResult(())])["agreement"] == 1.0


def test_the_builtin_sample_is_deterministic_and_varied() -> None:
    texts = builtin_texts()
    assert texts == builtin_texts() and len(texts) == 300 and len(set(texts)) > 150
    assert min(map(len, texts)) <= 3 and max(map(len, texts)) > 1500  # one word to past a 256-token window
    assert any(not t.isascii() for t in texts)


def test_a_missing_variant_names_the_installed_version(tmp_path) -> None:
    store = ModelStore(Settings(home=tmp_path))
    with pytest.raises(ModelNotInstalledError, match="all-MiniLM-L6-v2@onnx"):
        store.resolve("embed@onnx")


def _detections(*rows: tuple[float, float, float, float, float, int]) -> DetectResult:
    array = np.array(rows, dtype=np.float64).reshape(-1, 6)
    ids = array[:, 5].astype(np.int64)
    return DetectResult.from_arrays(array[:, :4], array[:, 4], ids, [f"c{i}" for i in ids], (100, 100))


def test_detect_comparison_matches_boxes_of_the_same_class() -> None:
    a = _detections((10, 10, 50, 50, 0.9, 1), (60, 60, 90, 90, 0.5, 2))
    shifted = _detections((10, 10, 50, 51, 0.89, 1), (60, 60, 90, 90, 0.5, 2))  # IoU 40 / 41
    figures = COMPARE["detect"]([a, a], [shifted, a])
    assert figures["agreement"] == 1.0 and figures["box_agreement"] == 1.0
    assert figures["iou_min"] == pytest.approx(40 / 41) and figures["score_error"] == pytest.approx(0.01)
    assert judge(figures, Budget()) == "iou_min 0.9756 < 0.9900"
    other_class = _detections((10, 10, 50, 50, 0.9, 3), (60, 60, 90, 90, 0.5, 2))
    extra = _detections((10, 10, 50, 50, 0.9, 1), (60, 60, 90, 90, 0.5, 2), (0, 0, 5, 5, 0.3, 1))
    figures = COMPARE["detect"]([a, a, a], [other_class, extra, a])
    assert figures["agreement"] == pytest.approx(1 / 3)
    assert figures["box_agreement"] == pytest.approx(2 * (1 + 2 + 2) / (4 + 5 + 4))
    empty = _detections()
    assert COMPARE["detect"]([empty], [empty])["agreement"] == 1.0
    assert COMPARE["detect"]([empty], [a])["agreement"] == 0.0


def test_the_builtin_scenes_are_deterministic_and_varied() -> None:
    scenes = builtin_scenes()
    assert len(scenes) == 24 and all(np.array_equal(x, y) for x, y in zip(scenes, builtin_scenes(), strict=True))
    sizes = {s.shape[:2] for s in scenes}
    assert len(sizes) == 24 and min(min(s) for s in sizes) < 100 and max(max(s) for s in sizes) > 400
    assert all(s.dtype == np.uint8 and s.shape[2] == 3 and len(np.unique(s.reshape(-1, 3), axis=0)) > 1 for s in scenes)


def test_int8_is_refused_for_detect_before_any_work() -> None:
    with pytest.raises(OptionError, match="detect gets the fp32 ONNX variant"):
        optimize("detect", int8=True)
