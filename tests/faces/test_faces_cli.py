"""``modeldeck faces``: enroll from folders, identify, list, remove, verify; exit codes and messages."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modeldeck.gallery._gallery as gallery_module
from modeldeck.cli.main import main

from .face_builders import two_faces
from .gallery_support import FakeEmbedder, save_photo

ALICE, BOB = 11, 22


@pytest.fixture
def fake_models(monkeypatch):
    """Model references resolve to the fake embedder, so the CLI runs in-process without dlib."""
    loaded: list[str] = []

    def load(ref: str, settings=None, loader=None) -> FakeEmbedder:
        loaded.append(ref)
        return FakeEmbedder()

    monkeypatch.setattr(gallery_module, "_load_embedder", load)
    monkeypatch.setattr(
        gallery_module, "_model_ref_id", lambda ref, settings=None: "fake-faces@1" if ref == "face-embed" else ref
    )
    return loaded


@pytest.fixture
def people(tmp_path) -> Path:
    root = tmp_path / "people"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / "empty").mkdir()
    save_photo(root / "alice" / "a1.png", (ALICE, 1))
    save_photo(root / "alice" / "a2.png", (ALICE, 2))
    save_photo(root / "alice" / "group.png", (ALICE, 3), (BOB, 3))
    save_photo(root / "alice" / "nobody.png")
    (root / "alice" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "alice" / "notes.txt").write_text("not a photo")
    save_photo(root / "bob" / "b1.png", (BOB, 1))
    return root


def rows(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (
            conn.execute("SELECT count(*) FROM people").fetchone()[0],
            conn.execute("SELECT count(*) FROM vectors").fetchone()[0],
        )


def test_enroll_identify_list_remove_round_trip(fake_models, people, tmp_path, capsys):
    db = tmp_path / "team.db"
    assert main(["faces", "enroll", str(db), str(people), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "enrolled 3 photo(s) of 2 person(s); the gallery holds 2 people" in out
    assert "skipped 3 photo(s)" in out
    assert "group.png: [MD151]" in out and "nobody.png: [MD150]" in out and "broken.jpg: [MD104]" in out
    assert rows(db) == (2, 3) and fake_models == ["face-embed"]

    assert main(["faces", "identify", str(db), str(save_photo(tmp_path / "probe.png", (ALICE, 9))), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in found["faces"]] == ["alice"]
    assert [c["name"] for c in found["faces"][0]["candidates"]] == ["alice", "bob"]
    assert fake_models[-1] == "fake-faces@1"  # identify loads the model the gallery records

    assert main(["faces", "identify", str(db), str(tmp_path / "probe.png"), "--top-k", "1"]) == 0
    text = capsys.readouterr().out
    assert "face 1 [0, 0, 32, 32]: alice" in text and "bob" not in text

    assert main(["faces", "list", str(db), "--json", "--images"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["images"]) for p in listing["people"]] == [("alice", 2), ("bob", 1)]
    assert listing["model"] == "fake-faces@1"
    bob_image = listing["people"][1]["image_ids"][0]
    assert bob_image["source"].endswith("b1.png")

    assert main(["faces", "remove", str(db), "alice"]) == 0
    assert "removed alice (2 images)" in capsys.readouterr().out
    assert main(["faces", "identify", str(db), str(tmp_path / "probe.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["name"] is None
    assert main(["faces", "remove", str(db), "--image", str(bob_image["image_id"])]) == 0
    assert rows(db) == (0, 0)
    assert main(["faces", "list", str(db)]) == 0
    assert "0 people" in capsys.readouterr().out


def test_enroll_with_name_and_json_report(fake_models, people, tmp_path, capsys):
    db = tmp_path / "one.db"
    code = main(
        ["faces", "enroll", str(db), str(people / "alice" / "a1.png"), str(people / "alice" / "group.png"),
         "--name", "Alice Liddell", "--largest", "--json", "--quiet"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["people"] == 1 and report["enrolled"][0]["name"] == "Alice Liddell"
    assert len(report["enrolled"][0]["added"]) == 2 and report["enrolled"][0]["skipped"] == []


def test_a_person_whose_photos_all_fail_is_reported_and_the_rest_enrolled(fake_models, tmp_path, capsys):
    root = tmp_path / "p"
    (root / "ghost").mkdir(parents=True)
    (root / "bob").mkdir()
    save_photo(root / "ghost" / "blank.png")
    save_photo(root / "bob" / "b.png", (BOB, 1))
    db = tmp_path / "g.db"
    assert main(["faces", "enroll", str(db), str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "not enrolled: ghost: [MD150]" in out and rows(db) == (1, 1)


def test_missing_gallery_is_exit_2_and_no_file_is_created(fake_models, tmp_path, capsys):
    db = tmp_path / "nope.db"
    probe = save_photo(tmp_path / "p.png", (ALICE, 1))
    for argv in (["identify", str(db), str(probe)], ["list", str(db)], ["remove", str(db), "alice"]):
        assert main(["faces", *argv]) == 2
        err = capsys.readouterr().err
        assert "[MD205] no face gallery at" in err and "faces enroll" in err
    assert not db.exists()


def test_bad_input_is_exit_2_with_a_message_and_the_gallery_untouched(fake_models, people, tmp_path, capsys):
    db = tmp_path / "team.db"
    assert main(["faces", "enroll", str(db), str(people), "--quiet"]) == 0
    capsys.readouterr()
    before = rows(db)
    blank = save_photo(tmp_path / "blank.png")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\x00garbage")
    cases = [
        (["identify", str(db), str(blank)], "MD150"),
        (["identify", str(db), str(corrupt)], "MD104"),
        (["identify", str(db), str(tmp_path / "missing.jpg")], "no image file"),
        (["identify", str(db), str(blank), "--top-k", "0"], "MD110"),
        (["remove", str(db), "nobody"], "no person named 'nobody'"),
        (["remove", str(db), "--image", "999"], "no image 999"),
        (["remove", str(db)], "NAME or --image"),
        (["enroll", str(db), str(tmp_path / "none")], "no such file or folder"),
        (["enroll", str(db), str(people / "alice" / "a1.png")], "one subfolder of photos per person"),
        (["enroll", str(db), str(people / "empty")], "no photos found"),
        (["identify", str(db), str(blank), "--model", "other@2"], "[MD012]"),
    ]
    for argv, message in cases:
        assert main(["faces", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert rows(db) == before


@pytest.mark.slow
def test_faces_help_runs_in_a_subprocess_without_loading_numpy():
    code = (
        "import sys; from modeldeck.cli.main import main\n"
        "try:\n    main(['faces', '--help'])\nexcept SystemExit: pass\n"
        "print('numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "enroll" in out and "identify" in out and out.strip().endswith("False")


@pytest.mark.slow
def test_real_dlib_enroll_identify_verify(embedder, verifier, astro, lfw, tmp_path, monkeypatch, capsys):
    """The real model behind the commands (loaded once for the session instead of once per command)."""
    from PIL import Image

    import modeldeck

    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(gallery_module, "_load_embedder", lambda ref, settings=None, loader=None: embedder)
    monkeypatch.setattr(modeldeck, "load", lambda task, **kw: verifier)
    root = tmp_path / "people"
    (root / "eileen").mkdir(parents=True)
    (root / "someone").mkdir()
    Image.fromarray(astro).save(root / "eileen" / "full.png")
    Image.fromarray(np.ascontiguousarray(astro[30:300, 100:350])).save(root / "eileen" / "crop.png")
    Image.fromarray(lfw[0]).save(root / "someone" / "face.png")
    probe = tmp_path / "mirror.png"
    Image.fromarray(np.ascontiguousarray(astro[:, ::-1])).save(probe)
    db = tmp_path / "real.db"

    assert main(["faces", "enroll", str(db), str(root), "--quiet"]) == 0
    assert "enrolled 3 photo(s) of 2 person(s)" in capsys.readouterr().out
    assert main(["faces", "identify", str(db), str(probe), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["faces"][0]["name"] == "eileen" and found["model"] == embedder.model_id
    assert main(["faces", "verify", str(root / "eileen" / "full.png"), str(probe)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("same person: distance") and embedder.model_id in text
    assert main(["faces", "verify", str(probe), str(root / "someone" / "face.png"), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["match"] is False and verdict["distance"] > verdict["threshold"]
    # Several faces: the hint names this command's flag, not the Python keyword; the flag works.
    crowd = tmp_path / "crowd.png"
    Image.fromarray(two_faces(astro)).save(crowd)
    assert main(["faces", "verify", str(crowd), str(probe)]) == 2
    err = capsys.readouterr().err
    assert "MD151" in err and "--largest" in err and "largest=True" not in err
    assert main(["faces", "verify", str(crowd), str(probe), "--largest", "--match-threshold", "0.01", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["threshold"] == 0.01 and verdict["match"] is False and verdict["distance"] < 0.3
