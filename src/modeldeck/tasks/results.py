"""Typed, immutable task results with named views and lossless plain-dict and Arrow forms.

Every result has ``to_dict()`` (JSON-able: str, int, float, None, lists, dicts), a
``from_dict()`` that inverts it: ``type(r).from_dict(r.to_dict()) == r``, and an
``arrow_type()`` whose struct holds the same fields (``to_arrow`` builds the column).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtimes.base import import_framework

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Embedding", "Entity", "NERResult", "ParseResult", "Sentence", "Token", "readonly_array", "to_arrow"]


def _pyarrow() -> Any:
    return import_framework("pyarrow", package="pyarrow", extra="jobs", purpose="Arrow conversion of results")


def to_arrow(results: Sequence[Any | None], result_type: Any) -> pa.Array:
    """A struct array of ``results`` typed by ``result_type.arrow_type()``; ``None`` becomes null.

    Lossless: every field of ``to_dict()`` has a column, float32 vectors stay float32.
    """
    pa = _pyarrow()
    return pa.array([None if r is None else r.to_dict() for r in results], type=result_type.arrow_type())


def readonly_array(values: Any, dtype: Any) -> np.ndarray:
    """A private, read-only copy of ``values`` (never a view of the caller's array).

    An array that is already read-only, of ``dtype`` and owns its memory is kept: nobody can change it.
    """
    if isinstance(values, np.ndarray) and values.dtype == dtype and not values.flags.writeable and values.base is None:
        return values
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True)
class Entity:
    """A named entity: ``text == original[start:end]`` (char offsets, end exclusive)."""

    text: str
    label: str
    start: int
    end: int
    score: float | None = None

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("text", pa.string()), ("label", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
             ("score", pa.float64())]
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "start": self.start, "end": self.end, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        score = data.get("score")
        return cls(
            text=str(data["text"]),
            label=str(data["label"]),
            start=int(data["start"]),
            end=int(data["end"]),
            score=None if score is None else float(score),
        )


@dataclass(frozen=True, slots=True)
class NERResult:
    entities: tuple[Entity, ...] = ()

    def __len__(self) -> int:
        return len(self.entities)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities)

    def __getitem__(self, index: int) -> Entity:
        return self.entities[index]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(e.label for e in self.entities)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.entities)

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        return tuple((e.start, e.end) for e in self.entities)

    @property
    def scores(self) -> tuple[float | None, ...]:
        return tuple(e.score for e in self.entities)

    def by_label(self, label: str) -> tuple[Entity, ...]:
        return tuple(e for e in self.entities if e.label == label)

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("entities", pa.list_(Entity.arrow_type()))])

    def to_dict(self) -> dict[str, Any]:
        return {"entities": [e.to_dict() for e in self.entities]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NERResult:
        return cls(entities=tuple(Entity.from_dict(e) for e in data["entities"]))


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``head`` is the document-level index of its syntactic head (a root points to itself)."""

    text: str
    start: int
    end: int
    pos: str
    tag: str
    lemma: str
    dep: str
    head: int

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        text = ("text", "pos", "tag", "lemma", "dep")
        return pa.struct(
            [(name, pa.string() if name in text else pa.int64())
             for name in ("text", "start", "end", "pos", "tag", "lemma", "dep", "head")]
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "pos": self.pos,
            "tag": self.tag,
            "lemma": self.lemma,
            "dep": self.dep,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        return cls(
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            pos=str(data["pos"]),
            tag=str(data["tag"]),
            lemma=str(data["lemma"]),
            dep=str(data["dep"]),
            head=int(data["head"]),
        )


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence: char span ``[start, end)`` and token span ``[token_start, token_end)``."""

    text: str
    start: int
    end: int
    token_start: int
    token_end: int

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("text", pa.string())] + [(n, pa.int64()) for n in ("start", "end", "token_start", "token_end")]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "token_start": self.token_start,
            "token_end": self.token_end,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sentence:
        return cls(
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            token_start=int(data["token_start"]),
            token_end=int(data["token_end"]),
        )


@dataclass(frozen=True, slots=True)
class ParseResult:
    tokens: tuple[Token, ...] = ()
    sentences: tuple[Sentence, ...] = ()

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[Token]:
        return iter(self.tokens)

    def __getitem__(self, index: int) -> Token:
        return self.tokens[index]

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(t.text for t in self.tokens)

    @property
    def heads(self) -> tuple[int, ...]:
        return tuple(t.head for t in self.tokens)

    @property
    def deps(self) -> tuple[str, ...]:
        return tuple(t.dep for t in self.tokens)

    @property
    def pos(self) -> tuple[str, ...]:
        return tuple(t.pos for t in self.tokens)

    @property
    def roots(self) -> tuple[int, ...]:
        """Indices of the tokens that are their own head, one per sentence."""
        return tuple(i for i, t in enumerate(self.tokens) if t.head == i)

    def sentence_tokens(self, index: int) -> tuple[Token, ...]:
        sentence = self.sentences[index]
        return self.tokens[sentence.token_start : sentence.token_end]

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("tokens", pa.list_(Token.arrow_type())), ("sentences", pa.list_(Sentence.arrow_type()))])

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": [t.to_dict() for t in self.tokens], "sentences": [s.to_dict() for s in self.sentences]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParseResult:
        return cls(
            tokens=tuple(Token.from_dict(t) for t in data["tokens"]),
            sentences=tuple(Sentence.from_dict(s) for s in data["sentences"]),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Embedding:
    """A float32 vector (read-only) and how many chunks of the text were embedded to make it."""

    vector: np.ndarray
    chunks: int = 1

    def __post_init__(self) -> None:
        vector = readonly_array(self.vector, np.float32)
        if vector.ndim != 1:
            raise ValueError(f"an embedding vector must be 1-D, got shape {vector.shape}")
        object.__setattr__(self, "vector", vector)

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    def __len__(self) -> int:
        return self.dim

    # Equality is by value: same dtype-exact numbers and the same chunk count.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Embedding):
            return NotImplemented
        return self.chunks == other.chunks and np.array_equal(self.vector, other.vector)

    def __hash__(self) -> int:
        return hash((self.vector.tobytes(), self.chunks))

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("vector", pa.list_(pa.float32())), ("dim", pa.int64()), ("chunks", pa.int64())])

    def to_dict(self) -> dict[str, Any]:
        return {"vector": self.vector.tolist(), "dim": self.dim, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Embedding:
        vector = readonly_array(data["vector"], np.float32)
        if "dim" in data and int(data["dim"]) != vector.shape[0]:
            raise ValueError(f"dim is {data['dim']} but the vector has {vector.shape[0]} values")
        return cls(vector=vector, chunks=int(data.get("chunks", 1)))
