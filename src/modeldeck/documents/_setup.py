"""Opening a document index: the folder and its files, the embedding model, the reader, the model check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import DocumentIndexMismatchError, NotFoundError, OptionError
from ._extract import SUFFIXES
from ._store import IndexStore

if TYPE_CHECKING:
    from .._api import Loader
    from ..config import Settings
    from ..tasks.base import Task

__all__ = [
    "INDEX_DIRNAME",
    "check_model",
    "folder_path",
    "index_embedder",
    "index_meta",
    "index_path",
    "load_embedder",
    "load_reader",
    "scan",
]

INDEX_DIRNAME = ".modeldeck-index"


def _model_key(info: Any) -> str:
    return f"{info.name}@{info.version}"


def folder_path(folder: str | os.PathLike[str]) -> Path:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"no folder at {str(root)!r}", hint="pass the folder that holds the documents")
    return root


def index_path(root: Path, index_dir: str | os.PathLike[str] | None) -> Path:
    return Path(index_dir).expanduser() if index_dir is not None else root / INDEX_DIRNAME


def scan(root: Path, index_dir: Path) -> dict[str, Path]:
    """Supported files under ``root`` by relative POSIX path, sorted; hidden files and the index are skipped."""
    skip = index_dir.resolve()
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip)
        for name in sorted(filenames):
            path = here / name
            if not name.startswith(".") and path.suffix.lower() in SUFFIXES and path.is_file():
                found[path.relative_to(root).as_posix()] = path
    return dict(sorted(found.items()))


def load_embedder(
    model: str | Task[Any, Any, Any, Any], *, device: str, settings: Settings | None, loader: Loader
) -> Task[Any, Any, Any, Any]:
    if not isinstance(model, str):
        if getattr(model, "name", None) != "embed":  # a loaded task, or any object that embeds like one
            raise OptionError(f"model must be an embed task or a model name, got {model!r}")
        return model
    if model == "embed":
        return loader("embed", device=device, settings=settings)
    return loader("embed", model=model, device=device, settings=settings)


def index_embedder(
    store: IndexStore,
    model: str | Task[Any, Any, Any, Any] | None,
    *,
    device: str,
    settings: Settings | None,
    loader: Loader,
) -> Task[Any, Any, Any, Any]:
    """``model``, or the model the index records, checked against the index."""
    if model is not None:
        embedder = load_embedder(model, device=device, settings=settings, loader=loader)
    else:
        try:
            embedder = load_embedder(store.meta["model_ref"], device=device, settings=settings, loader=loader)
        except NotFoundError:
            embedder = load_embedder(store.meta["model_path"], device=device, settings=settings, loader=loader)
    check_model(store, embedder, store.directory)
    return embedder


def load_reader(
    qa_model: str | os.PathLike[str] | None, *, device: str, settings: Settings | None, loader: Loader
) -> Any:
    if qa_model is None:
        return None
    return loader("qa", model=os.fspath(qa_model), device=device, settings=settings)


def index_meta(embedder: Task[Any, Any, Any, Any], model: Any, size: int, overlap: int) -> dict[str, str]:
    info = embedder.info
    return {
        "model_name": info.name,
        "model_version": info.version,
        "model_ref": model if isinstance(model, str) else info.name if model is not None else "embed",
        "model_path": str(info.path),
        "dim": str(int(embedder.dim)),
        "chunk_chars": str(size),
        "overlap_chars": str(overlap),
        "created_by": f"modeldeck {__version__}",
    }


def check_model(store: IndexStore, embedder: Task[Any, Any, Any, Any], directory: Path) -> None:
    meta = store.meta
    recorded = f"{meta['model_name']}@{meta['model_version']}"
    if recorded != _model_key(embedder.info) or int(meta["dim"]) != int(embedder.dim):
        raise DocumentIndexMismatchError(
            f"the index in {str(directory)!r} was built with embedding model {recorded} ({meta['dim']} dims), "
            f"not {_model_key(embedder.info)} ({embedder.dim} dims); vectors of two models cannot be mixed",
            hint="rebuild the index with the new model (rebuild=True, or `modeldeck ask ... --rebuild`), "
            f"or use model={meta['model_ref']!r}",
        )
