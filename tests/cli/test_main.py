"""The ``modeldeck`` entry point itself: behaviour shared by every command."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
import modeldeck.cli._models as models
from modeldeck.cli.main import main

def write_forever(args):
    # Far more than a pipe buffer holds: the writes fail once `head` has left.
    for i in range(200_000):
        print(f"line {i}")
    return 0

models.run_models = write_forever
sys.exit(main(["models", "list"]))
"""


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # `modeldeck ... | head -1`: the reader leaves after one line; no traceback may follow.
    proc = subprocess.run(
        [sys.executable, "-c", f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {_SCRIPT!r}], "
         "stdout=subprocess.PIPE, stderr=sys.stderr); print(p.stdout.readline().decode(), end=''); "
         "p.stdout.close(); sys.exit(p.wait())"],
        capture_output=True,
        text=True,
        env={"MODELDECK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )  # fmt: skip
    assert proc.stdout == "line 0\n"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


def test_inputs_may_follow_the_options():
    from modeldeck.cli.main import _build_parser, _parse

    parser = _build_parser()
    args = _parse(parser, ["predict", "ner", "--model", "./m", "first", "-", "second", "--json"])
    assert args.inputs == ["first", "-", "second"] and args.model == "./m" and args.json
    args = _parse(parser, ["faces", "enroll", "team.db", "a/", "--quiet", "b/"])
    assert args.folder == ["a/", "b/"] and args.quiet
    with pytest.raises(SystemExit):
        _parse(parser, ["predict", "ner", "text", "--bogus"])


def test_a_mistyped_flag_gets_a_suggestion(capsys):
    from modeldeck.cli.main import _build_parser, _parse

    for argv, suggested in (
        (["models", "list", "--jsn"], "'--json'"),
        (["faces", "verify", "a.jpg", "b.jpg", "--larget"], "'--largest'"),
        (["predict", "ner", "text", "--modle", "x"], "'--model'"),
    ):
        with pytest.raises(SystemExit):
            _parse(_build_parser(), argv)
        assert f"did you mean {suggested}" in capsys.readouterr().err
