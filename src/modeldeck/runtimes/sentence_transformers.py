"""sentence-transformers adapter: one ``SentenceTransformer`` loaded from a local folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UnknownModelError
from .base import import_framework
from .transformers import TokenizedText, model_memory_bytes, quiet_loading, resolve_device, tokenize_with_offsets

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformerRuntime"]


class SentenceTransformerRuntime:
    name = "sentence-transformers"

    def __init__(self, model: SentenceTransformer, *, device: str = "cpu") -> None:
        self.model = model
        self.device = device
        # Tokens the model adds around every text ([CLS] and [SEP] for BERT encoders).
        probe = model.tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = model.tokenizer("a", add_special_tokens=False)["input_ids"]
        self.special_tokens = max(0, len(probe) - len(plain))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> SentenceTransformerRuntime:
        path = Path(path)
        if not path.is_dir():
            raise UnknownModelError(f"no model folder at {str(path)!r}", hint="pull the model or fix its path")
        st = import_framework("sentence_transformers", package="sentence-transformers", extra="torch")
        torch_device = resolve_device(device)
        with quiet_loading(import_framework("transformers", package="transformers", extra="torch")):
            model = st.SentenceTransformer(str(path), device=str(torch_device), local_files_only=True)
        model.eval()
        runtime = cls(model, device=str(torch_device))
        runtime.tokenize("check")  # a slow tokenizer has no offsets: fail at load time, not per request
        return runtime

    @property
    def max_content_tokens(self) -> int:
        """Text tokens one encode call sees before the model would truncate."""
        return int(self.model.max_seq_length) - self.special_tokens

    @property
    def dim(self) -> int:
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def tokenize(self, text: str) -> TokenizedText:
        return tokenize_with_offsets(self.model.tokenizer, text)

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        """One ``encode`` call for the whole list: float32 array of shape ``(len(texts), dim)``."""
        vectors = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def memory_bytes(self) -> int | None:
        return model_memory_bytes(self.model)
