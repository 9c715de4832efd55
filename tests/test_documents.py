"""Document Q&A: a small handbook indexed with the real MiniLM, searched, updated, reopened and read."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modeldeck.config import Settings
from modeldeck.documents import AskResult, BuildReport, DocumentIndex, Passage, extract_text
from modeldeck.documents._chunks import chunk_spans
from modeldeck.documents._extract import extract_bytes
from modeldeck.errors import (
    DocumentIndexMismatchError,
    DocumentIndexNotFoundError,
    EmptyInputError,
    NotFoundError,
    OptionError,
)

from .support import pdf_bytes

pytestmark = pytest.mark.timeout(300)

CHUNK, OVERLAP = 300, 60

VACATION_MD = """# Vacation policy

Full-time employees receive 25 paid vacation days per calendar year. Part-time employees receive
vacation days in proportion to their contracted hours.

## Carrying days over

Up to five unused vacation days may be carried over into the next year. Carried-over days expire
on March 31 and are not paid out.

## Requesting time off

Request vacation in the HR portal at least two weeks in advance, and agree the dates with your
manager before booking travel.
"""

EXPENSES_TXT = """Expense reports

Submit an expense report within 30 days of spending the money. Attach an itemised receipt for every
purchase over 25 dollars; card slips alone are not accepted.

Expense reports are approved by your manager and reimbursed with the next monthly payroll.
Alcohol, traffic fines and first-class upgrades are never reimbursed.
"""

SECURITY_HTML = """<!doctype html>
<html><head><title>Security badges</title>
<style>body { font-family: sans-serif } .vacation { color: red }</style>
<script>var note = "vacation days are unlimited"; console.log(note);</script>
</head>
<body>
<h1>Security badges</h1>
<p>Wear your security badge visibly at all times inside the building.
Badges open the doors of the floors you work on.</p>
<p>If you lose your badge, report it to the security desk within 24 hours so that it can be
deactivated; a replacement badge costs &euro;10.</p>
<ul><li>Visitors get a paper badge at reception &amp; must be escorted.</li></ul>
</body></html>
"""

PARENTAL_PAGES = [
    [
        "Parental leave",
        "Every new parent is entitled to 16 weeks of fully paid parental leave.",
        "Leave can start up to four weeks before the expected birth or adoption date.",
    ],
    [
        "Remote work",
        "Employees may work from home up to three days per week,",
        "provided their team agrees on at least two shared office days.",
    ],
]

LAPTOPS_MD = """# Laptops

Company laptops are replaced every three years. To report a broken laptop, open a ticket with the
IT help desk; a loan laptop is available the same day.
"""

# (question, source, a phrase of the answering passage, page)
QUESTIONS = [
    ("How many vacation days do full-time employees get each year?", "vacation.md", "25 paid vacation days", None),
    ("Can I carry unused vacation days into next year?", "vacation.md", "carried over", None),
    ("When do I have to submit my expense report?", "expenses.txt", "within 30 days", None),
    ("What should I do if I lose my security badge?", "security.html", "report it to the security desk", None),
    ("How long is paid parental leave?", "policies/parental.pdf", "16 weeks", 1),
    ("How many days can I work from home?", "policies/parental.pdf", "work from home", 2),
    ("My laptop is broken, who do I contact?", "it/laptops.md", "IT help desk", None),
]


def write_handbook(folder: Path) -> Path:
    """Five documents in four formats, each on its own topic; the PDF has two pages."""
    (folder / "policies").mkdir(parents=True)
    (folder / "it").mkdir()
    (folder / "vacation.md").write_text(VACATION_MD, encoding="utf-8")
    (folder / "expenses.txt").write_text(EXPENSES_TXT, encoding="utf-8")
    (folder / "security.html").write_text(SECURITY_HTML, encoding="utf-8")
    (folder / "policies" / "parental.pdf").write_bytes(pdf_bytes(PARENTAL_PAGES))
    (folder / "it" / "laptops.md").write_text(LAPTOPS_MD, encoding="utf-8")
    (folder / "logo.png").write_bytes(b"\x89PNG not a document")  # unsupported: ignored
    return folder


class CountingEmbedder:
    """The real embed task, recording every text it embeds."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.texts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def predict(self, inputs: list[str], options: Any = None) -> list[Any]:
        self.texts.extend(inputs)
        return self.task.predict(inputs, options)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("sentence_transformers")
    import modeldeck

    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"))
    return modeldeck.load("embed", settings=settings, batch_size=16)


