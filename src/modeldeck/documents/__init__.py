"""Document Q&A: index a folder of documents, rank passages for a question, read answers from them."""

from ._extract import SUFFIXES, ExtractedText, extract_text
from ._index import DEFAULT_CHUNK_CHARS, DEFAULT_OVERLAP_CHARS, INDEX_DIRNAME, DocumentIndex, Progress
from ._results import AskResult, BuildReport, DocumentAnswer, Passage, SkippedFile

__all__ = [
    "DEFAULT_CHUNK_CHARS",
    "DEFAULT_OVERLAP_CHARS",
    "INDEX_DIRNAME",
    "SUFFIXES",
    "AskResult",
    "BuildReport",
    "DocumentAnswer",
    "DocumentIndex",
    "ExtractedText",
    "Passage",
    "Progress",
    "SkippedFile",
    "extract_text",
]
