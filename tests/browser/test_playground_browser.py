"""The playground in a real browser (Debian's chromium driven by Playwright) against a real server.

One server for the module serves the default deck (spaCy ner and parse, MiniLM embed, dlib
face-detect and face-verify, a face gallery) and tiny models built here (a random GPT-2 for
chat and generate, planted YOLO graphs for detect and segment, tiny BERT qa and classify, a tiny
Marian translate) plus the echo task for the generic JSON panel, and a small document index
(``MODELDECK_DOCUMENTS``, embedded with MiniLM, read by the tiny BERT qa). Each test works the page as a
person would and compares the rendered DOM with what the public API answers for the same input.
Screenshots go to build/test-artifacts/playground/ (or $MODELDECK_TEST_ARTIFACTS) and are checked
to be non-blank; the first-load figures are written there as playground-load.json.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright import sync_api

from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.serving.specs import ModelSpec, load_spec, parse_specs
from modeldeck.tasks.base import Options, Task
from modeldeck.types import ModelInfo

from ..support import EchoResult, EchoTask, LiveServer, echo_info

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("MODELDECK_TEST_ARTIFACTS", Path(__file__).parents[2] / "build" / "test-artifacts"))
SHOTS = ARTIFACTS / "playground"
SAMPLES = Path(__file__).parents[2] / "src" / "modeldeck" / "serving" / "static" / "samples"
NAMES = {0: "cat", 1: "dog", 2: "person"}
# (cx, cy, w, h) in the 640x640 letterboxed input, class, score: apart, so NMS keeps them all.
PLANTED = [((120, 200, 120, 100), 0, 0.92), ((380, 260, 160, 140), 1, 0.71), ((520, 420, 90, 80), 2, 0.33),
           ((260, 470, 70, 60), 0, 0.12), ((560, 150, 50, 50), 1, 0.04)]  # fmt: skip


# --- models built for the test -------------------------------------------------------------------------


def _planted_head(nc: int = 3, masks: int = 0) -> np.ndarray:
    raw = np.zeros((4 + nc + masks, len(PLANTED)), np.float32)
    for i, (box, cls, score) in enumerate(PLANTED):
        raw[:4, i] = box
        raw[4 + cls, i] = score
        if masks:
            raw[4 + nc :, i] = 1.0 + 0.5 * i
    return raw


def _detect_task(folder: Path, task: str) -> Any:
    from modeldeck.tasks.detect import DetectTask, SegmentTask
    from modeldeck.types import ModelInfo

    from ..vision.yolo_graphs import planted_graph, ultralytics_metadata

    if task == "detect":
        path = planted_graph(folder / "planted.onnx", _planted_head(), metadata=ultralytics_metadata(NAMES))
        cls: Any = DetectTask
    else:
        yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
        protos = np.stack([np.sin(xx / 9.0) + np.cos(yy / 7.0), (xx - yy) / 80.0, np.ones_like(xx) * 0.5])
        meta = ultralytics_metadata(NAMES, task="segment")
        path = planted_graph(folder / "planted-seg.onnx", _planted_head(masks=3), protos=protos, metadata=meta)
        cls = SegmentTask
    info = ModelInfo(name=path.stem, version="1", tasks=(task,), runtime="onnxruntime", path=path,
                     license="AGPL-3.0 (test double)")  # fmt: skip
    return cls.from_model(info)


class _NoOptions(Options):
    pass


@dataclass(frozen=True)
class _Labels:
    labels: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"labels": [{"label": label, "score": score} for label, score in self.labels]}


class ColourClassifier(Task[Any, Any, _Labels, _NoOptions]):
    """A ``classify-image`` double: an image's share of red, green and blue, as sorted labels."""

    name = "classify-image"
    options_type = _NoOptions

    def preprocess(self, raw: Any, options: _NoOptions) -> Any:
        from modeldeck.images import load_image

        return load_image(raw).pixels

    def forward(self, batch: Any) -> list[Any]:
        return [np.asarray(pixels, np.float64).reshape(-1, 3).sum(axis=0) for pixels in batch]

    def postprocess(self, raw: Any, encoded: Any, options: _NoOptions) -> _Labels:
        shares = zip(("red", "green", "blue"), map(float, raw / raw.sum()), strict=True)
        return _Labels(tuple(sorted(shares, key=lambda x: -x[1])))