@pytest.fixture(scope="module")
def handbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_handbook(tmp_path_factory.mktemp("handbook"))


@pytest.fixture(scope="module")
def index(handbook: Path, embedder: Any) -> DocumentIndex:
    return DocumentIndex.build(handbook, model=embedder, chunk_chars=CHUNK, overlap_chars=OVERLAP)


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    return write_handbook(tmp_path / "handbook")


# -- retrieval with the real model ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("question", "source", "phrase", "page"), QUESTIONS)
def test_the_answering_passage_is_ranked_first(index, question, source, phrase, page):
    result = index.ask(question, top_k=3)
    assert isinstance(result, AskResult) and result.answer is None  # no reader configured
    top = result.top
    assert top is not None and top.source == source and phrase in top.text, [p.source for p in result.passages]
    assert top.page == page
    scores = [p.score for p in result.passages]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0


@pytest.mark.slow
def test_build_report_and_what_is_indexed(index, handbook):
    report = index.report
    expected = ["expenses.txt", "it/laptops.md", "policies/parental.pdf", "security.html", "vacation.md"]
    assert sorted(report.added) == expected and index.files == tuple(expected)
    assert report.changed == report.removed == report.skipped == ()
    assert report.chunks_embedded == report.chunks_total == len(index)
    assert len(index.passages("vacation.md")) >= 3  # chunk_chars=300 splits the longer files
    assert (handbook / ".modeldeck-index" / "index.sqlite").is_file()
    assert index.model.startswith("all-MiniLM-L6-v2@")
    assert BuildReport.from_dict(report.to_dict()) == report


@pytest.mark.slow
def test_chunk_positions_map_back_to_the_source_text_exactly(index, handbook):
    for source in index.files:
        extracted = extract_text(handbook / source)
        passages = index.passages(source)
        assert passages and [p.chunk for p in passages] == list(range(len(passages)))
        for p in passages:
            assert extracted.text[p.start : p.end] == p.text
            assert len(p.text) <= CHUNK
            if source.endswith((".md", ".txt")):
                assert (handbook / source).read_text(encoding="utf-8")[p.start : p.end] == p.text
            if p.page is not None:
                page_start, page_end = extracted.pages[p.page - 1]
                assert page_start <= p.start < p.end <= page_end
        covered = " ".join(p.text for p in passages)
        assert set(extracted.text.split()) <= set(covered.split())  # every word is in some chunk
        starts = [p.start for p in passages]
        assert starts == sorted(starts)
    assert all("unlimited" not in p.text and "font-family" not in p.text for p in index.passages("security.html"))
    assert any("€10" in p.text and "&" in p.text for p in index.passages("security.html"))


@pytest.mark.slow
def test_reopening_from_disk_gives_the_same_results(index, handbook, embedder):
    with DocumentIndex.open(handbook, model=embedder) as reopened:
        assert len(reopened) == len(index) and reopened.files == index.files
        for question, *_ in QUESTIONS[:3]:
            before, after = index.search(question, top_k=4), reopened.search(question, top_k=4)
            assert [(p.source, p.start, p.end, p.text) for p in after] == [
                (p.source, p.start, p.end, p.text) for p in before
            ]
            assert np.allclose([p.score for p in after], [p.score for p in before], atol=1e-6)
        assert np.array_equal(reopened.store.vectors, index.store.vectors)


# -- incremental updates ----------------------------------------------------------------------


