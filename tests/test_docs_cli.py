"""Every ``modeldeck ...`` command line in the README and docs/ parses with the real CLI parser, and
the ones the default deck can answer run and succeed, so the docs and the CLI cannot drift apart."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from modeldeck.cli.main import _build_parser, _parse, main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```[\w-]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`(modeldeck [^`]+)`")


def _block_commands(block: str) -> list[str]:
    """Command lines in a code block: ``modeldeck ...`` at the start, after ``$ `` or after a pipe."""
    lines, joined = block.splitlines(), []
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):  # a continued line
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        joined.append(line)
        i += 1
    found = []
    for line in joined:
        match = re.match(r"^\s*(?:\$\s+)?(?:.*\|\s*)?(modeldeck\s.*)$", line)
        if match and not line.lstrip().startswith(("error:", "#")):
            found.append(match.group(1))
    return found


def documented_commands() -> list[tuple[str, str, bool]]:
    """``(where, command line, whole)`` for every command in a code block (whole lines) and every
    inline one in prose (which may name a command without its required arguments)."""
    found: list[tuple[str, str, bool]] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in _FENCE.findall(text):
            found += [(page.name, cmd, True) for cmd in _block_commands(block)]
        prose = _FENCE.sub("", text)
        for cmd in _INLINE.findall(prose):
            # `modeldeck bench`, `modeldeck eval detect|segment`: a command named in prose, not a line
            if len(shlex.split(cmd)) >= 3 and "|" not in cmd:
                found.append((page.name, cmd, False))
    return found


COMMANDS = documented_commands()


_SHELL = re.compile(r"^(\d?>>?|<|\||&&|;|\d?>&\d)")


def _argv(command: str) -> list[str]:
    """The command's own arguments: shell redirections and what follows a pipe are the shell's."""
    argv = []
    for token in shlex.split(command, comments=True)[1:]:
        if _SHELL.match(token):
            break
        argv.append(token)
    return argv


def test_the_docs_hold_the_commands_this_test_is_about() -> None:
    pages = {where for where, _, _ in COMMANDS}
    assert {"README.md", "faces.md", "vision.md", "language.md", "jobs.md"} <= pages
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize(("where", "command", "whole"), COMMANDS, ids=[f"{w}: {c[:60]}" for w, c, _ in COMMANDS])
def test_every_documented_command_parses(
    where: str, command: str, whole: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        args = _parse(_build_parser(), _argv(command))
    except SystemExit as exc:
        err = capsys.readouterr().err
        if not whole and "the following arguments are required" in err:
            return  # prose naming a command and some of its flags; the flags it names exist
        pytest.fail(f"{where}: `{command}` is rejected by the CLI (exit {exc.code}): {err}")
    assert args.command is not None


# The documented commands the default deck answers offline and cheaply: run them for real.
_RUNNABLE = re.compile(r"^modeldeck (predict (ner|parse|embed) \"|models (list|show|verify) )")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_documented_commands_the_default_deck_answers_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELDECK_OFFLINE", raising=False)
    runnable = sorted({cmd for _, cmd, whole in COMMANDS if whole and _RUNNABLE.match(cmd) and "NAME" not in cmd})
    assert len(runnable) >= 4, runnable
    for command in runnable:
        code = main(_argv(command))
        out = capsys.readouterr()
        assert code == 0, f"`{command}` exited {code}: {out.err}"
        assert out.out.strip(), command