class TensorEcho(Task[Any, Any, Any, _NoOptions]):
    """A ``tensor`` double whose card states a signature: it answers the sum of each named input."""

    name = "tensor"
    options_type = _NoOptions

    def preprocess(self, raw: Any, options: _NoOptions) -> Any:
        return {name: np.asarray(value, np.float64) for name, value in raw.items()}

    def forward(self, batch: Any) -> list[Any]:
        return list(batch)

    def postprocess(self, raw: Any, encoded: Any, options: _NoOptions) -> Any:
        return EchoResult(json.dumps({name: float(v.sum()) for name, v in raw.items()}))

    def describe(self) -> dict[str, Any]:
        # As the tensor task states it: the batch dimension first, one example is the rest.
        signature = {"inputs": [{"name": "x", "shape": [None, 3], "dtype": "float32"},
                                {"name": "scale", "shape": [None], "dtype": "float32"}]}  # fmt: skip
        return {**super().describe(), "signature": signature}


def _double(cls: Any, name: str) -> Any:
    return cls(ModelInfo(name=name, version="0.1", tasks=(cls.name,), runtime="python", path=Path(".")))


def _builders(root: Path, settings: Settings) -> dict[str, Callable[[], Any]]:
    import modeldeck

    from ..tasks.gpt2_models import CHAT_TEMPLATE, save_tiny_gpt2
    from ..tasks.language_models import save_tiny_bert_classifier, save_tiny_bert_qa, save_tiny_marian

    def deck(spec: str) -> Callable[[], Any]:
        return lambda: load_spec(ModelSpec.parse(spec), settings)

    def tiny(task: str, save: Callable[[Path], Path], **kwargs: Any) -> Callable[[], Any]:
        return lambda: modeldeck.load(task, model=str(save(root / task)), settings=settings, **kwargs)

    lm = root / "lm"
    return {
        "ner": deck("ner"),
        "parse": deck("parse"),
        "embed": deck("embed"),
        "face-detect": deck("face-detect"),
        "face-verify": deck("face-verify"),
        "chat": lambda: modeldeck.load(
            "chat",
            model=str(save_tiny_gpt2(lm, chat_template=CHAT_TEMPLATE, tasks=("generate", "chat"), n_positions=2048)),
            settings=settings,
        ),
        "gen": lambda: modeldeck.load("generate", model=str(lm), settings=settings),
        "detect": lambda: _detect_task(root, "detect"),
        "segment": lambda: _detect_task(root, "segment"),
        "qa": tiny("qa", save_tiny_bert_qa),
        "classify": tiny("classify", save_tiny_bert_classifier),
        "translate": tiny("translate", save_tiny_marian),
        "echo": lambda: EchoTask(echo_info()),
        "colours": lambda: _double(ColourClassifier, "colour-shares"),
        "tensor": lambda: _double(TensorEcho, "tensor-echo"),
    }


HANDBOOK = {
    "vacation.md": "# Vacation policy\n\nFull-time employees receive 25 paid vacation days per calendar year. "
    "Up to five unused days may be carried over into the next year.\n",
    "expenses.txt": "Submit an expense report within 30 days, with a receipt for every purchase over 25 dollars.\n",
    "it/laptops.md": "# Laptops\n\nTo report a broken laptop 😀, open a ticket with the IT help desk.\n",
}


