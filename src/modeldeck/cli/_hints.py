"""Hints phrased for the command line: an error whose fix is one option names this command's flag for it."""

from __future__ import annotations

import argparse
import json

from ..errors import ModelDeckError

__all__ = ["cli_error_dict", "cli_error_text"]


def _flag(option: str, value: object, args: argparse.Namespace | None) -> str | None:
    if args is None:
        return None
    if hasattr(args, option):  # the command has a flag of its own for it (--largest, --chat-template PATH)
        dashed = "--" + option.replace("_", "-")
        if value is True:
            return dashed
        return f"{dashed} PATH" if value is None else f"{dashed} {json.dumps(value)}"
    if hasattr(args, "option") and value is not None:  # commands that take task options as -o KEY=VALUE
        return f"-o {option}={json.dumps(value)}"
    return None


def cli_hint(exc: ModelDeckError, args: argparse.Namespace | None) -> str | None:
    fix, hint = exc.fix, exc.hint
    if fix is None or not hint or fix.python not in hint:
        return hint
    flag = _flag(fix.option, fix.value, args)
    return hint if flag is None else hint.replace(fix.python, flag)


def cli_error_text(exc: ModelDeckError, args: argparse.Namespace | None) -> str:
    """``str(exc)`` with the hint as the command line spells it."""
    hint = cli_hint(exc, args)
    return f"[{exc.code}] {exc.message}" + (f" ({hint})" if hint else "")


def cli_error_dict(exc: ModelDeckError, args: argparse.Namespace | None) -> dict[str, str]:
    """``exc.to_dict()`` with the hint as the command line spells it."""
    hint = cli_hint(exc, args)
    return {"code": exc.code, "message": exc.message if not hint else f"{exc.message} ({hint})"}
