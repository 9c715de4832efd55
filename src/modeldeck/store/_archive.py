"""Safe extraction of downloaded archives: every member must land inside the model directory."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import StoreError

__all__ = ["extract_archive"]


def _check_member(member: str, dest: Path, archive_name: str) -> None:
    pure = PurePosixPath(member.replace("\\", "/"))
    target = (dest / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not target.is_relative_to(dest.resolve()):
        raise StoreError(
            f"archive {archive_name!r} has member {member!r}, which escapes the model directory",
            hint="the archive is unsafe to unpack; fix it at its source or remove 'unpack' from the catalog entry",
        )


def extract_archive(archive: Path, dest: Path, *, archive_name: str) -> None:
    """Extract ``archive`` (named ``archive_name``, which decides the format) into ``dest``."""
    lower = archive_name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_member(name, dest, archive_name)
                zf.extractall(dest)
            return
        mode = "r:gz" if lower.endswith((".tar.gz", ".tgz")) else "r:"
        with tarfile.open(archive, mode) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(m.name, dest, archive_name)
                if not (m.isfile() or m.isdir()):
                    # Links and device files could point outside dest or overwrite what they alias.
                    raise StoreError(
                        f"archive {archive_name!r} has member {m.name!r} that is not a plain file or directory",
                        hint="model archives may hold only files and directories",
                    )
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise StoreError(
            f"cannot unpack {archive_name!r}: {type(exc).__name__}: {exc}",
            hint="check that the URL serves the archive format its file name says",
        ) from exc
