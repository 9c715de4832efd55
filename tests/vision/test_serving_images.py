"""Images over HTTP: multipart uploads, base64 JSON, raw image bodies, rendered PNG answers, limits."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage

from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.serving.models import ProcessModel
from modeldeck.serving.specs import ModelSpec

from ..support import EchoTask, LiveServer, echo_info
from .fake_detector import PLANTED, detect_task, segment_task

pytestmark = pytest.mark.timeout(60)


def png(width: int, height: int, colour=(90, 140, 200)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def noise_png(side: int) -> bytes:
    rng = np.random.default_rng(side)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def start_server(tmp_path: Path, **overrides: Any) -> LiveServer:
    tasks = {"detect": detect_task(), "segment": segment_task(), "echo": EchoTask(echo_info())}
    settings = Settings.from_env({}, home=tmp_path / "home", models=("detect", "segment", "echo"), **overrides)
    server = LiveServer(create_app(settings, loader=lambda spec: tasks[spec.alias])).start()
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("serve-images"))
    yield live
    live.stop()


def url(server: LiveServer, model: str = "detect", query: str = "") -> str:
    return f"{server.url}/v1/models/{model}/predict{query}"


def upload(server: LiveServer, files: list[tuple[str, bytes]], model: str = "detect", **kwargs: Any) -> httpx.Response:
    parts = [(field, (f"img{i}.png", data, "image/png")) for i, (field, data) in enumerate(files)]
    return httpx.post(url(server, model, kwargs.pop("query", "")), files=parts, timeout=30, **kwargs)


def expected_boxes(width: int, height: int, confidence: float = 0.25) -> list[list[float]]:
    boxes = [box for box, score, _ in PLANTED if score >= confidence]
    return [[b[0] * width, b[1] * height, b[2] * width, b[3] * height] for b in boxes]


def test_one_uploaded_file_is_one_input(server):
    response = upload(server, [("image", png(64, 48))])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "detect" and len(body["outputs"]) == 1
    out = body["outputs"][0]
    assert (out["width"], out["height"]) == (64, 48)
    assert [d["label"] for d in out["detections"]] == ["cat", "dog"]
    assert np.allclose([d["box"] for d in out["detections"]], expected_boxes(64, 48), atol=1e-3)


def test_several_files_answer_in_order_whatever_their_field(server):
    sizes = [(40, 30), (80, 20), (24, 60), (50, 50)]
    fields = ["image", "images", "file", "image"]
    response = upload(server, [(f, png(*s)) for f, s in zip(fields, sizes, strict=True)])
    assert response.status_code == 200
    assert [(o["width"], o["height"]) for o in response.json()["outputs"]] == sizes


def test_options_and_timeout_as_form_fields(server):
    data = {"options": json.dumps({"confidence": 0.5, "classes": ["dog"]}), "timeout_ms": "5000"}
    response = upload(server, [("image", png(64, 48))], data=data)
    assert [d["label"] for d in response.json()["outputs"][0]["detections"]] == ["dog"]
    low = upload(server, [("image", png(64, 48))], data={"options": '{"confidence": 0.1}'})
    assert len(low.json()["outputs"][0]["detections"]) == 3


def test_json_with_base64_images_keeps_working(server):
    data = png(64, 48)
    text = base64.b64encode(data).decode()
    one = httpx.post(url(server), json={"inputs": text, "options": {"confidence": 0.7}})
    assert one.status_code == 200 and len(one.json()["outputs"][0]["detections"]) == 1
    many = httpx.post(
        url(server), json={"inputs": [text, "data:image/png;base64," + base64.b64encode(png(30, 20)).decode()]}
    )
    assert [o["width"] for o in many.json()["outputs"]] == [64, 30]


def test_raw_image_body_is_one_input(server):
    response = httpx.post(url(server), content=png(32, 32), headers={"content-type": "image/png"})
    assert response.status_code == 200 and response.json()["outputs"][0]["width"] == 32


def test_a_path_sent_over_http_is_never_read(server, tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(png(32, 32))
    response = httpx.post(url(server), json={"inputs": str(path)})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "MD104" and "base64" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("files", "data", "code", "words"),
    [
        ([("image", b"")], {}, "MD101", "empty"),
        ([("image", b"just some text, not an image\n")], {}, "MD104", "not an image"),
        ([("image", png(4, 4))], {}, "MD104", "at least"),
        ([("image", png(32, 32))], {"options": "{confidence: 1"}, "MD104", "not valid JSON"),
        ([("image", png(32, 32))], {"options": '{"confidence": 7}'}, "MD110", "confidence"),
        ([("image", png(32, 32))], {"options": '{"colour": "red"}'}, "MD110", "unknown option"),
        ([("image", png(32, 32))], {"options": "[1]"}, "MD104", "options"),
        ([("image", png(32, 32))], {"timeout_ms": "soon"}, "MD104", "timeout_ms"),
        ([("image", png(32, 32))], {"prompt": "hi"}, "MD104", "unexpected form field 'prompt'"),
        ([("photo", png(32, 32))], {}, "MD104", "unexpected form field 'photo'"),
        ([], {"options": "{}"}, "MD100", "no image"),
    ],
)
def test_bad_uploads_get_a_4xx_in_our_error_shape(server, files, data, code, words):
    response = upload(server, files, data=data)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert upload(server, [("image", png(32, 32))]).status_code == 200  # still serving


def test_a_bad_file_among_several_gets_its_own_error(server):
    files = [("image", png(40, 30)), ("image", b"%PDF-1.4 not an image"), ("image", b""), ("image", png(20, 20))]
    response = upload(server, files)
    assert response.status_code == 200
    outputs = response.json()["outputs"]
    assert outputs[0]["width"] == 40 and outputs[3]["width"] == 20
    assert outputs[1]["error"]["code"] == "MD104" and outputs[2]["error"]["code"] == "MD101"


def test_malformed_multipart_is_refused_clearly(server):
    response = httpx.post(
        url(server), content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert 400 <= response.status_code < 500 and response.json()["error"]["code"].startswith("MD1")
    assert upload(server, [("image", png(32, 32))]).status_code == 200


def test_render_png_answers_the_image_with_its_results_drawn(server):
    data = noise_png(64)
    for response in (
        upload(server, [("image", data)], query="?render=png"),
        upload(server, [("image", data)], data={"render": "png"}),
        httpx.post(url(server, query="?render=png"), json={"inputs": base64.b64encode(data).decode()}),
    ):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        drawn = np.asarray(PILImage.open(io.BytesIO(response.content)))
        original = np.asarray(PILImage.open(io.BytesIO(data)))
        assert drawn.shape == original.shape
        changed = np.any(drawn != original, axis=2)
        x1, y1 = int(PLANTED[0][0][0] * 64), int(PLANTED[0][0][1] * 64)
        assert changed[y1 + 8, x1] and changed.mean() < 0.6  # the first box's left edge; most pixels kept
    segment = upload(server, [("image", png(64, 64, (250, 250, 250)))], model="segment", query="?render=png")
    assert segment.status_code == 200 and segment.headers["content-type"] == "image/png"


def test_render_needs_exactly_one_good_image(server):
    two = upload(server, [("image", png(32, 32)), ("image", png(32, 32))], query="?render=png")
    assert two.status_code == 422 and two.json()["error"]["code"] == "MD110"
    bad = upload(server, [("image", b"not an image")], query="?render=png")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "MD104"
    other = upload(server, [("image", png(32, 32))], query="?render=jpeg")
    assert other.status_code == 422 and "render" in other.json()["error"]["message"]
    text = httpx.post(url(server, "echo", "?render=png"), json={"inputs": "hello"})
    assert text.status_code == 422 and "echo task" in text.json()["error"]["message"]
    listed = httpx.post(url(server, query="?render=png"), json={"inputs": [base64.b64encode(png(32, 32)).decode()]})
    assert listed.status_code == 200 and listed.headers["content-type"] == "image/png"


def test_openapi_documents_the_json_body_and_multipart(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operation = spec["paths"]["/v1/models/{name}/predict"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content["application/json"]["schema"]["properties"]) == {"inputs", "options", "timeout_ms"}
    assert "image" in content["multipart/form-data"]["schema"]["properties"]
    assert "multipart/form-data" in operation["description"]
    assert any(p["name"] == "render" for p in operation["parameters"])


def test_body_limit_applies_to_uploads(tmp_path):
    server = start_server(tmp_path, max_body_bytes=20_000)
    try:
        big = noise_png(128)  # ~49 kB of incompressible pixels
        assert len(big) > 20_000
        response = upload(server, [("image", big)])
        assert response.status_code == 413 and response.json()["error"]["code"] == "MD103"

        def chunks():  # no Content-Length: the streamed multipart body is counted
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            for start in range(0, len(big), 4096):
                yield big[start : start + 4096]
            yield b"\r\n--b--\r\n"

        streamed = httpx.post(
            url(server), content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert streamed.status_code == 413
        assert upload(server, [("image", png(32, 32))]).status_code == 200
    finally:
        server.stop()


def fake_detect_loader(spec: ModelSpec, settings: Settings) -> Any:
    """A worker-process loader (module level, so a spawned process can import it)."""
    return detect_task()


def test_bytes_inputs_cross_to_a_worker_process(tmp_path):
    settings = Settings.from_env({}, home=tmp_path / "home", models=("detect",))
    model = ProcessModel(ModelSpec("detect", "detect", None), settings, loader=fake_detect_loader)
    model.start()
    try:
        outputs = model.run_batch([(png(40, 30), {}), (b"nope", {}), (base64.b64encode(png(20, 16)).decode(), {})])
        assert json.loads(outputs[0])["width"] == 40 and json.loads(outputs[2])["height"] == 16
        assert type(outputs[1]).__name__ == "InputDecodeError"
    finally:
        model.close()


def test_bench_sends_image_files_base64_encoded(server, tmp_path, capsys):
    from modeldeck.cli.main import main

    photo = tmp_path / "photo.png"
    photo.write_bytes(png(48, 32))
    args = ["bench", "--url", server.url, "--model", "detect", "--requests", "8", "--concurrency", "2", "--json"]
    assert main([*args, "--image", str(photo), "--image", str(photo)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == 8 and report["errors"] == {} and report["mean_batch_size"] >= 1
    assert main([*args, "--image", str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*args, "--image", str(photo), "--input", "text"]) == 2
    assert "not both" in capsys.readouterr().err
