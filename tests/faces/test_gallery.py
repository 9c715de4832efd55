"""The face gallery: enrol, identify, remove, persistence, bad input, model mismatch, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.errors import (
    EmptyInputError,
    GalleryModelMismatchError,
    GalleryNotFoundError,
    InputDecodeError,
    InputError,
    InputTooLargeError,
    MultipleFacesError,
    NoFaceError,
    NotFoundError,
    OptionError,
)
from modeldeck.gallery import Candidate, EnrollReport, Gallery, Identification, IdentifiedFace, PersonInfo
from modeldeck.gallery._store import GalleryStore

from .gallery_support import FakeEmbedder, fake_photo, person_vector, png_bytes, save_photo

ALICE, BOB, CAROL = 11, 22, 33


def counts(path: Path) -> tuple[int, int, str]:
    """(people, vectors, generation) read straight from the file."""
    with sqlite3.connect(path) as conn:
        people = conn.execute("SELECT count(*) FROM people").fetchone()[0]
        vectors = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    return people, vectors, generation


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def gallery(tmp_path, fake):
    with Gallery(tmp_path / "team.db", fake) as g:
        yield g


def test_gallery_is_the_lazy_package_export():
    assert modeldeck.Gallery is Gallery


def test_round_trip_enroll_identify_remove_identify_unknown(gallery, tmp_path):
    report = gallery.enroll("alice", [fake_photo((ALICE, 1)), save_photo(tmp_path / "a2.png", (ALICE, 2))])
    assert isinstance(report, EnrollReport) and report.images == 2 and not report.skipped
    assert [a.source for a in report.added] == ["image 1", str(tmp_path / "a2.png")]
    gallery.enroll("bob", fake_photo((BOB, 1)))
    assert len(gallery) == 2
    assert gallery.people() == [PersonInfo("alice", 2), PersonInfo("bob", 1)]

    found = gallery.identify(fake_photo((ALICE, 3)))
    face = found.faces[0]
    assert found.names == ("alice",) and not face.unknown
    assert [c.name for c in face.candidates] == ["alice", "bob"]
    assert face.candidates[0].distance < 0.6 < face.candidates[1].distance
    expected = min(np.linalg.norm(person_vector(ALICE, 3) - person_vector(ALICE, v)) for v in (1, 2))
    assert face.distance == pytest.approx(expected, abs=1e-5)
    assert face.candidates[0].image_id in {a.image_id for a in report.added}

    assert gallery.remove_person("alice") == 2
    assert counts(gallery.path)[:2] == (1, 1)
    again = gallery.identify(fake_photo((ALICE, 3)))
    assert again.faces[0].unknown and again.names == (None,)
    assert [c.name for c in again.faces[0].candidates] == ["bob"] and not again.faces[0].candidates[0].match


def test_search_ranks_people_by_their_best_vector_like_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    emb = FakeEmbedder()
    with Gallery(tmp_path / "g.db", emb) as gallery:
        vectors = {f"p{i}": rng.normal(scale=0.1, size=(int(rng.integers(1, 5)), 128)) for i in range(40)}
        for name, rows in vectors.items():
            gallery.add_vectors(name, rows)
        for _ in range(5):
            query = rng.normal(scale=0.1, size=128)
            best = {
                name: float(np.min(np.linalg.norm(rows.astype(np.float32) - query.astype(np.float32), axis=1)))
                for name, rows in vectors.items()
            }
            ranked = sorted(best, key=best.get)[:7]
            got = gallery.search(query, top_k=7, threshold=1.2)
            assert [c.name for c in got] == ranked
            assert [c.distance for c in got] == pytest.approx([best[n] for n in ranked], abs=1e-5)
            assert [c.match for c in got] == [best[n] <= 1.2 for n in ranked]


def test_cosine_galleries_rank_by_one_minus_cosine(tmp_path):
    emb = FakeEmbedder("cos-model@1")
    emb.metric, emb.threshold = "cosine", 0.3
    rng = np.random.default_rng(1)
    rows = {f"p{i}": rng.normal(size=(2, 128)) for i in range(10)}
    with Gallery(tmp_path / "c.db", emb) as gallery:
        for name, vecs in rows.items():
            gallery.add_vectors(name, vecs * rng.uniform(0.5, 3))  # scale must not matter
        query = rng.normal(size=128)
        cos = {
            n: float(np.min(1 - v @ query / (np.linalg.norm(v, axis=1) * np.linalg.norm(query))))
            for n, v in rows.items()
        }
        got = gallery.search(query, top_k=3)
        assert [c.name for c in got] == sorted(cos, key=cos.get)[:3]
        assert got[0].distance == pytest.approx(cos[got[0].name], abs=1e-5)
        assert gallery.metric == "cosine" and gallery.threshold == 0.3


def test_bad_images_are_skipped_per_image_and_reported(gallery):
    huge = np.zeros((1100, 1000, 3), dtype=np.uint8)  # over the fake's 1,000,000 pixels
    images = [
        fake_photo((ALICE, 1)),
        fake_photo(),  # no face
        fake_photo((ALICE, 2), (BOB, 1)),  # two faces
        b"\x89PNG\r\n\x1a\n not really",  # corrupt
        np.zeros((4, 4, 3), dtype=np.uint8),  # tiny
        huge,
        png_bytes(fake_photo((ALICE, 3))),
    ]
    report = gallery.enroll("alice", images)
    assert len(report.added) == 2 and report.images == 2
    codes = {s.source: s.code for s in report.skipped}
    assert codes == {
        "image 2": NoFaceError.code,
        "image 3": MultipleFacesError.code,
        "image 4": InputDecodeError.code,
        "image 5": InputDecodeError.code,
        "image 6": InputTooLargeError.code,
    }
    assert "pixels" in next(s.message for s in report.skipped if s.source == "image 6")


def test_largest_picks_the_biggest_face_when_enrolling_and_identifying(gallery):
    report = gallery.enroll("bob", [fake_photo((ALICE, 1, 10), (BOB, 1, 30))], largest=True)
    assert len(report.added) == 1 and report.added[0].box == (32.0, 0.0, 64.0, 30.0)
    both = gallery.identify(fake_photo((BOB, 2, 30), (CAROL, 1, 20)))
    assert both.names == ("bob", None)  # every face of the probe is identified, in the detector's order
    one = gallery.identify(fake_photo((BOB, 2, 12), (CAROL, 1, 20)), largest=True)
    assert len(one.faces) == 1 and one.faces[0].box[0] == 32.0 and one.faces[0].unknown


def test_when_no_image_succeeds_the_error_is_raised_and_nothing_written(gallery):
    gallery.enroll("bob", fake_photo((BOB, 1)))
    before = counts(gallery.path)
    with pytest.raises(NoFaceError, match="none of the 2 images of 'alice'"):
        gallery.enroll("alice", [fake_photo(), fake_photo()])
    with pytest.raises(MultipleFacesError):
        gallery.enroll("alice", fake_photo((ALICE, 1), (BOB, 1)))
    with pytest.raises(InputDecodeError):
        gallery.enroll("alice", b"garbage bytes")
    with pytest.raises(EmptyInputError):
        gallery.enroll("alice", [])
    with pytest.raises(InputError, match="invalid person name"):
        gallery.enroll("a/b", fake_photo((ALICE, 1)))
    with pytest.raises(EmptyInputError):
        gallery.enroll("  ", fake_photo((ALICE, 1)))
    assert counts(gallery.path) == before
    assert gallery.people() == [PersonInfo("bob", 1)]


def test_identify_bad_probes_raise_clear_errors(gallery):
    gallery.enroll("bob", fake_photo((BOB, 1)))
    before = counts(gallery.path)
    with pytest.raises(NoFaceError):
        gallery.identify(fake_photo())
    with pytest.raises(InputDecodeError):
        gallery.identify(b"not an image")
    with pytest.raises(InputDecodeError, match="at least 8 pixels"):
        gallery.identify(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(OptionError, match="top_k"):
        gallery.identify(fake_photo((BOB, 1)), top_k=0)
    with pytest.raises(OptionError, match="threshold"):
        gallery.search(person_vector(BOB), threshold=-1)
    with pytest.raises(InputError, match="128 dimensions"):
        gallery.search(np.zeros(5))
    assert counts(gallery.path) == before


def test_an_empty_gallery_answers_unknown_with_no_candidates(gallery):
    found = gallery.identify(fake_photo((ALICE, 1)))
    assert found.faces[0].unknown and found.faces[0].candidates == () and found.faces[0].distance is None


def test_remove_image_and_the_last_image_removes_the_person(gallery):
    report = gallery.enroll("alice", [fake_photo((ALICE, 1)), fake_photo((ALICE, 2))])
    first, second = (a.image_id for a in report.added)
    assert [i.image_id for i in gallery.images("alice")] == [first, second]
    assert gallery.remove_image(first) == "alice"
    assert gallery.people() == [PersonInfo("alice", 1)]
    before = counts(gallery.path)
    with pytest.raises(NotFoundError, match=f"no image {first}"):
        gallery.remove_image(first)
    with pytest.raises(NotFoundError, match="no person named 'zed'"):
        gallery.remove_person("zed")
    assert counts(gallery.path) == before  # a failed removal writes nothing, not even the generation
    gallery.remove_image(second)
    assert gallery.people() == [] and len(gallery) == 0
    with pytest.raises(NotFoundError, match="no person named 'alice'"):
        gallery.remove_person("alice")
    # ids are never reused, so a stale id can never delete someone else's vector
    again = gallery.enroll("alice", fake_photo((ALICE, 1)))
    assert again.added[0].image_id > second


def test_enrolling_again_adds_to_the_same_person(gallery):
    gallery.enroll("alice", fake_photo((ALICE, 1)))
    report = gallery.enroll("alice", [fake_photo((ALICE, 2))], sources=["second.jpg"])
    assert report.images == 2 and report.added[0].source == "second.jpg"
    assert gallery.people() == [PersonInfo("alice", 2)]


def test_the_gallery_persists_and_another_object_sees_writes(tmp_path, fake):
    path = tmp_path / "team.db"
    first = Gallery(path, fake)
    second = Gallery(path, fake)
    assert second.identify(fake_photo((ALICE, 1))).faces[0].unknown  # loads its (empty) matrix
    first.enroll("alice", fake_photo((ALICE, 1)))
    assert second.identify(fake_photo((ALICE, 2))).names == ("alice",)
    first.remove_person("alice")
    assert second.identify(fake_photo((ALICE, 2))).faces[0].unknown
    first.close()
    second.close()
    with Gallery(tmp_path / "new" / "sub" / "g.db", fake) as nested:  # folders are created
        assert nested.path.is_file()
    with Gallery(path, fake, create=False) as reopened:
        assert reopened.model_id == "fake-faces@1" and reopened.dim == 128 and reopened.threshold == 0.6
        assert reopened.metric == "euclidean" and len(reopened) == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_opening_with_another_model_is_a_clear_error_and_changes_nothing(tmp_path, fake):
    path = tmp_path / "team.db"
    with Gallery(path, fake) as gallery:
        gallery.enroll("alice", fake_photo((ALICE, 1)))
    before = counts(path)
    with pytest.raises(GalleryModelMismatchError, match="built with fake-faces@1, not other@2") as info:
        Gallery(path, FakeEmbedder("other@2"))
    assert "model='fake-faces@1'" in str(info.value)
    assert counts(path) == before


def test_a_missing_gallery_is_not_created_when_create_is_false(tmp_path, fake):
    path = tmp_path / "missing.db"
    with pytest.raises(GalleryNotFoundError, match="no face gallery at"):
        Gallery(path, fake, create=False)
    assert not path.exists()
    with pytest.raises(GalleryNotFoundError, match="not a file"):
        Gallery(tmp_path, fake)


def test_files_that_are_not_galleries_are_refused(tmp_path, fake):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(GalleryNotFoundError, match="not a face gallery"):
        Gallery(junk, fake)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(GalleryNotFoundError, match="not a modeldeck face gallery"):
        Gallery(other, fake)
    with sqlite3.connect(other) as conn:  # someone else's database is left exactly as it was
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["t"]
    blank = tmp_path / "blank.db"  # a valid SQLite file with no tables yet becomes a gallery
    with sqlite3.connect(blank) as conn:
        conn.execute("PRAGMA user_version = 1")
    assert blank.stat().st_size > 0
    with Gallery(blank, fake) as gallery:
        assert len(gallery) == 0 and gallery.model_id == "fake-faces@1"


def test_a_failing_write_rolls_back_everything(gallery, monkeypatch):
    gallery.enroll("bob", fake_photo((BOB, 1)))
    before = counts(gallery.path)
    real = GalleryStore._insert
    made = []

    def failing_insert(self, *args):  # fails after the first vector row is already inserted
        made.append(args)
        if len(made) == 2:
            raise RuntimeError("disk on fire")
        return real(self, *args)

    monkeypatch.setattr(GalleryStore, "_insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        gallery.enroll("alice", [fake_photo((ALICE, 1)), fake_photo((ALICE, 2))])
    assert counts(gallery.path) == before
    monkeypatch.undo()
    assert gallery.people() == [PersonInfo("bob", 1)]
    assert gallery.identify(fake_photo((ALICE, 1))).faces[0].unknown


def test_readers_keep_answering_while_one_writer_enrolls(tmp_path, fake):
    path = tmp_path / "busy.db"
    Gallery(path, fake).close()
    rng = np.random.default_rng(2)
    batches = [rng.normal(scale=0.1, size=(20, 128)) for _ in range(30)]
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[int] = []

    def write() -> None:
        try:
            with Gallery(path, fake) as writer:
                for i, rows in enumerate(batches):
                    writer.add_vectors(f"p{i}", rows)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(shared: Gallery | None) -> None:
        try:
            reader = shared or Gallery(path, fake)
            probe = batches[0][0]
            while not done.is_set():
                got = reader.search(probe, top_k=3)
                seen.append(len(got))
                if got:  # the first person, once visible, is always the exact match
                    assert got[0].name == "p0" and got[0].distance < 1e-5
            if shared is None:
                reader.close()
        except BaseException as exc:
            errors.append(exc)

    shared = Gallery(path, fake)
    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read, args=(g,)) for g in (None, None, shared, shared)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(shared) == 30 and sum(p.images for p in shared.people()) == 600
    assert len(shared.search(batches[29][0], top_k=50)) == 30
    shared.close()


def test_another_process_writing_is_seen_and_never_blocks_readers(tmp_path, fake):
    path = tmp_path / "shared.db"
    reader = Gallery(path, fake)
    script = (
        "import sys, numpy as np\n"
        "from modeldeck.gallery import Gallery\n"
        "from tests.faces.gallery_support import FakeEmbedder, person_vector\n"
        "g = Gallery(sys.argv[1], FakeEmbedder())\n"
        "for i in range(20):\n"
        "    g.add_vectors(f'p{i}', np.stack([person_vector(i + 1, v) for v in range(1, 4)]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=Path(__file__).parents[2])
    answers = 0
    while proc.poll() is None:
        reader.search(person_vector(1), top_k=2)
        answers += 1
    assert proc.wait() == 0 and answers > 0
    got = reader.search(person_vector(7, 9), top_k=2)
    assert got[0].name == "p6" and got[0].match and len(reader) == 20
    reader.close()


def test_results_round_trip_through_dicts(gallery):
    gallery.enroll("alice", fake_photo((ALICE, 1)))
    found = gallery.identify(fake_photo((ALICE, 2), (BOB, 1)))
    assert Identification.from_dict(found.to_dict()) == found
    assert found.to_dict()["faces"][0]["name"] == "alice" and found.to_dict()["faces"][1]["name"] is None
    report = gallery.enroll("bob", [fake_photo((BOB, 1)), fake_photo()])
    assert EnrollReport.from_dict(report.to_dict()) == report
    face = found.faces[0]
    assert IdentifiedFace.from_dict(face.to_dict()) == face
    assert Candidate.from_dict(face.candidates[0].to_dict()) == face.candidates[0]


# ---------------------------------------------------------------- the real dlib model


@pytest.mark.slow
def test_real_dlib_round_trip_and_many_faces(embedder, astro, lfw, tmp_path):
    from .face_builders import two_faces

    path = tmp_path / "real.db"
    with Gallery(path, embedder) as gallery:
        assert gallery.model_id == embedder.model_id and gallery.dim == 128 and gallery.threshold == embedder.threshold
        report = gallery.enroll("eileen", [astro, np.ascontiguousarray(astro[30:300, 100:350])])
        assert len(report.added) == 2 and report.added[0].box is not None
        enrolled = 0
        for i, face in enumerate(lfw):  # the first lfw_subset crops that hold one face dlib can find
            if enrolled == 2:
                break
            try:
                gallery.enroll(f"lfw{i}", face)
                enrolled += 1
            except NoFaceError:
                continue
        probe = np.ascontiguousarray(astro[:, ::-1])  # mirrored, so not a stored image
        found = gallery.identify(probe)
        direct = embedder.embed_one(probe).vector
        stored = [embedder.embed_one(x).vector for x in (astro, astro[30:300, 100:350])]
        assert found.names == ("eileen",) and found.model == embedder.model_id
        assert found.faces[0].distance == pytest.approx(min(np.linalg.norm(direct - v) for v in stored), abs=1e-5)
        assert all(not c.match for c in found.faces[0].candidates[1:])
        group = gallery.identify(two_faces(astro))
        assert group.names == ("eileen", "eileen")
        assert len(gallery.identify(two_faces(astro), largest=True).faces) == 1
        before = counts(path)
        with pytest.raises(MultipleFacesError):
            gallery.enroll("group", two_faces(astro))
        assert counts(path) == before
        gallery.remove_person("eileen")
        assert gallery.identify(probe).faces[0].unknown
    with pytest.raises(GalleryModelMismatchError):
        Gallery(path, FakeEmbedder())
