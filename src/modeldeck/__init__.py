"""modeldeck: pre-trained models from many frameworks behind one typed task API.

``import modeldeck`` stays light: no machine-learning framework, web framework or pydantic
is imported until a model is loaded or a server is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._api import load
from ._lazy import lazy_getattr
from ._version import __version__
from .config import Settings
from .errors import ModelDeckError

if TYPE_CHECKING:
    from ._draw import draw
    from ._similarity import SimilarityResult, similarity
    from .documents import DocumentIndex
    from .finetuning import FinetuneConfig, FinetuneReport, finetune
    from .gallery import Gallery
    from .optimizing import Budget, OptimizeReport, optimize
    from .store import ModelStore

__all__ = [
    "Budget",
    "DocumentIndex",
    "FinetuneConfig",
    "FinetuneReport",
    "Gallery",
    "ModelDeckError",
    "ModelStore",
    "OptimizeReport",
    "Settings",
    "SimilarityResult",
    "__version__",
    "draw",
    "finetune",
    "load",
    "optimize",
    "similarity",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "similarity": ("modeldeck._similarity", "similarity"),
        "SimilarityResult": ("modeldeck._similarity", "SimilarityResult"),
        "ModelStore": ("modeldeck.store", "ModelStore"),
        "draw": ("modeldeck._draw", "draw"),
        "Gallery": ("modeldeck.gallery", "Gallery"),
        "DocumentIndex": ("modeldeck.documents", "DocumentIndex"),
        "finetune": ("modeldeck.finetuning", "finetune"),
        "FinetuneConfig": ("modeldeck.finetuning", "FinetuneConfig"),
        "FinetuneReport": ("modeldeck.finetuning", "FinetuneReport"),
        "optimize": ("modeldeck.optimizing", "optimize"),
        "OptimizeReport": ("modeldeck.optimizing", "OptimizeReport"),
        "Budget": ("modeldeck.optimizing", "Budget"),
    },
)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