def _documents(root: Path, settings: Settings) -> tuple[Path, Path, Any]:
    """A small handbook indexed with the real MiniLM, and a tiny BERT reader for its answers."""
    import modeldeck
    from modeldeck.documents import DocumentIndex

    from ..tasks.language_models import save_tiny_bert_qa

    folder = root / "handbook"
    for name, text in HANDBOOK.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    embedder = modeldeck.load("embed", settings=settings)
    DocumentIndex.build(folder, model=embedder).close()
    (root / "doc-qa").mkdir()
    return folder, save_tiny_bert_qa(root / "doc-qa", max_positions=128), embedder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy 2-core machine: intra-op threads only add hand-offs
    root = tmp_path_factory.mktemp("playground")
    names = ("ner", "parse", "embed", "face-detect", "face-verify", "chat", "gen", "detect", "segment", "qa",
             "classify", "translate", "echo", "colours", "tensor")  # fmt: skip
    settings = Settings.from_env({}, home=root / "home", models=names, gallery=str(root / "gallery.db"))
    folder, reader, embedder = _documents(root, settings)
    settings = Settings.from_env({}, home=root / "home", models=names, gallery=str(root / "gallery.db"),
                                 documents=str(folder), documents_qa=str(reader))  # fmt: skip
    builders = _builders(root, settings)
    served = {spec.alias: spec for spec in parse_specs(names)}

    # Served models use their builders; the document index gets the MiniLM it was built with, and
    # anything else the server loads by name (the gallery's face-embed, the index's reader) goes
    # the ordinary way.
    def loader(spec: ModelSpec) -> Any:
        if served.get(spec.alias) == spec:
            return builders[spec.alias]()
        if spec.task == "embed":
            return embedder
        return load_spec(spec, settings)

    live = LiveServer(create_app(settings, loader=loader)).start()
    live.wait_ready(timeout=240)
    # The index (and its models) opens on the first request: open it now, not inside a timed test.
    assert httpx.get(f"{live.url}/v1/documents", timeout=120).status_code == 200
    yield live
    live.stop()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Page:
    """One browser page on the playground, recording console errors and uncaught exceptions."""

    def __init__(self, browser: Any, server: LiveServer, **context: Any) -> None:
        self.server = server
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        # The page's own API calls that are meant to fail (a 404 probe, a 422 for bad input) log a
        # "Failed to load resource" line; anything else at error level (a CSP refusal) is a failure.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, model: str) -> Any:
        self.page.goto(f"{self.server.url}/#{model}")
        self.page.wait_for_selector(f'main[data-model="{model}"][data-ready="true"]')
        return self.page

    def run(self) -> None:
        """Click Run and wait for the panel to finish (a result or an error)."""
        self.page.evaluate("document.getElementById('panel').removeAttribute('data-state')")
        self.page.click("main button.run")
        self.page.wait_for_selector("main[data-state]", timeout=60_000)

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert_not_blank(path)
        return path

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Page]:
    opened = Page(browser, server, viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def assert_not_blank(path: Path) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert pixels.std() > 10, f"{path} looks blank (grey-level std {pixels.std():.1f})"
    assert len(np.unique(pixels)) > 32, f"{path} has almost no distinct tones"


def predict(server: LiveServer, model: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/models/{model}/predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]  # type: ignore[no-any-return]


def predict_files(server: LiveServer, model: str, files: list[bytes], options: dict | None = None) -> dict:
    parts = [("image", (f"img{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)]
    data = {"options": json.dumps(options)} if options else None
    response = httpx.post(f"{server.url}/v1/models/{model}/predict", files=parts, data=data, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]  # type: ignore[no-any-return]


def png(width: int, height: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(40, 220, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# --- the page, its load and its policy -----------------------------------------------------------------


def test_first_load_is_small_fast_and_revalidates(browser: Any, server: LiveServer) -> None:
    opened = Page(browser, server, viewport={"width": 1280, "height": 900})
    own: dict[str, Any] = {}
    opened.page.on("requestfinished", lambda r: own.setdefault(r.url, r) if "/v1/" not in r.url else None)
    response = opened.page.goto(f"{server.url}/")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    opened.page.wait_for_selector('main[data-ready="true"]')
    opened.page.wait_for_function("() => document.getElementById('strip').dataset.updated")
    loaded = dict(own)  # r.sizes() lets more events in: count what had arrived by now
    sizes = {url: r.sizes() for url, r in loaded.items()}
    transferred = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes.values())
    interactive = opened.page.evaluate("performance.getEntriesByName('modeldeck:first-panel-interactive')[0].startTime")
    assert transferred < 300_000, f"first load moved {transferred} bytes: {sorted(sizes)}"
    # Every asset of the page came gzipped where it is text.
    encodings = {url: r.response().headers.get("content-encoding") for url, r in loaded.items()}
    assert all(encodings[url] == "gzip" for url in encodings if url.endswith((".js", ".css")))
    opened.shot("first-load")

    # A second visit revalidates: the page and its scripts answer 304 with no body.
    statuses: list[int] = []
    opened.page.on("response", lambda r: statuses.append(r.status) if "/playground/" in r.url else None)
    opened.page.reload()
    opened.page.wait_for_selector('main[data-ready="true"]')
    assert statuses and set(statuses) <= {304, 200} and statuses.count(304) >= len(statuses) - 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = {"first_load_bytes": transferred, "first_load_requests": len(sizes),
               "first_panel_interactive_ms": round(interactive, 1), "files": sorted(sizes)}  # fmt: skip
    (SHOTS / "playground-load.json").write_text(json.dumps(figures, indent=2))
    print(f"\nplayground first load: {transferred} bytes in {len(sizes)} requests; "
          f"first panel interactive at {interactive:.0f} ms")  # fmt: skip
    opened.close()


def test_sidebar_lists_every_served_model_with_its_card(page: Page, server: LiveServer) -> None:
    p = page.open("ner")
    p.wait_for_selector('#model-list button[data-model="documents"]')  # shown once GET /v1/documents answers
    served = httpx.get(f"{server.url}/v1/models").json()["models"]
    buttons = p.locator("#model-list button")
    names = [buttons.nth(i).get_attribute("data-model") for i in range(buttons.count())]
    assert names == [m["name"] for m in served] + ["gallery", "documents"]
    ner = p.locator('#model-list button[data-model="ner"]')
    assert ner.get_attribute("aria-current") == "true"
    text = ner.inner_text()
    entry = next(m for m in served if m["name"] == "ner")
    assert entry["task"] in text and entry["version"] in text and entry["license"] in text
    assert p.locator('a[href="/docs"]').count() == 1


@pytest.mark.parametrize(
    "model", ["ner", "parse", "embed", "chat", "detect", "face-verify", "gallery", "documents", "tensor"]
)
def test_no_serious_accessibility_violations(page: Page, model: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    p = page.open(model)
    if model in ("ner", "parse", "embed", "documents"):
        page.run()  # with its result drawn
    elif model == "detect":
        p.click('main button[data-sample="coffee.jpg"]')
        p.wait_for_selector("main[data-state=done] .stage svg")
    results = Axe().run(p)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in serious]


def test_keyboard_only(page: Page) -> None:
    p = page.open("ner")
    p.focus('#model-list button[data-model="ner"]')
    for _ in range(20):  # Tab down the sidebar to the parse model, as a person would
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.dataset.model") == "parse":
            break
    p.keyboard.press("Enter")
    p.wait_for_selector('main[data-model="parse"][data-ready="true"]')
    assert p.evaluate("document.activeElement.tagName") == "H2"  # focus moved to the new panel
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.tagName") == "TEXTAREA"
    p.keyboard.press("Control+Enter")
    p.wait_for_selector("main[data-state=done] .arcs svg")


def test_phone_width_has_no_sideways_scroll(browser: Any, server: LiveServer) -> None:
    phone = Page(browser, server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    p = phone.open("ner")
    phone.run()
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.shot("phone-ner")
    phone.close()


def test_errors_show_the_code_and_the_fix_never_a_trace(page: Page) -> None:
    p = page.open("ner")
    p.fill("main textarea", "   ")
    page.run()
    error = p.locator("main .error")
    assert error.is_visible()
    text = error.inner_text()
    assert text.startswith("MD101") and "send at least one non-space character" in text
    assert "Traceback" not in p.content()
    page.shot("error-ner")


def test_quantiles_interpolate_inside_buckets_as_prometheus_does(page: Page) -> None:
    p = page.open("echo")
    le, cumulative = [0.1, 0.5, 1.0], [2, 5, 9]
    got = p.evaluate(
        """async ([le, cumulative]) => { const m = await import('/playground/lib/metrics.js');
             return [0.1, 0.5, 0.9, 0.95].map((q) => m.quantile(q, le, cumulative, 10)); }""",
        [le, cumulative],
    )
    # rank 1 in (0, 0.1] holding 2; rank 5 at the top of (0.1, 0.5]; rank 9 at the top of (0.5, 1];
    # rank 9.5 is in the +Inf bucket: the largest finite bound, as histogram_quantile answers.
    assert got == pytest.approx([0.05, 0.5, 1.0, 1.0])


def test_live_metrics_strip_reads_the_server(page: Page, server: LiveServer) -> None:
    p = page.open("echo")
    p.wait_for_function("() => document.getElementById('strip').dataset.updated")
    for _ in range(5):
        httpx.post(f"{server.url}/v1/models/echo/predict", json={"inputs": "x"})
    first = p.evaluate("document.getElementById('strip').dataset.updated")
    p.wait_for_function(f"() => document.getElementById('strip').dataset.updated !== '{first}'")
    rps = p.inner_text('[data-metric="rps"]')
    p50 = p.inner_text('[data-metric="p50"]')
    assert float(rps) > 0 and re.fullmatch(r"\d+ ms|\d+\.\d\d s", p50), (rps, p50)
    assert p.locator("#chart canvas").count() >= 1  # uPlot drew the history


# --- text panels -------------------------------------------------------------------------------------------

NER_TEXT = "Tim Cook 😀 visited Paris on Monday with Angela Merkel and 3 engineers from Apple."


def test_ner_spans_equal_the_api_offsets(page: Page, server: LiveServer) -> None:
    p = page.open("ner")
    p.fill("main textarea", NER_TEXT)
    page.run()
    api = predict(server, "ner", {"inputs": NER_TEXT})["entities"]
    assert api, "the real spaCy model finds entities in this text"
    marks = p.locator("mark.entity")
    shown = [
        {"start": int(m.get_attribute("data-start")), "end": int(m.get_attribute("data-end")),
         "label": m.get_attribute("data-label"), "text": m.locator(".entity-text").inner_text()}
        for m in marks.all()
    ]  # fmt: skip
    assert shown == [{k: e[k] for k in ("start", "end", "label", "text")} for e in api]
    assert all(NER_TEXT[e["start"] : e["end"]] == e["text"] for e in shown)  # Python's code-point offsets
    assert p.locator("main .ner-text").inner_text().replace("\n", "").startswith("Tim Cook")
    legend = sorted(li.inner_text() for li in p.locator(".legend li").all())
    assert legend == sorted({e["label"] for e in api})
    assert p.locator("pre.curl").inner_text().startswith("curl -s")
    assert "httpx.post" in p.locator("pre.python").inner_text()
    assert float(p.locator(".latency").get_attribute("data-ms")) > 0
    page.shot("ner")


PARSE_TEXT = ("The old engineer who had built the first bridge across the wide river slowly explained "
              "to the young students why the design still stands today.")  # fmt: skip


def test_parse_draws_one_arc_per_dependency(page: Page, server: LiveServer) -> None:
    p = page.open("parse")
    p.fill("main textarea", PARSE_TEXT)
    page.run()
    api = predict(server, "parse", {"inputs": PARSE_TEXT})
    tokens = api["tokens"]
    assert len(tokens) >= 25
    words = p.locator(".arcs .displacy-word").all_text_contents()
    tags = p.locator(".arcs .displacy-tag").all_text_contents()
    assert words == [t["text"] for t in tokens] and tags == [t["pos"] for t in tokens]
    arcs = p.locator(".arcs .displacy-arrow")
    assert arcs.count() == sum(1 for i, t in enumerate(tokens) if t["head"] != i)
    labels = sorted(a.get_attribute("data-label") for a in arcs.all())
    assert labels == sorted(t["dep"] for i, t in enumerate(tokens) if t["head"] != i)
    page.shot("parse")


def test_embed_heat_map_is_the_cosine_of_the_api_vectors(page: Page, server: LiveServer) -> None:
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stocks fell sharply today."]
    p = page.open("embed")
    p.fill("main textarea", "\n".join(texts))
    page.run()
    response = httpx.post(f"{server.url}/v1/models/embed/predict", json={"inputs": texts}, timeout=60).json()
    vectors = np.array([o["vector"] for o in response["outputs"]], dtype=np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = unit @ unit.T
    cells = p.locator("table.heat tbody td[data-value]")
    shown = np.array([float(c.get_attribute("data-value")) for c in cells.all()]).reshape(3, 3)
    np.testing.assert_allclose(shown, expected, atol=1e-5)
    assert expected[0, 1] > expected[0, 2]  # the real MiniLM: cat/kitten closer than cat/stocks
    page.shot("embed")


def test_classify_bars_are_the_api_scores_sorted(page: Page, server: LiveServer) -> None:
    p = page.open("classify")
    p.fill("main textarea", "the cat is in paris")
    page.run()
    api = predict(server, "classify", {"inputs": "the cat is in paris"})["labels"]
    rows = p.locator("ul.bars li").all()
    shown = [(r.get_attribute("data-label"), float(r.get_attribute("data-score"))) for r in rows]
    assert shown == sorted(((a["label"], a["score"]) for a in api), key=lambda x: -x[1])
    page.shot("classify")


def test_qa_highlights_the_answer_in_its_context(page: Page, server: LiveServer) -> None:
    context, question = "tim cook visited paris and the cat went to london with jose.", "who went to london?"
    p = page.open("qa")
    p.fill("main input[type=text]", question)
    p.fill("main textarea", context)
    page.run()
    api = predict(server, "qa", {"inputs": {"question": question, "context": context}, "options": {"top_k": 3}})
    best = api["answers"][0]
    mark = p.locator("mark.answer")
    assert (int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end"))) == (best["start"], best["end"])
    assert mark.inner_text() == context[best["start"] : best["end"]]
    assert p.locator("main ol li").count() == len(api["answers"])
    page.shot("qa")


def test_translate_shows_source_and_translation_side_by_side(page: Page, server: LiveServer) -> None:
    p = page.open("translate")
    p.fill("main textarea", "the cat")
    page.run()
    api = predict(server, "translate", {"inputs": "the cat"})
    assert p.locator(".side .source").inner_text().endswith("the cat")
    assert p.locator(".side .target").inner_text().split("\n", 1)[1].strip() == api["text"].strip()
    page.shot("translate")


def test_generic_panel_sends_the_edited_json(page: Page, server: LiveServer) -> None:
    p = page.open("echo")
    editor = p.locator("main textarea")
    assert json.loads(editor.input_value()) == {"inputs": "", "options": {"upper": False}}
    editor.fill('{"inputs": ["a", "b"], "options": {"upper": true}}')
    page.run()
    shown = json.loads(p.locator("pre.raw-json").text_content())
    assert shown["outputs"] == [{"text": "A"}, {"text": "B"}]
    editor.fill("{not json")
    p.click("main button.run")
    assert p.locator("main .error").inner_text().startswith("JSON")


def test_tensor_panel_is_prefilled_from_the_signature(page: Page, server: LiveServer) -> None:
    p = page.open("tensor")
    editor = p.locator("main textarea")
    assert json.loads(editor.input_value()) == {"inputs": {"x": [0, 0, 0], "scale": 0}, "options": {}}
    editor.fill('{"inputs": {"x": [[1, 2, 3], [4, 5, 6]], "scale": 2}}')
    page.run()
    shown = json.loads(p.locator("pre.raw-json").text_content())
    assert shown == httpx.post(f"{server.url}/v1/models/tensor/predict", json=json.loads(editor.input_value())).json()
    assert json.loads(shown["outputs"][0]["text"]) == {"x": 21.0, "scale": 2.0}


def test_documents_panel_shows_the_api_passages_and_highlights_the_answer(page: Page, server: LiveServer) -> None:
    question = "How do I report a broken laptop?"
    p = page.open("documents")
    p.wait_for_function("() => document.querySelector('main .index-summary').textContent.includes('3 files')")
    p.fill("main input[type=text]", question)
    p.fill("main input[type=number]", "3")
    page.run()
    response = httpx.post(f"{server.url}/v1/documents/ask", json={"question": question, "top_k": 3}, timeout=60)
    api = response.json()
    assert [x["source"] for x in api["passages"]] == ["it/laptops.md", "expenses.txt", "vacation.md"]  # real MiniLM
    rows = p.locator("ol.passages li").all()
    shown = [(r.get_attribute("data-source"), int(r.get_attribute("data-start")), int(r.get_attribute("data-end")),
              r.locator(".passage-text").text_content()) for r in rows]  # fmt: skip
    assert shown == [(x["source"], x["start"], x["end"], x["text"]) for x in api["passages"]]
    scores = [float(r.get_attribute("data-score")) for r in rows]
    assert scores == pytest.approx([x["score"] for x in api["passages"]], abs=1e-6)
    assert p.locator("ol.passages li .source").first.inner_text().startswith("it/laptops.md, chars 0-")
    # The reader's answer, marked inside its passage at the API's offsets (code points, which the
    # laptop file's emoji sets apart from the browser's UTF-16 units).
    answer = api["answer"]
    assert answer is not None and answer["text"].strip()
    mark = p.locator("ol.passages mark.answer")
    assert mark.count() == 1
    assert (int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end"))) == (
        answer["start"],
        answer["end"],
    )
    assert mark.text_content() == answer["text"]
    holder = mark.locator("xpath=ancestor::li")
    assert (holder.get_attribute("data-source"), int(holder.get_attribute("data-start"))) == (
        answer["source"], answer["passage"]["start"])  # fmt: skip
    assert p.locator("main .doc-answer strong").text_content() == answer["text"]
    raw = json.loads(p.locator("pre.raw-json").text_content())
    assert [x["source"] for x in raw["passages"]] == [x["source"] for x in api["passages"]]
    assert raw["answer"]["text"] == answer["text"]
    assert (
        "/v1/documents/ask" in p.locator("pre.curl").inner_text()
        and "httpx.post" in p.locator("pre.python").inner_text()
    )
    assert float(p.locator(".latency").get_attribute("data-ms")) > 0
    page.shot("documents")


# --- chat and generate: streamed tokens ----------------------------------------------------------------


def test_streamed_chat_equals_the_greedy_non_streamed_reply(page: Page, server: LiveServer) -> None:
    p = page.open("chat")
    assert p.locator("main input[type=range]").input_value() == "0"
    p.fill("main input[type=number]", "24")
    p.fill("main textarea", "Hello there")
    p.click("main button.run")
    p.wait_for_selector('.msg.assistant[data-streaming="false"]', timeout=60_000)
    streamed = p.locator(".msg.assistant .content").inner_text()
    messages = [{"role": "user", "content": "Hello there"}]
    body = {"model": "chat", "messages": messages, "temperature": 0, "max_tokens": 24}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60).json()
    assert streamed == reply["choices"][0]["message"]["content"] and streamed
    chunks = json.loads(p.locator("pre.raw-json").text_content())
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    assert len([x for x in pieces if x]) > 1  # it arrived as a stream of pieces, not one answer
    assert "stream=True" in p.locator("pre.python").inner_text()
    # The conversation goes on: the second turn carries the first.
    p.fill("main textarea", "And then?")
    p.click("main button.run")
    p.wait_for_function("() => document.querySelectorAll('.msg.assistant[data-streaming=\"false\"]').length === 2")
    assert p.locator(".msg.user").count() == 2
    page.shot("chat")


def test_generate_streams_the_completion(page: Page, server: LiveServer) -> None:
    p = page.open("gen")
    p.fill("main input[type=number]", "16")
    p.fill("main textarea", "Once upon a time")
    p.click("main button.run")
    p.wait_for_selector('.msg.completion[data-streaming="false"]', timeout=60_000)
    body = {"model": "gen", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 16}
    reply = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    assert p.locator(".msg.completion .content").inner_text() == reply["choices"][0]["text"]
    assert p.locator(".msg.completion").get_attribute("data-finish") == "length"


def test_stop_ends_the_stream_and_the_server_cancels_it(page: Page, server: LiveServer) -> None:
    def cancelled() -> int:
        return int(httpx.get(f"{server.url}/v1/models/gen").json()["streams"]["cancelled"])

    before = cancelled()
    p = page.open("gen")
    p.fill("main input[type=number]", "1900")  # far more than it can make before the click
    p.fill("main textarea", "Once upon a time")
    p.click("main button.run")
    p.wait_for_function("() => document.querySelector('.msg.completion .content').textContent.length > 0")
    p.click("main button.stop")
    p.wait_for_selector('.msg.completion[data-streaming="false"]')
    assert p.locator(".msg.completion").get_attribute("data-finish") == "stopped"
    assert p.locator("main .error").is_hidden()  # stopping is not an error
    for _ in range(100):  # the server notices the closed stream at the generation's next step
        if cancelled() > before:
            break
        p.wait_for_timeout(100)
    assert cancelled() == before + 1


# --- images --------------------------------------------------------------------------------------------


def test_detect_draws_one_box_per_detection_and_the_slider_filters(page: Page, server: LiveServer) -> None:
    image = png(800, 600)
    p = page.open("detect")
    p.set_input_files("main input[type=file]", files=[{"name": "street.png", "mimeType": "image/png", "buffer": image}])
    p.wait_for_selector("main[data-state=done] .stage svg")
    slider = p.locator("main input.confidence")
    threshold = float(slider.input_value())
    api = predict_files(server, "detect", [image], {"confidence": 0.05})["detections"]
    assert len(api) == 4  # the planted boxes above the page's request floor
    visible = p.locator(".stage g.det:not(.filtered)")
    assert visible.count() == sum(d["score"] >= threshold for d in api) == 3
    boxes = [[float(v) for v in g.locator("rect").evaluate("r => [r.x.baseVal.value, r.y.baseVal.value]")]
             for g in p.locator(".stage g.det").all()]  # fmt: skip
    assert np.allclose(boxes, [d["box"][:2] for d in api], atol=1e-3)
    slider.fill("0.05")  # filters in the page, with no new request
    assert visible.count() == len(api)
    slider.fill("0.8")
    assert visible.count() == 1
    p.locator(".stage g.det").first.hover()
    assert p.locator(".tip").inner_text().startswith("cat: score 0.920")
    page.shot("detect")


def test_segment_paints_each_mask_it_was_sent(page: Page, server: LiveServer) -> None:
    from pycocotools import mask as coco

    image = png(640, 480)
    p = page.open("segment")
    p.set_input_files("main input[type=file]", files=[{"name": "seg.png", "mimeType": "image/png", "buffer": image}])
    p.wait_for_selector("main[data-state=done] .stage canvas[data-painted]")
    api = predict_files(server, "segment", [image], {"confidence": 0.05})["instances"]
    areas = [int(g.get_attribute("data-mask-pixels")) for g in p.locator(".stage g.det").all()]
    expected = [int(coco.area({"size": i["mask"]["size"], "counts": i["mask"]["counts"].encode()})) for i in api]
    assert areas == expected and sum(expected) > 0
    assert int(p.locator(".stage canvas").get_attribute("data-painted")) > 0
    # The page's decoder gives pycocotools' mask, pixel for pixel (COCO runs are column-major).
    rle = api[1]["mask"]
    decoded = p.evaluate(
        "async (rle) => Array.from((await import('/playground/lib/rle.js')).decodeMask(rle).mask)", rle
    )
    reference = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(np.array(decoded, np.uint8).reshape(reference.shape), reference)
    page.shot("segment")


def test_classify_image_bars_for_a_dropped_photo(page: Page, server: LiveServer) -> None:
    photo = (SAMPLES / "coffee.jpg").read_bytes()
    p = page.open("colours")
    # A drop, as a person dragging a file from their desktop does.
    drop = p.evaluate_handle(
        """async (bytes) => { const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], "coffee.jpg", { type: "image/jpeg" })); return dt; }""",
        list(photo),
    )
    p.dispatch_event("main .picker", "drop", {"dataTransfer": drop})
    p.wait_for_selector("main[data-state=done] ul.bars")
    api = predict_files(server, "colours", [photo])["labels"]
    rows = p.locator("ul.bars li").all()
    assert [(r.get_attribute("data-label"), float(r.get_attribute("data-score"))) for r in rows] == [
        (a["label"], a["score"]) for a in api
    ]
    assert "-F 'image=@coffee.jpg'" in p.locator("pre.curl").inner_text()
    page.shot("classify-image")


def test_face_detect_on_the_sample_photo(page: Page, server: LiveServer) -> None:
    p = page.open("face-detect")
    p.click('main button[data-sample="astronaut.jpg"]')
    p.wait_for_selector("main[data-state=done] .stage svg")
    api = predict_files(server, "face-detect", [(SAMPLES / "astronaut.jpg").read_bytes()])["faces"]
    assert api and max(f["score"] for f in api) > 1.0  # the astronaut's face (dlib HOG margins, not probabilities)
    groups = p.locator(".stage g.det:not(.filtered)")
    assert groups.count() == len(api)  # the slider starts at dlib's own threshold: every face is shown
    assert groups.first.locator("circle").count() == len(api[0]["landmarks"])
    p.locator("main input.confidence").fill("1")
    assert groups.count() == sum(f["score"] >= 1.0 for f in api) == 1
    page.shot("face-detect")


def test_face_verify_gives_the_api_verdict(page: Page, server: LiveServer) -> None:
    photo = (SAMPLES / "astronaut.jpg").read_bytes()
    p = page.open("face-verify")
    # The API's default: faces are chosen by detection confidence, so the astronaut's mission patch
    # (a weak detection) is not a second face and the pair verifies without largest.
    p.uncheck("main input.largest")
    pickers = p.locator("main .picker")
    pickers.nth(0).locator('button[data-sample="astronaut.jpg"]').click()
    pickers.nth(1).locator('button[data-sample="astronaut.jpg"]').click()
    p.wait_for_selector("main[data-state=done]", timeout=60_000)
    api = predict_files(server, "face-verify", [photo, photo], {})
    assert p.locator(".verdict").get_attribute("data-match") == str(api["match"]).lower() == "true"
    assert f"{api['distance']:.3f}" in p.locator("main .view").inner_text()
    page.shot("face-verify")


def test_gallery_enrols_then_identifies(page: Page, server: LiveServer) -> None:
    p = page.open("gallery")
    p.click("main details summary")
    p.fill("main details input[type=text]", "eileen")
    p.locator("main details .picker").locator('button[data-sample="astronaut.jpg"]').click()
    p.locator("main details button", has_text="Enrol").click()
    p.wait_for_function("() => document.querySelector('main .people').textContent.includes('eileen')", timeout=60_000)
    p.locator("main > .inputs > .picker").locator('button[data-sample="astronaut.jpg"]').click()
    p.wait_for_selector("main[data-state=done] .stage svg g.det", timeout=60_000)
    photo = (SAMPLES / "astronaut.jpg").read_bytes()
    api = httpx.post(f"{server.url}/v1/gallery/identify", files={"image": photo}, data={"largest": "true"},
                     timeout=60).json()  # fmt: skip
    labels = [g.get_attribute("data-label") for g in p.locator(".stage g.det").all()]
    assert labels == [f["name"] for f in api["faces"]] == ["eileen"]
    assert math.isclose(float(p.locator(".stage g.det").first.get_attribute("data-score")), api["faces"][0]["score"])
    page.shot("gallery")


KEY = "k-playground-0123456789abcdef"


def test_a_keyed_server_asks_for_the_key_and_the_page_then_works(browser: Any, tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", models=("echo",), api_keys=(KEY,))
    keyed = LiveServer(create_app(settings, loader=lambda spec: EchoTask(echo_info()))).start()
    page = Page(browser, keyed, viewport={"width": 1280, "height": 900})
    try:
        keyed.wait_ready()
        p = page.page
        p.goto(f"{keyed.url}/#echo")  # the page and its files are exempt; its API calls are not
        p.wait_for_selector("form.key-form")
        assert p.locator("main .error code").inner_text() == "MD800"
        p.fill("#api-key", "k-wrong-0123456789")
        p.click("form.key-form button")
        p.wait_for_function("() => document.querySelector('main .error')?.textContent.includes('not valid')")
        p.fill("#api-key", KEY)
        p.click("form.key-form button")
        p.wait_for_selector('main[data-model="echo"][data-ready="true"]')
        p.locator("main textarea").fill('{"inputs": ["a"], "options": {"upper": true}}')
        page.run()
        assert json.loads(p.locator("pre.raw-json").text_content())["outputs"] == [{"text": "A"}]
        curl, python = p.locator("pre.curl").inner_text(), p.locator("pre.python").inner_text()
        assert "Authorization: Bearer $MODELDECK_API_KEY" in curl and 'os.environ["MODELDECK_API_KEY"]' in python
        assert KEY not in curl + python  # the snippets read the key from the environment, never print it
        page.shot("api-key")
    finally:
        page.close()
        keyed.stop()
