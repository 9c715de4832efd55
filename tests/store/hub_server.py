"""A local stand-in for the Hugging Face Hub on 127.0.0.1: the revision, tree and file routes that
``huggingface_hub`` (``model_info``, ``snapshot_download``, ``hf_hub_download``) calls."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..support import loopback_server


@dataclass
class Hub:
    url: str = ""
    #: repo id -> {branch or tag: commit}
    refs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: commit -> {path: bytes}
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, repo_id: str, folder: Path, *, branch: str = "main") -> str:
        """Commit every file of ``folder`` to ``branch`` of ``repo_id``; returns the new commit sha."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        digest = hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())).encode())
        digest.update(f"{repo_id}@{branch}#{len(self.commits)}".encode())
        commit = digest.hexdigest()
        self.commits[commit] = files
        self.refs.setdefault(repo_id, {})[branch] = commit
        return commit

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p in self.requests if method is None or m == method]


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _commit(self, hub: Hub, repo: str, revision: str) -> str | None:
        if repo not in hub.refs:
            self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return None
        commit = hub.refs[repo].get(revision) or (revision if revision in hub.commits else None)
        if commit is None:
            self._json(404, {"error": f"Invalid rev id: {revision}"}, {"X-Error-Code": "RevisionNotFound"})
        return commit

    def _route(self) -> None:
        hub: Hub = self.server.hub
        path = unquote(urlsplit(self.path).path)
        with hub.lock:
            hub.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        # /api/models/{owner}/{name}[/revision/{revision}]: no revision means the default branch
        if parts[:2] == ["api", "models"] and (len(parts) == 4 or (len(parts) >= 6 and parts[4] == "revision")):
            repo = "/".join(parts[2:4])
            commit = self._commit(hub, repo, "/".join(parts[5:]) or "main")
            if commit is not None:
                siblings = [{"rfilename": name} for name in sorted(hub.commits[commit])]
                self._json(200, {"id": repo, "modelId": repo, "sha": commit, "private": False, "siblings": siblings})
            return
        # /api/models/{owner}/{name}/tree/{revision}[/{path}]
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            repo = "/".join(parts[2:4])
            commit = self._commit(hub, repo, parts[5])
            if commit is not None:
                entries = [
                    {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": name}
                    for name, data in sorted(hub.commits[commit].items())
                ]
                self._json(200, entries)
            return
        # /{owner}/{name}/resolve/{revision}/{file path}
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = "/".join(parts[:2])
            commit = self._commit(hub, repo, parts[3])
            if commit is None:
                return
            name = "/".join(parts[4:])
            data = hub.commits[commit].get(name)
            if data is None:
                self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", commit)
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            return
        self._json(404, {"error": f"no route {path}"})

    do_GET = _route
    do_HEAD = _route


@contextmanager
def serve_hub() -> Iterator[Hub]:
    hub = Hub()
    with loopback_server(_Handler, hub=hub) as url:
        hub.url = url
        yield hub
