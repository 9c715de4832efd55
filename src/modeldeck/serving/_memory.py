"""Unmapping the pages a process touched once in read-only shared libraries (Linux), before it serves.

Importing the CUDA build of torch runs the static initializers of its CUDA libraries (cuBLASLt,
nvJitLink, NVRTC, ...) and of triton, which touch a page here and there through hundreds of MiB
of code that a CPU process never runs again; those pages then stay mapped, and count in the
process's RSS and PSS, for as long as it lives: about 200 MiB in a deck's fork server, 70 MiB
more in a worker that imports transformers' model code (which imports triton). A page of a
read-only private file mapping that was never written is the file's own page from the page
cache: unmapping it (``madvise(MADV_DONTNEED)``) changes nothing the process can observe, the
page stays in the page cache (reclaimable, shared with whoever else maps it), and the next access
maps it again from there (a minor fault while the page is cached). A mapping that holds any
written (copy-on-write) page is left alone: ``MADV_DONTNEED`` would throw the write away. The
ranges are read first and dropped after, so this runs where no library is being unloaded (the
fork server after its imports, a worker between loading and serving).

Python's ``mmap.madvise`` only reaches maps Python made itself, so ``madvise`` is called through
ctypes; where there is no ``/proc/self/smaps`` or no C library exporting it, nothing is done.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

__all__ = ["drop_library_pages", "library_mappings"]

_MADV_DONTNEED = 4  # <sys/mman.h> on x86, Arm, POWER, RISC-V and s390
_WRITTEN = ("Private_Dirty:", "Shared_Dirty:", "Anonymous:")


def _is_library(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path.startswith("/") and (name.endswith(".so") or ".so." in name)


def library_mappings(smaps: str = "/proc/self/smaps") -> list[tuple[int, int]]:
    """Address ranges of the read-only, private mappings of shared libraries that hold no written page."""
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    try:
        text = Path(smaps).read_text()
    except OSError:
        return ranges
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0]
        if not first.endswith(":"):  # a mapping's header: "start-end perms offset dev inode [path]"
            if current is not None:
                ranges.append(current)
            fields = line.split(maxsplit=5)
            perms, path = fields[1], fields[5].strip() if len(fields) > 5 else ""
            start, end = (int(x, 16) for x in fields[0].split("-"))
            readonly_private = perms[1] == "-" and perms[3] == "p"
            current = (start, end) if readonly_private and _is_library(path) else None
        elif current is not None and first in _WRITTEN and line.split()[1] != "0":
            current = None
    if current is not None:
        ranges.append(current)
    return ranges


def drop_library_pages() -> int:
    """Unmap the resident pages of read-only shared-library mappings; the bytes of mappings dropped."""
    ranges = library_mappings()
    if not ranges:
        return 0  # no /proc (not Linux), or nothing to drop
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    dropped = 0
    for start, end in ranges:
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            dropped += end - start
    return dropped
