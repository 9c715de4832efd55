"""MODELDECK_PREFER_VARIANT=onnx: a deck entry without a version serves its verified fp32 ONNX variant, visibly.

The variants are made for real by ``modeldeck.optimize`` from a tiny random-weight BERT classifier
(as in tests/optimizing), with a budget loose enough that an int8 variant is stored too.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.optimizing import optimize
from modeldeck.serving import create_app
from modeldeck.serving.specs import ModelSpec, prefer_variant

from ..support import LiveServer
from ..tasks.language_models import QA_WORDS, save_tiny_bert_classifier

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TEXTS = ["who founded the company", "the company was founded in paris", "born in"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prefer")
    settings = Settings(home=root / "home")
    folder = save_tiny_bert_classifier(root / "tiny")
    store = modeldeck.ModelStore(settings)
    store.import_model(folder, "tiny", version="1", tasks=("classify",), runtime="transformers")
    calibration = root / "texts.txt"
    calibration.write_text("\n".join(" ".join(QA_WORDS[i : i + 6]) for i in range(0, 120, 4)), encoding="utf-8")
    report = optimize(
        "classify",
        model="tiny@1",
        int8=True,
        calibration=calibration,
        budget={"agreement": 0.0},  # keep an int8 variant too, whatever random weights make of it
        timing_seconds=0.02,
        settings=settings,
    )
    assert sorted(report.stored) == ["tiny@int8", "tiny@onnx"]
    return settings.home


def _serve(live: list[LiveServer], home: Path, *models: str, **overrides: Any) -> LiveServer:
    settings = Settings.from_env({}, home=home, models=models, isolation="thread", **overrides)
    server = LiveServer(create_app(settings)).start()
    live.append(server)
    server.wait_ready()
    return server


def _listed(server: LiveServer) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in httpx.get(f"{server.url}/v1/models", timeout=30).json()["models"]}


def _predict(server: LiveServer, name: str) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/v1/models/{name}/predict", json={"inputs": TEXTS}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_without_the_setting_the_deck_serves_the_original(live, home: Path) -> None:
    server = _serve(live, home, "classify:tiny")
    listed = _listed(server)["classify"]
    assert (listed["version"], listed["runtime"]) == ("1", "transformers") and "variant" not in listed
    assert _predict(server, "classify")["version"] == "1"


def test_an_entry_without_a_version_serves_the_verified_fp32_variant(live, home: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="modeldeck.serving")
    server = _serve(
        live, home, "classify:tiny", "pinned=classify:tiny@1", prefer_variant="onnx", onnx_threads="classify=1"
    )
    listed = _listed(server)
    variant = {"served": "tiny@onnx", "preferred_over": "tiny@1", "setting": "MODELDECK_PREFER_VARIANT"}
    assert listed["classify"]["version"] == "onnx" and listed["classify"]["runtime"] == "onnxruntime"
    assert listed["classify"]["variant"] == variant
    assert listed["pinned"]["version"] == "1" and "variant" not in listed["pinned"]  # a named version is kept
    detail = httpx.get(f"{server.url}/v1/models/classify", timeout=30).json()
    assert detail["variant"] == variant and detail["runtime"]["session"]["intra_op_threads"] == 1
    served, pinned = _predict(server, "classify"), _predict(server, "pinned")
    assert served["version"] == "onnx" and pinned["version"] == "1"
    # The variant was verified against the original: the same labels, scores within float rounding.
    for a, b in zip(served["outputs"], pinned["outputs"], strict=True):
        assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]]
        assert [x["score"] for x in a["labels"]] == pytest.approx([x["score"] for x in b["labels"]], abs=1e-4)
    assert any("ready (tiny@onnx, preferred over tiny@1" in r.getMessage() for r in caplog.records)
    # A serving choice only: the Python API still loads what it is asked for.
    settings = Settings.from_env({}, home=home, prefer_variant="onnx")
    assert modeldeck.load("classify", model="tiny", settings=settings).info.version == "1"


def test_an_int8_variant_alone_is_never_preferred(live, home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    store = modeldeck.ModelStore(Settings(home=copy))
    store.remove("tiny", "onnx")
    assert store.resolve("tiny@int8").card["variant"]["kind"] == "int8"
    server = _serve(live, copy, "classify:tiny", prefer_variant="onnx")
    listed = _listed(server)["classify"]
    assert listed["version"] == "1" and "variant" not in listed
    assert _predict(server, "classify")["version"] == "1"


def test_a_variant_of_another_version_is_not_preferred(home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    settings = Settings(home=copy, prefer_variant="onnx")
    spec = ModelSpec.parse("classify:tiny")
    chosen, choice = prefer_variant(spec, settings)
    assert chosen == ModelSpec("classify", "classify", "tiny@onnx") and choice is not None
    original = modeldeck.ModelStore(settings).resolve("tiny@1")
    # A newer original: tiny@onnx was verified against tiny@1, so it says nothing about tiny@2.
    modeldeck.ModelStore(settings).import_model(original.path, "tiny", version="2", runtime="transformers")
    assert prefer_variant(spec, settings) == (spec, None)
    assert prefer_variant(ModelSpec.parse("classify:tiny@1"), settings) == (ModelSpec.parse("classify:tiny@1"), None)
    assert prefer_variant(spec, Settings(home=copy)) == (spec, None)  # the setting is off
