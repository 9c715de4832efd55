"""face-verify with dlib's real weights: call forms, per-pair outcomes, the verdict and its confidence."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

from modeldeck.errors import InputDecodeError, InputTypeError, MultipleFacesError, NoFaceError
from modeldeck.tasks.faces import Verification, match_confidence
from modeldeck.tasks.results import to_arrow

from .face_builders import jpeg, png, two_faces


@pytest.fixture(scope="module")
def flipped(astro) -> np.ndarray:
    return np.ascontiguousarray(astro[:, ::-1])


def test_the_same_person_matches(verifier, astro, flipped):
    v = verifier(astro, flipped)
    assert isinstance(v, Verification)
    assert v.match and 0 < v.distance < v.threshold == 0.6
    assert v.confidence > 0.5
    assert (v.metric, v.faces) == ("euclidean", (1, 1))
    assert v.model == verifier.model_id and v.model.startswith("dlib-resnet@")


def test_different_people_do_not_match(verifier, astro, lfw):
    v = verifier(astro, lfw[0])
    assert not v.match and v.distance > v.threshold
    assert v.confidence < 0.5


def test_every_call_form_gives_the_same_verdict(verifier, astro, flipped, tmp_path):
    path_a, path_b = tmp_path / "a.png", tmp_path / "b.png"
    path_a.write_bytes(png(astro))
    path_b.write_bytes(png(flipped))
    expected = verifier(astro, flipped)
    assert verifier((astro, flipped)) == expected
    assert verifier({"a": astro, "b": flipped}) == expected
    assert verifier(str(path_a), path_b) == expected  # paths are read at the Python call's edge
    listed = verifier([(astro, flipped), {"a": png(astro), "b": png(flipped)}])
    assert listed == [expected, expected]


def test_the_http_forms_carry_base64_and_no_paths(verifier, astro, flipped, tmp_path):
    a64, b64 = (base64.b64encode(png(x)).decode() for x in (astro, flipped))
    opts = verifier.parse_options({})
    path = tmp_path / "a.png"
    path.write_bytes(png(astro))
    out = verifier.run_batch([([a64, b64], opts), ({"a": a64, "b": b64}, opts), ([str(path), b64], opts)])
    assert out[0] == out[1] == verifier(astro, flipped)
    assert isinstance(out[2], InputDecodeError)  # a path string over HTTP is not read


def test_no_face_and_several_faces_are_that_pairs_own_outcome(verifier, astro, flipped, coffee_photo):
    crowd = two_faces(astro)
    out = verifier.predict_each([(astro, coffee_photo), (crowd, astro), (astro, flipped), (astro, b"garbage")])
    assert isinstance(out[0], NoFaceError) and "image b" in out[0].message
    assert isinstance(out[1], MultipleFacesError) and "image a" in out[1].message
    assert isinstance(out[2], Verification) and out[2].match
    assert isinstance(out[3], InputDecodeError)
    with pytest.raises(NoFaceError):
        verifier(coffee_photo, astro)


def test_largest_picks_the_largest_face(verifier, astro):
    v = verifier(two_faces(astro), astro, largest=True)
    assert v.faces == (2, 1)
    assert v.match and v.distance < 0.3  # the full-size copy of the very same face


@pytest.mark.parametrize("quality", [40, 75, 95])
def test_the_astronaut_as_jpeg_matches_its_mirror_despite_the_mission_patch(verifier, embedder, astro, quality):
    # As JPEG, HOG also scores the sleeve's mission patch (0.12-0.26 against the face's ~1.1). It used
    # to make verify raise MD151, and largest=True picked the patch (its box is larger): distance 0.795.
    a = jpeg(astro, quality)
    b = jpeg(np.ascontiguousarray(astro[:, ::-1]), quality)
    assert len(embedder(b)) == 2  # the patch is still detected; it is just not taken for a face to verify
    v = verifier(a, b)
    assert v.match and v.distance < 0.3
    assert verifier(a, b, largest=True) == v


def test_several_confident_faces_still_raise_and_the_hint_names_the_fix(verifier, astro):
    with pytest.raises(MultipleFacesError, match="2 faces") as caught:
        verifier(two_faces(astro), astro)
    assert caught.value.fix is not None and caught.value.fix.python in (caught.value.hint or "")


def test_a_stricter_threshold_changes_the_verdict(verifier, astro, flipped):
    loose = verifier(astro, flipped)
    strict = verifier(astro, flipped, match_threshold=loose.distance / 2)
    assert loose.match and not strict.match
    assert strict.threshold == pytest.approx(loose.distance / 2)
    assert strict.distance == loose.distance


def test_an_input_that_is_not_a_pair_is_a_type_error(verifier, astro):
    opts = verifier.parse_options({})
    out = verifier.run_batch([(png(astro), opts), ([png(astro)] * 3, opts), ({"a": png(astro)}, opts)])
    assert all(isinstance(o, InputTypeError) for o in out)
    assert "pair" in out[0].message and "a sequence of 3" in out[1].message


def test_confidence_is_a_logistic_of_the_margin():
    assert match_confidence(0.6, 0.6) == pytest.approx(0.5)
    assert match_confidence(0.54, 0.6) == pytest.approx(1 / (1 + math.exp(-1)))
    assert match_confidence(0.66, 0.6) == pytest.approx(1 / (1 + math.exp(1)))
    assert match_confidence(100.0, 0.6) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= match_confidence(0.0, 0.6) <= 1.0


def test_verification_round_trips_through_dict_and_arrow(verifier, astro, flipped):
    v = verifier(astro, flipped)
    assert Verification.from_dict(v.to_dict()) == v
    assert v.to_dict()["faces"] == [1, 1]
    column = to_arrow([v, None], Verification)
    assert Verification.from_dict(column.to_pylist()[0]) == v


def test_describe_names_model_metric_and_threshold(verifier):
    info = verifier.describe()
    assert info["task"] == "face-verify" and info["metric"] == "euclidean" and info["threshold"] == 0.6
    assert "largest" in info["options"]["properties"]


@pytest.mark.slow
def test_served_verify_takes_pairs_and_answers_per_pair(tmp_path, astro, flipped, coffee_photo, verifier):
    import httpx

    from modeldeck.config import Settings
    from modeldeck.serving import create_app

    from ..support import LiveServer

    settings = Settings.from_env({}, home=tmp_path / "home", models=("face-verify",), isolation="thread")
    server = LiveServer(create_app(settings)).start()
    try:
        server.wait_ready()
        a, b, c = (base64.b64encode(png(x)).decode() for x in (astro, flipped, coffee_photo))
        url = f"{server.url}/v1/models/face-verify/predict"
        listed = httpx.post(url, json={"inputs": [[a, b], [a, c]]}, timeout=60).json()["outputs"]
        assert listed[0] == verifier(astro, flipped).to_dict()
        assert listed[1]["error"]["code"] == "MD150"
        single = httpx.post(url, json={"inputs": {"a": a, "b": b}, "options": {"largest": True}}, timeout=60)
        assert single.status_code == 200 and single.json()["outputs"][0]["match"] is True
        # Multipart: the files are read two at a time, each pair one output.
        files = [("image", ("a.png", png(astro))), ("image", ("b.png", png(flipped)))]
        uploaded = httpx.post(url, files=files, timeout=60)
        assert uploaded.status_code == 200 and uploaded.json()["outputs"][0] == listed[0]
        odd = httpx.post(url, files=files[:1], timeout=60)
        assert odd.status_code == 422 and "pairs" in odd.json()["error"]["message"]
    finally:
        server.stop()
