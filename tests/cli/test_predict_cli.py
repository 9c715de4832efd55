"""`modeldeck predict` on the real default models, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modeldeck.cli._predict import parse_option
from modeldeck.errors import OptionError

pytestmark = pytest.mark.timeout(120)


def run_cli(*args: str, stdin: str | None = None, home) -> subprocess.CompletedProcess[str]:
    env = {"MODELDECK_HOME": str(home), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # a checkout's src/ rather than the installed package
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, "-m", "modeldeck", *args], input=stdin, capture_output=True, text=True, env=env
    )


def test_predict_ner_json_matches_the_python_api(tmp_path):
    import modeldeck

    out = run_cli("predict", "ner", "Tim Cook visited Paris.", "Ada Lovelace lived in London.", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    outputs = json.loads(out.stdout)
    expected = [
        r.to_dict() for r in modeldeck.load("ner")(["Tim Cook visited Paris.", "Ada Lovelace lived in London."])
    ]
    assert outputs == expected
    assert {"text": "Tim Cook", "label": "PERSON", "start": 0, "end": 8, "score": None} in outputs[0]["entities"]


def test_predict_table_bad_item_and_exit_code(tmp_path):
    out = run_cli("predict", "ner", "Tim Cook visited Paris.", " ", home=tmp_path)
    assert out.returncode == 1  # one input failed; the other was still answered
    assert "Tim Cook" in out.stdout and "PERSON" in out.stdout
    assert "MD101" in out.stdout


def test_predict_reads_stdin_and_options(tmp_path):
    out = run_cli(
        "predict", "embed", "-", "-o", "normalize=true", "--json", stdin="first line\n\nsecond line\n", home=tmp_path
    )
    assert out.returncode == 0, out.stderr
    outputs = json.loads(out.stdout)
    assert len(outputs) == 2  # the blank line is skipped
    for output in outputs:
        assert output["dim"] == 384
        assert abs(sum(v * v for v in output["vector"]) - 1.0) < 1e-4


def test_predict_errors_exit_2_with_the_code(tmp_path):
    unknown = run_cli("predict", "ner", "x", "-o", "colour=red", home=tmp_path)
    assert unknown.returncode == 2 and "MD110" in unknown.stderr and "colour" in unknown.stderr
    nothing = run_cli("predict", "ner", home=tmp_path)
    assert nothing.returncode == 2 and "no inputs given" in nothing.stderr
    missing = run_cli("predict", "ner", "--file", str(tmp_path / "nope.txt"), home=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_parse_option_reads_json_values_or_strings():
    assert parse_option("normalize=true") == ("normalize", True)
    assert parse_option('labels=["PERSON"]') == ("labels", ["PERSON"])
    assert parse_option("name=plain text") == ("name", "plain text")
    with pytest.raises(OptionError, match="KEY=VALUE"):
        parse_option("novalue")


def test_no_third_party_progress_bar_in_the_output(tmp_path):
    pytest.importorskip("transformers")
    from tests.tasks.language_models import save_tiny_bert_classifier

    model = save_tiny_bert_classifier(tmp_path / "classifier")
    out = run_cli("predict", "classify", "good movie", "--model", str(model), "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Loading weights" not in out.stderr and "%|" not in out.stderr  # transformers' tqdm bar
    assert json.loads(out.stdout)[0]["labels"]
