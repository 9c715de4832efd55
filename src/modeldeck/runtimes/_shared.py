"""Artifacts loaded once for every task of one worker process (ner and parse over one spaCy pipeline).

The server gives the tasks that use one artifact one worker process, which loads them inside
``shared_artifacts()``; an adapter that can serve several tasks from one loaded object asks
``load_shared`` for it, and gets the object already loaded for an earlier task of the scope.
Outside a scope (the Python API, jobs, thread isolation) ``load_shared`` just loads. A
``ContextVar`` rather than an argument, like the batch deadline: it reaches the adapters without
changing every backend's ``load`` signature, and only code inside the scope sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["load_shared", "shared_artifacts", "sharing"]

T = TypeVar("T")

_LOADED: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar("modeldeck_shared_artifacts", default=None)


@contextlib.contextmanager
def shared_artifacts() -> Iterator[None]:
    """Within the body, ``load_shared`` loads each ``(kind, key)`` once."""
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def sharing() -> bool:
    """Whether a ``shared_artifacts`` scope is open (an adapter then loads the whole artifact once)."""
    return _LOADED.get() is not None


def load_shared(kind: str, key: str, load: Callable[[], T]) -> T:
    """``load()``, or, inside a scope, the object an earlier call with the same ``kind`` and ``key`` loaded."""
    loaded = _LOADED.get()
    if loaded is None:
        return load()
    if (kind, key) not in loaded:
        loaded[(kind, key)] = load()
    return loaded[(kind, key)]  # type: ignore[no-any-return]
