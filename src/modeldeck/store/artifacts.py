"""The content-addressed artifact store on disk: blobs, manifests, atomic installs and GC.

Layout under the store home::

    blobs/sha256/<hex>                        content-addressed files (read-only)
    models/<name>/<version>/manifest.json
    models/<name>/<version>/files/<relpath>   hardlinks to blobs (copies where links fail)
    partial/<sha256>.part                     resumable downloads
    tmp/<token>/                              staging; renamed into models/ when complete
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ManifestError, StoreError
from .pull import sha256_file

__all__ = ["ArtifactStore", "FileRecord", "Manifest", "Staging", "content_version"]

_MANIFEST = "manifest.json"
_OWNER = ".owner"


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What ``models/<name>/<version>/manifest.json`` records; ``root`` is the path to load, under files/."""

    name: str
    version: str
    tasks: tuple[str, ...]
    runtime: str
    source: Mapping[str, Any]
    license: str
    card: Mapping[str, Any]
    files: Mapping[str, FileRecord]
    created: str
    root: str = "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tasks": list(self.tasks),
            "runtime": self.runtime,
            "source": dict(self.source),
            "license": self.license,
            "card": dict(self.card),
            "files": {rel: {"sha256": r.sha256, "size": r.size} for rel, r in sorted(self.files.items())},
            "created": self.created,
            "root": self.root,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: Path) -> Manifest:
        try:
            files = {rel: FileRecord(str(r["sha256"]), int(r["size"])) for rel, r in data["files"].items()}
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                tasks=tuple(data["tasks"]),
                runtime=str(data["runtime"]),
                source=MappingProxyType(dict(data["source"])),
                license=str(data.get("license", "")),
                card=MappingProxyType(dict(data.get("card", {}))),
                files=MappingProxyType(files),
                created=str(data["created"]),
                root=str(data.get("root", ".")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(
                f"manifest {str(where)!r} is malformed: {type(exc).__name__}: {exc}",
                hint="remove that version with `modeldeck models remove NAME --version VERSION` and pull it again",
            ) from None


def content_version(files: Mapping[str, FileRecord]) -> str:
    """12 hex digits over the sorted (relpath, sha256) list: identical content, identical version."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel].sha256}\n".encode())
    return digest.hexdigest()[:12]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Staging:
    dir: Path
    files: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", self.dir / "files")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ArtifactStore:
    """Owns the directories under ``home``; knows nothing of catalogs or sources."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.blobs = home / "blobs" / "sha256"
        self.models = home / "models"
        self.partial = home / "partial"
        self.tmp = home / "tmp"

    def model_dir(self, name: str, version: str) -> Path:
        return self.models / name / version

    # -- staging and install -------------------------------------------------------------

    def clean_stale(self) -> None:
        """Remove staging directories left by pulls whose process is gone (killed, crashed)."""
        if not self.tmp.is_dir():
            return
        for entry in self.tmp.iterdir():
            try:
                pid = int((entry / _OWNER).read_text())
            except (OSError, ValueError):
                pid = 0
            if pid != os.getpid() and not (pid and _pid_alive(pid)):
                shutil.rmtree(entry, ignore_errors=True)

    @contextmanager
    def staging(self) -> Iterator[Staging]:
        """A fresh ``tmp/<token>/`` for one install, removed afterwards unless it was published."""
        for d in (self.blobs, self.models, self.partial, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.clean_stale()
        stage = Staging(self.tmp / secrets.token_hex(8))
        stage.files.mkdir(parents=True)
        (stage.dir / _OWNER).write_text(str(os.getpid()))
        try:
            yield stage
        finally:
            shutil.rmtree(stage.dir, ignore_errors=True)

    def ingest(self, files_dir: Path) -> dict[str, FileRecord]:
        """Hash every file under ``files_dir`` into blobs and leave each file as a link to its blob."""
        records: dict[str, FileRecord] = {}
        for path in sorted(files_dir.rglob("*")):
            if path.is_symlink():
                raise StoreError(
                    f"{path.relative_to(files_dir)} is a symbolic link", hint="models may hold only plain files"
                )
            if not path.is_file():
                continue
            digest = sha256_file(path)
            records[path.relative_to(files_dir).as_posix()] = FileRecord(digest, path.stat().st_size)
            self._link_blob(path, digest)
        return records

    def _link_blob(self, staged: Path, digest: str) -> None:
        blob = self.blobs / digest
        if not blob.exists():
            try:
                os.link(staged, blob)
            except FileExistsError:
                pass  # another install stored the same content first
            except OSError:
                tmp = self.blobs / f".{digest}.{secrets.token_hex(4)}"
                shutil.copyfile(staged, tmp)
                os.replace(tmp, blob)
            else:
                blob.chmod(0o444)
                return
            blob.chmod(0o444)
        # Same content already stored: point the staged path at the existing blob.
        link = staged.with_name(f".{staged.name}.{secrets.token_hex(4)}")
        try:
            os.link(blob, link)
        except OSError:
            return  # keep the staged copy; it holds the same bytes
        os.replace(link, staged)

    def publish(self, stage: Staging, manifest: Manifest) -> Manifest:
        """Write the manifest and move the staged model into place in one rename."""
        (stage.dir / _MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2), encoding="utf-8")
        (stage.dir / _OWNER).unlink()
        target = self.model_dir(manifest.name, manifest.version)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._commit(stage.dir, target)
        except OSError as exc:
            existing = self.read(manifest.name, manifest.version)
            if existing is not None:
                return existing  # an identical version was installed meanwhile
            raise StoreError(f"cannot install {manifest.name}@{manifest.version} into {target}: {exc}") from exc
        return manifest

    def _commit(self, staged_dir: Path, target: Path) -> None:
        os.rename(staged_dir, target)

    # -- reading -------------------------------------------------------------------------

    def read(self, name: str, version: str) -> Manifest | None:
        path = self.model_dir(name, version) / _MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ManifestError(
                f"cannot read manifest {str(path)!r}: {exc}",
                hint=f"run `modeldeck models remove {name} --version {version}` and pull or import it again",
            ) from None
        return Manifest.from_dict(data, path)

    def versions(self, name: str) -> list[Manifest]:
        """Installed versions of ``name``, newest first."""
        base = self.models / name
        if not base.is_dir():
            return []
        found = [m for d in base.iterdir() if d.is_dir() and (m := self.read(name, d.name)) is not None]
        return sorted(found, key=lambda m: m.created, reverse=True)

    def names(self) -> list[str]:
        if not self.models.is_dir():
            return []
        return sorted(d.name for d in self.models.iterdir() if d.is_dir() and self.versions(d.name))

    def load_path(self, manifest: Manifest) -> Path:
        files = self.model_dir(manifest.name, manifest.version) / "files"
        return files if manifest.root == "." else files / manifest.root

    # -- removal and integrity -----------------------------------------------------------

    def remove(self, name: str, version: str) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        doomed = self.tmp / f"rm-{secrets.token_hex(8)}"
        os.rename(self.model_dir(name, version), doomed)  # vanishes from listings at once
        shutil.rmtree(doomed, ignore_errors=True)
        base = self.models / name
        if base.is_dir() and not any(base.iterdir()):
            base.rmdir()

    def gc(self) -> list[str]:
        """Delete blobs no manifest references and no staged file still links to."""
        if not self.blobs.is_dir():
            return []
        referenced = {r.sha256 for name in self.names() for m in self.versions(name) for r in m.files.values()}
        removed = []
        for blob in self.blobs.iterdir():
            if blob.name not in referenced and blob.stat().st_nlink <= 1:
                blob.unlink()
                removed.append(blob.name)
        return removed

    def drop_corrupt_blobs(self, manifest: Manifest) -> list[str]:
        """Delete the blobs of ``manifest`` whose bytes no longer match their name (edited through a link)."""
        dropped = []
        for record in manifest.files.values():
            blob = self.blobs / record.sha256
            if blob.is_file() and sha256_file(blob) != record.sha256:
                blob.unlink()
                dropped.append(record.sha256)
        return dropped

    def verify(self, manifest: Manifest) -> tuple[int, tuple[str, ...]]:
        files = self.model_dir(manifest.name, manifest.version) / "files"
        problems = []
        for rel, record in sorted(manifest.files.items()):
            path = files / rel
            blob = self.blobs / record.sha256
            if not path.is_file():
                problems.append(f"missing: {rel}")
                continue
            actual = sha256_file(path)
            if actual != record.sha256:
                problems.append(f"corrupted: {rel} (manifest sha256={record.sha256}, actual {actual})")
            if not blob.is_file():
                problems.append(f"missing blob: {record.sha256} (for {rel})")
            elif not os.path.samefile(blob, path) and sha256_file(blob) != record.sha256:
                problems.append(f"corrupted blob: {record.sha256} (for {rel})")
        return len(manifest.files), tuple(problems)
