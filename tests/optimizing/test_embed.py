"""The real all-MiniLM-L6-v2 through optimize: ONNX equals torch, int8 is guarded, variants load without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.optimizing import OptimizeReport, optimize
from modeldeck.optimizing._sample import builtin_texts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # ~4 min on two idle cores; a loaded box takes far longer


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def report(home: Path) -> OptimizeReport:
    # A budget between the variants' figures (per-tensor int8 has a mean cosine near 0.95, per-channel
    # near 0.99), so that both outcomes occur with margin whatever the CPU's int8 kernels do.
    return optimize(
        "embed",
        int8=True,
        budget={"cosine_mean": 0.975, "cosine_min": 0.85},
        timing_seconds=0.05,
        settings=Settings(home=home),
    )


def test_fp32_onnx_equals_torch_on_the_builtin_sample(report: OptimizeReport) -> None:
    onnx = report.variant("onnx")
    assert onnx.accepted and onnx.stored == "all-MiniLM-L6-v2@onnx"
    assert onnx.accuracy["cosine_min"] >= 0.9999
    assert report.sample == "built-in sample (300 texts)"


def test_the_stored_variant_tokenizes_and_embeds_as_the_original(report: OptimizeReport, home: Path) -> None:
    settings = Settings(home=home)
    original = modeldeck.load("embed", settings=settings)
    variant = modeldeck.load("embed", model="all-MiniLM-L6-v2@onnx", settings=settings)
    assert variant.info.runtime == "onnxruntime" and variant.info.version == "onnx"
    texts = builtin_texts()
    for text in texts:
        a, b = original.runtime.tokenize(text), variant.runtime.tokenize(text)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.offsets, b.offsets)
        assert np.array_equal(a.word_ids, b.word_ids)
    results = variant(texts)
    ours = np.stack([r.vector for r in results])
    theirs = np.stack([r.vector for r in original(texts)])
    assert max(r.chunks for r in results) > 1  # long paragraphs were embedded in windows, like the original
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() >= 0.9999
    # The model normalises inside its own modules (2_Normalize): the graph does too (one-window texts;
    # a longer text's vector is the mean of its windows' unit vectors, as the torch backend makes it).
    single = np.array([r.chunks == 1 for r in results])
    assert np.allclose(np.linalg.norm(ours[single], axis=1), 1.0, atol=1e-5)


def test_int8_variants_are_judged_and_the_fastest_accepted_one_is_stored(report: OptimizeReport) -> None:
    int8 = [v for v in report.variants if v.kind == "int8"]
    assert {v.name for v in int8} == {"int8-dynamic", "int8-per-channel", "int8-per-channel-ffn-fp32"}
    for v in int8:
        assert v.accepted == (v.accuracy["cosine_mean"] >= 0.975 and v.accuracy["cosine_min"] >= 0.85)
        assert v.size_bytes < report.variant("onnx").size_bytes
    dynamic = report.variant("int8-dynamic")
    assert not dynamic.accepted and dynamic.reason.startswith("outside the budget: cosine_mean")
    assert dynamic.stored is None
    stored = [v for v in int8 if v.stored]
    assert len(stored) == 1 and stored[0].stored == "all-MiniLM-L6-v2@int8"
    assert stored[0].throughput == max(v.throughput for v in int8 if v.accepted)


def test_models_show_prints_the_card_figures(report: OptimizeReport, home: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    assert main(["models", "show", "all-MiniLM-L6-v2@int8"]) == 0
    shown = json.loads(capsys.readouterr().out)
    card = shown["resolved"]["card"]
    assert shown["resolved"]["runtime"] == "onnxruntime"
    assert card["variant"]["of"] == "all-MiniLM-L6-v2@" + report.model.split("@")[1]
    assert card["variant"]["kind"] == "int8" and card["variant"]["options"]["per_channel"] in (True, False)
    assert {"onnxruntime", "torch", "onnx"} <= set(card["variant"]["tools"])
    assert card["figures"]["accuracy"]["cosine_min"] >= 0.85
    assert card["figures"]["speedup"] > 0


def test_models_list_shows_the_variants_beside_the_package_version(report: OptimizeReport, home: Path) -> None:
    rows = {r.name: r for r in modeldeck.ModelStore(Settings(home=home)).list_models()}
    installed = rows["all-MiniLM-L6-v2"].installed
    assert installed[0] == report.model.split("@")[1] and {"onnx", "int8"} <= set(installed[1:])


def test_loading_a_variant_needs_no_torch(report: OptimizeReport, home: Path) -> None:
    probe = (
        "import sys, modeldeck\n"
        "task = modeldeck.load('embed@onnx')\n"
        "vector = task('Loading a variant needs no torch.').vector\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)\n"
        "print(task.info.version, len(vector), heavy)\n"
    )
    env = {**os.environ, "MODELDECK_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["onnx", "384", "[]"]


def test_a_budget_too_tight_for_float_rounding_refuses_from_the_cli(
    report: OptimizeReport, home: Path, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    calibration = tmp_path / "sentences.txt"
    calibration.write_text("\n".join(builtin_texts(40, seed=1)), encoding="utf-8")
    argv = ["optimize", "embed", "--calibration", str(calibration), "--min-cosine", "1", "--seconds", "0.05"]
    assert main([*argv, "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sample"] == "sentences.txt (40 texts)" and out["budget"]["cosine_min"] == 1.0
    (onnx,) = [v for v in out["variants"] if v["name"] == "onnx"]
    assert onnx["accepted"] is False and onnx["reason"].startswith("outside the budget: cosine_min 0.9999")
    assert all(v["stored"] is None for v in out["variants"])  # refused, and --dry-run stores nothing anyway


def test_embed_at_onnx_is_served_like_any_model(report: OptimizeReport, home: Path, live) -> None:
    import httpx

    from modeldeck.serving import create_app

    from ..support import LiveServer

    settings = Settings.from_env({}, home=home, models=("embed@onnx",), isolation="thread")
    server = LiveServer(create_app(settings)).start()
    live.append(server)
    server.wait_ready()
    listed = httpx.get(f"{server.url}/v1/models", timeout=30).json()
    assert "embed@onnx" in json.dumps(listed) and "onnxruntime" in json.dumps(listed)
    answer = httpx.post(
        f"{server.url}/v1/models/embed@onnx/predict", json={"inputs": ["served by onnxruntime", "ok"]}, timeout=60
    ).json()
    assert answer["version"] == "onnx" and len(answer["outputs"]) == 2
    assert len(answer["outputs"][0]["vector"]) == 384
