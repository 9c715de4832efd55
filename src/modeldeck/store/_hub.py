"""Hugging Face repo ids as model references: ``owner/name[@revision]``, resolved to a commit once.

A pull asks the hub (``settings.hf_endpoint``) which commit the revision names, fetches that
commit, and records it in ``$MODELDECK_HOME/hub-lock.json``; later loads of the same reference use
the recorded commit without asking again, so a model does not change under a running deployment
when its branch moves. Only ``pull`` (or a first load) talks to the hub, with one quick attempt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import DependencyError, DownloadError, ModelDeckError, UnknownModelError

__all__ = ["HubLock", "HubRef", "parse_hub_ref", "resolve_commit"]

_REPO = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
_REVISION = re.compile(r"[\w][\w./-]{0,255}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
#: Seconds for the one attempt at the hub's revision API: a machine without a network fails fast.
HUB_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HubRef:
    """``owner/name`` and the revision asked for (``None``: the repo's default branch)."""

    repo_id: str
    revision: str | None

    @property
    def store_name(self) -> str:
        """The store's directory name for the repo: ``owner--name``, as the hub's own cache spells it."""
        return self.repo_id.replace("/", "--")

    @property
    def pinned(self) -> str | None:
        """The commit, when the revision asked for already is one."""
        return self.revision if self.revision is not None and _SHA1.fullmatch(self.revision) else None

    @property
    def lock_key(self) -> str:
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"


def parse_hub_ref(ref: str) -> HubRef | None:
    """``HubRef`` for ``owner/name`` or ``owner/name@revision``; ``None`` for anything else."""
    repo, at, revision = ref.partition("@")
    if not _REPO.fullmatch(repo) or ".." in repo or (at and not _REVISION.fullmatch(revision)):
        return None
    return HubRef(repo, revision or None)


class HubLock:
    """``hub-lock.json``: the commit each hub reference was pinned to when it was pulled."""

    def __init__(self, home: Path) -> None:
        self.path = home / "hub-lock.json"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, ref: HubRef) -> str | None:
        entry = self._read().get(ref.lock_key)
        commit = entry.get("commit") if isinstance(entry, dict) else None
        return commit if isinstance(commit, str) and _SHA1.fullmatch(commit) else None

    def set(self, ref: HubRef, commit: str, when: str) -> None:
        data = self._read()
        data[ref.lock_key] = {"repo_id": ref.repo_id, "revision": ref.revision or "", "commit": commit, "pulled": when}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def resolve_commit(ref: HubRef, *, endpoint: str | None, timeout: float = HUB_TIMEOUT_S, probe: bool = False) -> str:
    """The commit ``ref.revision`` names on the hub at ``endpoint``: one request, no retries.

    A revision that already is a commit needs no request, unless ``probe`` asks to check that the
    hub answers at all before a download (whose client retries a dead network for half a minute).
    """
    if ref.pinned is not None and not probe:
        return ref.pinned
    endpoint = endpoint or "https://huggingface.co"
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        raise DependencyError(
            "huggingface-hub", extra="torch", purpose="pulling models from the Hugging Face Hub"
        ) from None
    shown = f"{ref.repo_id}@{ref.revision or 'main'}"
    try:
        info = HfApi(endpoint=endpoint).model_info(ref.repo_id, revision=ref.revision, timeout=timeout)
    except GatedRepoError:
        raise DownloadError(
            f"{ref.repo_id} on {endpoint} is gated: it needs an accepted licence and a token",
            hint="accept its terms on the hub, then log in with `hf auth login`",
        ) from None
    except RevisionNotFoundError:
        raise UnknownModelError(
            f"{ref.repo_id} on {endpoint} has no revision {ref.revision!r}", hint="name a branch, tag or commit it has"
        ) from None
    except RepositoryNotFoundError:
        raise UnknownModelError(
            f"no model repository {ref.repo_id!r} on {endpoint} (or it is private)",
            hint="check the repo id (owner/name); a private repo needs `hf auth login`",
        ) from None
    except HfHubHTTPError as exc:  # the hub answered, with an error
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadError(
            f"{endpoint} answered HTTP {status} when asked for {shown}", hint="try again later, or check HF_ENDPOINT"
        ) from None
    except ModelDeckError:
        raise
    except Exception as exc:
        # A connection refused, a DNS failure or a timeout: one attempt, then a clear answer.
        raise DownloadError(
            f"could not reach {endpoint} to resolve {shown} ({type(exc).__name__}: {exc})",
            hint="check the network (or HF_ENDPOINT); where there is none, set MODELDECK_OFFLINE=1 so that "
            "loads use only installed models and fail at once",
        ) from None
    commit = getattr(info, "sha", None)
    if not isinstance(commit, str) or not _SHA1.fullmatch(commit):
        raise DownloadError(f"{endpoint} answered no commit for {shown} (got {commit!r})")
    return commit
