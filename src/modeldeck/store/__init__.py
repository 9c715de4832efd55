"""Model catalog, content-addressed artifact store and the only code that touches the network."""

from ._store import ModelStatus, ModelStore, VerifyReport
from .artifacts import FileRecord, Manifest
from .catalog import BUILTIN_CATALOG, CatalogEntry
from .pull import HttpxTransport, Response, Transport, download_file
from .sources import FetchContext, HFSource, HubDownload, LocalSource, Located, PipSource, Source, URLSource

__all__ = [
    "BUILTIN_CATALOG",
    "CatalogEntry",
    "FetchContext",
    "FileRecord",
    "HFSource",
    "HttpxTransport",
    "HubDownload",
    "LocalSource",
    "Located",
    "Manifest",
    "ModelStatus",
    "ModelStore",
    "PipSource",
    "Response",
    "Source",
    "Transport",
    "URLSource",
    "VerifyReport",
    "download_file",
]
