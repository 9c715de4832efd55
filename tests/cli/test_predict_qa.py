"""`modeldeck predict qa --question ... --context-file ...` on a tiny QA model, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..tasks.language_models import save_tiny_bert_qa

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CONTEXT = "Tim Cook founded the company in Paris in 1999.\n\nJosé  went to   London 😀 and Berlin.\n"


@pytest.fixture(scope="module")
def qa_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return save_tiny_bert_qa(tmp_path_factory.mktemp("tiny-qa"))


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"MODELDECK_HOME": str(home), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "modeldeck", *args], capture_output=True, text=True, env=env)


def test_context_file_json_matches_the_python_api(qa_path: Path, tmp_path: Path) -> None:
    import modeldeck
    from modeldeck.config import Settings

    doc = tmp_path / "doc.txt"
    doc.write_text(CONTEXT, encoding="utf-8")
    out = run_cli(
        "predict", "qa", "--question", "Who founded it?", "--context-file", str(doc), "--model", str(qa_path),
        "-o", "top_k=3", "--json", home=tmp_path / "home",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    outputs = json.loads(out.stdout)
    qa = modeldeck.load("qa", model=str(qa_path), settings=Settings.from_env({}, home=tmp_path / "home"))
    assert outputs == [qa(question="Who founded it?", context=CONTEXT, top_k=3).to_dict()]
    for answer in outputs[0]["answers"]:
        assert answer["text"] == CONTEXT[answer["start"] : answer["end"]]


def test_table_output_and_inline_context(qa_path: Path, tmp_path: Path) -> None:
    out = run_cli(
        "predict", "qa", "--question", "Where?", "--context", "Tim Cook went to Paris.", "--model", str(qa_path),
        "-o", "handle_impossible_answer=true", home=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "answer" in out.stdout and "score" in out.stdout


def test_missing_context_and_missing_file_are_input_errors(qa_path: Path, tmp_path: Path) -> None:
    nothing = run_cli("predict", "qa", "--question", "Who?", "--model", str(qa_path), home=tmp_path)
    assert nothing.returncode == 2 and "--context" in nothing.stderr
    missing = run_cli(
        "predict", "qa", "--question", "Who?", "--context-file", str(tmp_path / "nope.txt"), "--model", str(qa_path),
        home=tmp_path,
    )  # fmt: skip
    assert missing.returncode == 2 and "nope.txt" in missing.stderr
    empty = run_cli("predict", "qa", "--question", " ", "--context", "x", "--model", str(qa_path), home=tmp_path)
    assert empty.returncode == 1 and "MD101" in empty.stdout
