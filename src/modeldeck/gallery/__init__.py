"""Face identification: people enrolled in one SQLite file, searched with one NumPy product per probe.

The file holds the model that produced the vectors, the people, and one float32 vector per
enrolled image (``_store``). Every write runs in one ``BEGIN IMMEDIATE`` transaction that also
bumps a generation counter; a search first reads the generation and reloads its in-memory matrix
(``_search``) only when a writer (this object, another object, another process) changed it. WAL
mode lets readers go on while one writer enrolls.
"""

from __future__ import annotations

from ._gallery import MAX_NAME_CHARS, Gallery
from ._results import (
    Candidate,
    EnrolledImage,
    EnrollReport,
    Identification,
    IdentifiedFace,
    PersonInfo,
    SkippedImage,
)
from ._store import SCHEMA_VERSION

__all__ = [
    "MAX_NAME_CHARS",
    "SCHEMA_VERSION",
    "Candidate",
    "EnrollReport",
    "EnrolledImage",
    "Gallery",
    "Identification",
    "IdentifiedFace",
    "PersonInfo",
    "SkippedImage",
]
