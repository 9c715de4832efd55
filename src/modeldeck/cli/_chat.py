"""``modeldeck chat``: talk to a causal language model in the terminal, with streamed replies.

Commands typed at the prompt: ``/reset`` forgets the conversation, ``/exit`` (or Ctrl-D) quits.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run_chat"]

_HELP = "type a message; /reset starts over, /exit or Ctrl-D quits"


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``chat`` command; its work lives in a function named by ``handler``."""
    chat = commands.add_parser("chat", help="chat with a language model in the terminal (streamed replies)")
    chat.add_argument(
        "--model", required=True, help="model name, name@version or path of a causal LM with a chat template"
    )
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-new-tokens", type=int, help="most tokens per reply")
    chat.add_argument("--temperature", type=float, help="0 is greedy (the default); higher samples more freely")
    chat.add_argument("--seed", type=int, help="seed for reproducible sampling")
    chat.add_argument("--chat-template", metavar="PATH", help="a Jinja chat template file, for models without one")
    chat.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="generation option (JSON value)"
    )
    chat.set_defaults(handler="modeldeck.cli._chat:run_chat")


def _load(model: str, options: dict[str, Any]) -> Any:
    from .. import load
    from .._api import load_info
    from ..config import Settings
    from ..errors import UnknownModelError
    from ..store import ModelStore

    try:
        return load("chat", model=model, **options)
    except UnknownModelError:
        # A plain causal-LM folder is inferred as a ``generate`` model; its chat template makes it a chat model too.
        settings = Settings.from_env()
        info = ModelStore(settings).resolve(model)
        if "generate" not in info.tasks:
            raise
        from dataclasses import replace

        return load_info(replace(info, tasks=(*info.tasks, "chat")), "chat", settings=settings, **options)


def run_chat(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError, ModelDeckError
    from ._predict import parse_option

    options: dict[str, Any] = dict(parse_option(text) for text in args.option)
    for key, value in (("system", args.system), ("max_new_tokens", args.max_new_tokens),
                       ("temperature", args.temperature), ("seed", args.seed)):  # fmt: skip
        if value is not None:
            options[key] = value
    if args.chat_template:
        path = Path(args.chat_template)
        if not path.is_file():
            raise InputError(f"chat template file {str(path)!r} does not exist", hint="check --chat-template")
        options["chat_template"] = path.read_text(encoding="utf-8")
    chat = _load(args.model, options)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {chat.info.name}: {_HELP}", file=sys.stderr)
    history: list[dict[str, str]] = []
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            if interactive:
                print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            history.clear()
            print("(conversation reset)", file=sys.stderr)
            continue
        if text.startswith("/"):
            print(f"unknown command {text!r}: {_HELP}", file=sys.stderr)
            continue
        history.append({"role": "user", "content": line})
        stream = None
        try:
            stream = chat.stream(history)
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:
            if stream is not None:
                stream.close()
            print("\n(interrupted)", file=sys.stderr)
            history.pop()
            continue
        except ModelDeckError as exc:
            history.pop()
            print(f"error: {exc}", file=sys.stderr)
            continue
        sys.stdout.write("\n")
        sys.stdout.flush()
        reply = stream.result
        history.append({"role": "assistant", "content": reply.content})
        if reply.finish_reason == "length":
            print("(reply cut at max_new_tokens)", file=sys.stderr)
