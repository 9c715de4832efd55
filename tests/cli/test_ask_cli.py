"""`modeldeck ask` over a small handbook with the real MiniLM: build, incremental update, answers, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modeldeck.cli.main import main

from ..test_documents import EXPENSES_TXT, write_handbook

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def ask_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["ask", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_ask_builds_the_index_then_updates_only_what_changed(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    folder = write_handbook(tmp_path / "handbook")
    first = ask_json(capsys, str(folder), "How many vacation days do full-time employees get?", "--top-k", "2")
    assert first["passages"][0]["source"] == "vacation.md" and "25 paid vacation days" in first["passages"][0]["text"]
    assert len(first["passages"]) == 2 and first["answer"] is None
    report = first["index"]["report"]
    assert len(report["added"]) == 5 and report["chunks_embedded"] == first["index"]["chunks"] > 0
    assert first["index"]["dir"] == str(folder / ".modeldeck-index") and first["index"]["model"].startswith(
        "all-MiniLM"
    )

    again = ask_json(capsys, str(folder), "When must expense reports be submitted?")
    assert again["index"]["report"]["chunks_embedded"] == 0 and len(again["index"]["report"]["unchanged"]) == 5
    assert again["passages"][0]["source"] == "expenses.txt" and len(again["passages"]) == 5

    (folder / "expenses.txt").write_text(EXPENSES_TXT + "\nTaxi rides home after 10 pm are reimbursed.\n")
    changed = ask_json(capsys, str(folder), "Is a taxi home after working late reimbursed?", "--top-k", "1")
    assert changed["index"]["report"]["changed"] == ["expenses.txt"]
    assert changed["index"]["report"]["chunks_embedded"] == 1
    assert "Taxi rides home" in changed["passages"][0]["text"]

    rebuilt = ask_json(capsys, str(folder), "parental leave", "--rebuild", "--top-k", "1")
    assert rebuilt["index"]["report"]["chunks_embedded"] == rebuilt["index"]["chunks"]
    assert rebuilt["passages"][0]["source"] == "policies/parental.pdf" and rebuilt["passages"][0]["page"] == 1


@pytest.mark.slow
def test_ask_with_an_index_dir_and_a_qa_reader(tmp_path, capsys):
    pytest.importorskip("transformers")
    try:
        from modeldeck.tasks.qa import QATask  # noqa: F401
    except ImportError:
        pytest.skip("the qa task is not available")
    from ..tasks.language_models import save_tiny_bert_qa

    folder = write_handbook(tmp_path / "handbook")
    qa = save_tiny_bert_qa(tmp_path / "qa", max_positions=128)
    where = tmp_path / "idx"
    out = ask_json(capsys, str(folder), "What should I do if I lose my badge?", "--index-dir", str(where),
                   "--qa-model", str(qa), "--top-k", "2")  # fmt: skip
    assert (where / "index.sqlite").is_file() and not (folder / ".modeldeck-index").exists()
    answer = out["answer"]
    assert answer is not None and answer["passage"] in out["passages"]
    inner = answer["passage"]["text"][
        answer["start"] - answer["passage"]["start"] : answer["end"] - answer["passage"]["start"]
    ]
    assert inner == answer["text"]


@pytest.mark.slow
def test_ask_prints_ranked_passages_with_sources_as_a_user_runs_it(tmp_path, home):
    pytest.importorskip("sentence_transformers")
    folder = write_handbook(tmp_path / "handbook")
    env = {"MODELDECK_HOME": str(home), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "modeldeck", "ask", str(folder), "How long is paid parental leave?", "--top-k", "2"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("1. policies/parental.pdf, page 1  chars 0-") and "score 0." in lines[0]
    assert "16 weeks of fully paid parental leave" in out.stdout and any(line.startswith("2. ") for line in lines)
    assert "5 added, 0 changed, 0 removed" in out.stderr


def test_ask_refuses_bad_input_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    folder = write_handbook(tmp_path / "handbook")
    cases = [
        ([str(tmp_path / "empty"), "anything?"], "no documents"),
        ([str(tmp_path / "missing"), "anything?"], "no folder"),
        ([str(folder), "   "], "MD101"),
        ([str(folder), "anything?", "--top-k", "0"], "--top-k"),
    ]
    for args, message in cases:
        assert main(["ask", *args]) == 2, args
        assert message in capsys.readouterr().err
    assert not (folder / ".modeldeck-index").exists()  # nothing was indexed for a bad question


def test_ask_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ask", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--top-k", "--index-dir", "--qa-model", "--rebuild", "--json", "--model"):
        assert option in text
