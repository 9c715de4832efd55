"""`modeldeck predict` on the face tasks with the real dlib models: files in, pairs for face-verify, tables out."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from skimage import data

import modeldeck

from .test_predict_cli import run_cli

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(data.astronaut()[:, ::-1]).save(folder / "mirrored.png")
    Image.fromarray(data.coffee()).save(folder / "coffee.png")
    return folder


def test_verify_reads_the_files_two_at_a_time(tmp_path, photos):
    a, b, c = (str(photos / n) for n in ("astronaut.png", "mirrored.png", "coffee.png"))
    out = run_cli("predict", "face-verify", a, b, a, c, "-o", "largest=true", "--json", home=tmp_path)
    assert out.returncode == 1, out.stderr  # the second pair has no face in its coffee cup
    same, none = json.loads(out.stdout)
    mine = modeldeck.load("face-verify")(a, b, largest=True).to_dict()
    assert same.pop("distance") == pytest.approx(mine.pop("distance"), abs=1e-9)  # float printing, nothing else
    assert same == mine and same["match"] is True
    assert none["error"]["code"] == "MD150" and "image b" in none["error"]["message"]

    table = run_cli("predict", "face-verify", a, b, "-o", "largest=true", home=tmp_path)
    assert table.returncode == 0 and "astronaut.png ↔" in table.stdout and "same person" in table.stdout

    odd = run_cli("predict", "face-verify", a, home=tmp_path)
    assert odd.returncode == 2 and "pairs of images" in odd.stderr


def test_face_detect_table_names_box_and_landmarks(tmp_path, photos):
    out = run_cli("predict", "face-detect", str(photos / "astronaut.png"), "-o", "landmarks=68", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "landmarks" in out.stdout and " 68 " in out.stdout and "512x512 px" in out.stdout


def test_an_input_that_looks_like_markup_is_shown_as_typed(tmp_path):
    out = run_cli("predict", "ner", "[bold]Tim Cook[/bold] visited Paris.", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[bold]Tim Cook[/bold] visited Paris." in out.stdout