@pytest.mark.slow
def test_only_new_and_changed_files_are_re_embedded(fresh, embedder):
    counting = CountingEmbedder(embedder)
    idx = DocumentIndex.build(fresh, model=counting, chunk_chars=CHUNK, overlap_chars=OVERLAP)
    assert len(counting.texts) == len(idx) == idx.report.chunks_embedded
    expenses_before = idx.passages("expenses.txt")
    expense_rows = [idx.search(q, top_k=1)[0] for q, s, *_ in QUESTIONS if s == "expenses.txt"]

    # Nothing changed, or only the mtime changed: nothing is embedded.
    counting.texts.clear()
    stat = (fresh / "expenses.txt").stat()
    os.utime(fresh / "expenses.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    report = idx.update()
    assert counting.texts == [] and report.chunks_embedded == 0 and len(report.unchanged) == 5

    # Modify one, add one, delete one. A second index object (as another process would be) follows along.
    reader_side = DocumentIndex.open(fresh, model=embedder)
    (fresh / "vacation.md").write_text(
        VACATION_MD + "\n## Buying extra days\n\nEmployees may buy up to five extra vacation days each year.\n",
        encoding="utf-8",
    )
    (fresh / "travel.md").write_text(
        "# Business travel\n\nBook flights and hotels through the company travel agency. Economy class is the "
        "rule for flights shorter than six hours.\n",
        encoding="utf-8",
    )
    (fresh / "security.html").unlink()
    counting.texts.clear()
    report = idx.update()
    assert report.added == ("travel.md",) and report.changed == ("vacation.md",)
    assert report.removed == ("security.html",) and report.skipped == ()
    new_chunks = [p.text for source in ("travel.md", "vacation.md") for p in idx.passages(source)]
    assert sorted(counting.texts) == sorted(new_chunks) and report.chunks_embedded == len(new_chunks)
    assert len(idx) == report.chunks_total == sum(len(idx.passages(s)) for s in idx.files)
    assert "security.html" not in idx.files

    # Results follow the folder: the new file answers, the deleted one is gone, the others are untouched.
    travel = idx.search("Which class should I fly on business trips?", top_k=1)[0]
    assert travel.source == "travel.md" and "Economy class" in travel.text
    extra = idx.search("Can I buy additional vacation days?", top_k=1)[0]
    assert extra.source == "vacation.md" and "buy up to five extra" in extra.text
    seen = reader_side.search("Which class should I fly on business trips?", top_k=2)
    assert seen[0] == travel and len(reader_side) == len(idx)  # new vectors paired with the new rows
    late = reader_side.update()  # it catches up under the update lock instead of redoing the work
    assert late.chunks_embedded == 0 and late.added == late.changed == late.removed == ()
    reader_side.close()
    badge = idx.search("What should I do if I lose my security badge?", top_k=len(idx))
    assert all(p.source != "security.html" for p in badge)
    assert idx.passages("expenses.txt") == expenses_before
    for before in expense_rows:
        after = idx.search(next(q for q, s, *_ in QUESTIONS if s == "expenses.txt" and before.text), top_k=1)[0]
        assert (after.source, after.text) == (before.source, before.text) and after.score == pytest.approx(before.score)

    # The update is on disk: a reopened index agrees, vectors and rows included.
    with DocumentIndex.open(fresh, model=embedder) as reopened:
        assert reopened.files == idx.files and np.array_equal(reopened.store.vectors, idx.store.vectors)
        for source in reopened.files:
            assert reopened.passages(source) == idx.passages(source)
    assert len(list((fresh / ".modeldeck-index").glob("vectors-*.npy"))) == 1  # old generations are deleted


@pytest.mark.slow
def test_a_separate_index_dir_and_rebuild(fresh, tmp_path, embedder):
    where = tmp_path / "elsewhere"
    counting = CountingEmbedder(embedder)
    idx = DocumentIndex.build(fresh, model=counting, index_dir=where, chunk_chars=CHUNK, overlap_chars=OVERLAP)
    assert (where / "index.sqlite").is_file() and not (fresh / ".modeldeck-index").exists()
    first = len(counting.texts)
    idx.close()
    calls: list[tuple[int, int]] = []
    rebuilt = DocumentIndex.build(
        fresh, model=counting, index_dir=where, rebuild=True, progress=lambda *a: calls.append(a)
    )  # default chunk size
    assert len(counting.texts) - first == rebuilt.report.chunks_embedded == len(rebuilt)
    assert calls[0] == (0, len(rebuilt)) and calls[-1] == (len(rebuilt), len(rebuilt))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len(rebuilt) < first  # 800-char chunks: fewer than with 300
    with pytest.raises(DocumentIndexMismatchError, match="chunk_chars") as err:
        DocumentIndex.build(fresh, model=embedder, index_dir=where, chunk_chars=CHUNK)
    assert "rebuild" in str(err.value)


@pytest.mark.slow
def test_another_embedding_model_is_refused_with_a_hint_to_rebuild(fresh, embedder):
    from modeldeck.tasks.embed import EmbedTask
    from modeldeck.types import ModelInfo

    DocumentIndex.build(fresh, model=embedder, chunk_chars=CHUNK, overlap_chars=OVERLAP).close()
    info = embedder.info
    other = EmbedTask(
        ModelInfo("other-minilm", "2.0", ("embed",), info.runtime, info.path), embedder.backend, batch_size=16
    )
    for attempt in (lambda: DocumentIndex.open(fresh, model=other), lambda: DocumentIndex.build(fresh, model=other)):
        with pytest.raises(DocumentIndexMismatchError) as err:
            attempt()
        message = str(err.value)
        assert "all-MiniLM-L6-v2" in message and "other-minilm@2.0" in message and "rebuild" in message
        assert err.value.code == "MD011"
    rebuilt = DocumentIndex.build(fresh, model=other, rebuild=True)
    assert rebuilt.model == "other-minilm@2.0" and rebuilt.report.chunks_embedded == len(rebuilt) > 0


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_files_are_skipped_with_a_reason_and_the_rest_is_indexed(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("Lunch is served in the canteen from noon until two.", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    (folder / "latin1.txt").write_bytes("Caf\xe9 opening hours".encode("latin-1"))
    (folder / "empty.md").write_text("   \n\n", encoding="utf-8")
    (folder / "blank.pdf").write_bytes(pdf_bytes([[]]))
    idx = DocumentIndex.build(folder, model=embedder)
    reasons = {s.source: s.reason for s in idx.report.skipped}
    assert set(reasons) == {"broken.pdf", "latin1.txt", "empty.md", "blank.pdf"}
    assert "PDF" in reasons["broken.pdf"] and "UTF-8" in reasons["latin1.txt"] and "no text" in reasons["empty.md"]
    assert idx.files == ("good.md",) and idx.ask("When is lunch?").top.source == "good.md"
    assert all(w.startswith("skipped ") for w in idx.report.warnings)

    # A file that turns corrupt after indexing is dropped, not served stale.
    (folder / "good.md").write_bytes(b"\xff\xfe broken")
    report = idx.update()
    assert report.removed == () and [s.source for s in report.skipped if s.source == "good.md"] == ["good.md"]
    assert idx.files == () and len(idx) == 0 and idx.ask("When is lunch?").passages == ()


def test_empty_or_missing_folders_are_refused_before_a_model_loads(tmp_path):
    embedder = "no-such-model"  # never resolved: the folder is checked first
    with pytest.raises(EmptyInputError, match="no documents"):
        DocumentIndex.build(tmp_path, model=embedder)
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / ".hidden.md").write_text("hidden notes", encoding="utf-8")
    with pytest.raises(EmptyInputError, match="no documents"):
        DocumentIndex.build(tmp_path, model=embedder)
    with pytest.raises(NotFoundError, match="no folder"):
        DocumentIndex.build(tmp_path / "missing", model=embedder)
    for size, overlap in ((100, 100), (10, 0), (300, -1)):
        with pytest.raises(OptionError, match="chunk_chars"):
            DocumentIndex.build(tmp_path, model=embedder, chunk_chars=size, overlap_chars=overlap)


def test_a_missing_index_is_reported_with_how_to_build_it(tmp_path):
    embedder = "no-such-model"
    with pytest.raises(DocumentIndexNotFoundError) as err:
        DocumentIndex.open(tmp_path, model=embedder)
    assert err.value.code == "MD204" and "build" in str(err.value)


def test_a_damaged_index_asks_for_a_rebuild(tmp_path):
    embedder = "no-such-model"
    where = tmp_path / ".modeldeck-index"
    where.mkdir()
    (where / "index.sqlite").write_bytes(b"not a database at all, just bytes" * 10)
    with pytest.raises(DocumentIndexMismatchError, match="rebuild"):
        DocumentIndex.open(tmp_path, model=embedder)


@pytest.mark.slow
def test_empty_questions_and_bad_top_k_are_refused(index):
    for question in ("", "   \n"):
        with pytest.raises(EmptyInputError, match="question"):
            index.ask(question)
    for top_k in (0, -1, 2.5, True):
        with pytest.raises(OptionError, match="top_k"):
            index.search("vacation", top_k=top_k)
    assert len(index.search("vacation", top_k=10_000)) == len(index)


# -- the reader -----------------------------------------------------------------------------------


class FakeAnswer:
    def __init__(self, text: str, start: int, end: int, score: float) -> None:
        self.text, self.start, self.end, self.score = text, start, end, score


class FakeResult:
    def __init__(self, answers: tuple[FakeAnswer, ...]) -> None:
        self.answers = answers


class PhraseReader:
    """A reader following the qa task's contract: it 'answers' with a known phrase where it occurs."""

    def __init__(self, phrase: str) -> None:
        self.phrase = phrase
        self.calls: list[list[dict[str, str]]] = []

    def __call__(self, items: list[dict[str, str]]) -> list[FakeResult]:
        self.calls.append(items)
        out = []
        for item in items:
            at = item["context"].find(self.phrase)
            answers = (FakeAnswer(self.phrase, at, at + len(self.phrase), 0.9),) if at >= 0 else ()
            out.append(FakeResult((*answers, FakeAnswer(item["context"][:3], 0, 3, 0.1))))
        return out


@pytest.mark.slow
def test_a_reader_answer_points_into_its_source_document(index, handbook):
    reader = PhraseReader("16 weeks")
    result = index.ask("How long is paid parental leave?", top_k=3, reader=reader)
    assert [item["context"] for item in reader.calls[0]] == [p.text for p in result.passages]
    assert all(item["question"] == "How long is paid parental leave?" for item in reader.calls[0])
    answer = result.answer
    assert answer is not None and answer.text == "16 weeks" and answer.score == 0.9
    assert answer.source == "policies/parental.pdf" and answer.page == 1
    assert extract_text(handbook / answer.source).text[answer.start : answer.end] == "16 weeks"
    assert answer.passage in result.passages
    assert AskResult.from_dict(result.to_dict()) == result


@pytest.mark.slow
def test_the_qa_task_reads_answers_from_the_top_passages(index, handbook, tmp_path_factory, embedder):
    pytest.importorskip("transformers")
    try:
        from modeldeck.tasks.qa import QATask  # noqa: F401
    except ImportError:
        pytest.skip("the qa task is not available")
    from .tasks.language_models import save_tiny_bert_qa

    path = save_tiny_bert_qa(tmp_path_factory.mktemp("tiny-qa"), max_positions=128)
    with DocumentIndex.open(handbook, model=embedder, qa_model=path) as idx:
        result = idx.ask("When do I have to submit my expense report?", top_k=3)
    answer = result.answer
    assert answer is not None and answer.passage in result.passages and answer.text.strip()
    assert extract_text(handbook / answer.source).text[answer.start : answer.end] == answer.text
    inner = answer.passage.text[answer.start - answer.passage.start : answer.end - answer.passage.start]
    assert inner == answer.text


# -- pieces without a model --------------------------------------------------------------------------


@pytest.mark.parametrize("size,overlap", [(50, 0), (120, 30), (300, 60), (1000, 200)])
def test_chunk_spans_are_exact_bounded_overlapping_and_cover_the_text(size, overlap):
    text = (VACATION_MD + "\n\n" + EXPENSES_TXT) * 3
    spans = chunk_spans(text, size, overlap)
    assert spans and all(0 <= s < e <= len(text) and e - s <= size for s, e in spans)
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans)
    assert [s for s, _ in spans] == sorted({s for s, _ in spans})  # strictly increasing starts
    covered = np.zeros(len(text), dtype=bool)
    for s, e in spans:
        covered[s:e] = True
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    if overlap:
        assert any(s < prev_end for (s, _), (_, prev_end) in zip(spans[1:], spans, strict=False))


def test_chunks_end_at_sentence_or_paragraph_breaks_when_they_can():
    text = "First sentence here. " * 30
    for s, e in chunk_spans(text, 200, 40)[:-1]:
        assert text[s:e].endswith(".")
    assert chunk_spans("   \n ", 100, 10) == []
    with pytest.raises(ValueError):
        chunk_spans("abc", 10, 10)


def test_html_keeps_visible_text_only():
    extracted = extract_bytes(SECURITY_HTML.encode(), ".html")
    assert "vacation days are unlimited" not in extracted.text and "font-family" not in extracted.text
    assert extracted.text.startswith("Security badges\n\nSecurity badges\n\nWear your security badge visibly")
    assert "costs €10." in extracted.text and "reception & must" in extracted.text
    assert "inside the building. Badges open" in extracted.text  # line breaks in a paragraph are spaces
    no_head_end = extract_bytes(b"<html><head><title>T</title><body><p>Shown&nbsp;text</p>", ".htm")
    assert no_head_end.text == "T\n\nShown\xa0text"


def test_pdf_pages_and_passage_round_trip():
    extracted = extract_bytes(pdf_bytes(PARENTAL_PAGES), ".pdf")
    assert len(extracted.pages) == 2
    first, second = (extracted.text[s:e] for s, e in extracted.pages)
    assert "16 weeks" in first and "work from home" in second and "16 weeks" not in second
    assert extracted.page_of(extracted.text.index("work from home")) == 2
    passage = Passage("a.pdf", 3, 9, "abcdef", 0.5, page=2, chunk=1)
    assert Passage.from_dict(passage.to_dict()) == passage


@pytest.mark.slow
def test_the_index_files_are_numpy_and_sqlite(index, handbook):
    where = handbook / ".modeldeck-index"
    with sqlite3.connect(where / "index.sqlite") as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        files = conn.execute("SELECT path, size, sha256 FROM files ORDER BY path").fetchall()
    vectors = np.load(where / meta["vectors"])
    assert vectors.dtype == np.float32 and vectors.shape == (len(index), int(meta["dim"]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    import hashlib

    for path, size, sha in files:
        data = (handbook / path).read_bytes()
        assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    assert meta["model_name"] == "all-MiniLM-L6-v2" and meta["chunk_chars"] == str(CHUNK)


@pytest.mark.slow
def test_copying_a_folder_with_its_index_keeps_it_usable(index, handbook, tmp_path, embedder):
    copy = tmp_path / "copy"
    shutil.copytree(handbook, copy)
    with DocumentIndex.open(copy, model=embedder) as moved:
        assert moved.files == index.files
        assert moved.search("parental leave", top_k=1)[0].source == "policies/parental.pdf"


@pytest.mark.slow
def test_the_python_example_in_the_docs_runs(tmp_path, monkeypatch):
    import re

    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    page = (Path(__file__).resolve().parent.parent / "docs" / "documents.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert blocks, "docs/documents.md lost its Python example"
    exec(compile(blocks[0], "docs/documents.md", "exec"), {"__name__": "docs_example"})
