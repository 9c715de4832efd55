"""``modeldeck chat``: a terminal conversation driven through stdin, with replies streamed to stdout."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from modeldeck.cli._chat import _load
from modeldeck.cli.main import main

from ..tasks.gpt2_models import CHAT_TEMPLATE, save_tiny_gpt2

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy 2-core machine: intra-op threads only add hand-offs
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    # A plain causal-LM folder with a chat template, as hubs ship them (no modeldeck.json).
    return save_tiny_gpt2(tmp_path_factory.mktemp("chat"), chat_template=CHAT_TEMPLATE)


class Recorder(io.StringIO):
    """stdout that remembers each write, to tell a streamed reply from one printed at once."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def expected_replies(path, turns, **options):
    """The Python API's answers for the same conversation, turn by turn."""
    chat = _load(str(path), options)
    history, replies = [], []
    for turn in turns:
        if turn == "/reset":
            history.clear()
            continue
        history.append({"role": "user", "content": turn})
        reply = chat(history).content
        history.append({"role": "assistant", "content": reply})
        replies.append(reply)
    return replies


def test_chat_streams_replies_and_keeps_the_conversation(model_path, home, monkeypatch, capsys):
    turns = ["Hi", "Tell me more", "/reset", "Hi"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(turns) + "\n/exit\nnever read\n"))
    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    code = main(["chat", "--model", str(model_path), "--max-new-tokens", "6", "--system", "Be brief."])
    assert code == 0
    replies = expected_replies(model_path, turns, max_new_tokens=6, system="Be brief.")
    assert out.getvalue() == "".join(reply + "\n" for reply in replies)
    assert replies[0] == replies[2] and replies[1] != replies[0]  # /reset forgot the first exchange
    assert len(out.writes) > 2 * len(replies)  # pieces were written as they came, not one line per reply
    assert "(conversation reset)" in capsys.readouterr().err


def test_chat_ends_at_end_of_input_and_reports_bad_options(model_path, home, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--model", str(model_path), "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--model", str(model_path), "--max-new-tokens", "0"]) == 2
    assert "max_new_tokens" in capsys.readouterr().err


def test_chat_without_a_template_explains_how_to_give_one(tmp_path, home, monkeypatch, capsys):
    plain = save_tiny_gpt2(tmp_path / "plain")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--model", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "no chat template" in err and "--chat-template PATH" in err and "modeldeck.load(" not in err
    template = tmp_path / "template.jinja"
    template.write_text(CHAT_TEMPLATE)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--model", str(plain), "--chat-template", str(template), "--max-new-tokens", "2"]) == 0


@pytest.mark.slow
def test_modeldeck_chat_in_a_subprocess(model_path, tmp_path):
    env = {**os.environ, "MODELDECK_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "modeldeck", "chat", "--model", str(model_path), "--max-new-tokens", "4"],
        input="Hi\n/exit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and len(done.stdout) > 1
