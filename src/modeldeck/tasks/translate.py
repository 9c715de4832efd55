"""Machine translation with sequence-to-sequence models: Marian / OPUS-MT, M2M100 and NLLB.

A document is split into lines and sentences (``_sentences``); the sentences of a whole batch
of documents are translated together in length-sorted mini-batches and put back between the
original separators, so paragraph breaks survive. Multilingual models take ``source_lang`` /
``target_lang`` as their own codes (``eng_Latn`` for NLLB, ``en`` for M2M100); multi-target
Marian models take the target as the ``>>xx<<`` token their vocabulary holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from ..errors import OptionError
from ..types import ModelInfo
from ._sentences import Layout, split_sentences
from .base import Options, Task, TransformersHead, check_text
from .results import _pyarrow

if TYPE_CHECKING:
    import pyarrow as pa

    from ..runtimes.transformers import TransformersRuntime

__all__ = ["Seq2SeqHead", "TranslateOptions", "TranslateTask", "Translation"]

_MARIAN_TARGET = re.compile(r">>([^<>\s]+)<<")


class TranslateOptions(Options):
    source_lang: str | None = Field(default=None, min_length=1, description="source language code (multilingual)")
    target_lang: str | None = Field(default=None, min_length=1, description="target language code (multilingual)")
    num_beams: int | None = Field(default=None, ge=1, le=16, description="beam width (default: the model's own)")
    max_new_tokens: int | None = Field(
        default=None, ge=1, description="tokens per translated sentence (default: 2x the input + 16)"
    )


@dataclass(frozen=True, slots=True)
class Translation:
    """The translated text, how many sentences it was translated as, and the languages used."""

    text: str
    sentences: int = 0
    source_lang: str | None = None
    target_lang: str | None = None

    def __str__(self) -> str:
        return self.text

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("text", pa.string()), ("sentences", pa.int64()), ("source_lang", pa.string()),
             ("target_lang", pa.string())]
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "sentences": self.sentences,
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Translation:
        src, tgt = data.get("source_lang"), data.get("target_lang")
        return cls(
            text=str(data["text"]),
            sentences=int(data.get("sentences", 0)),
            source_lang=None if src is None else str(src),
            target_lang=None if tgt is None else str(tgt),
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one document's sentences are generated: the settings a mini-batch must share."""

    src_lang: str | None
    forced_bos: int | None
    prefix: str
    num_beams: int | None
    max_new_tokens: int | None


@dataclass(frozen=True, slots=True)
class _Encoded:
    layout: Layout
    #: Each sentence as the pieces it is generated in: one, unless it is longer than the model's window.
    parts: tuple[tuple[str, ...], ...]
    plan: _Plan
    source_lang: str | None
    target_lang: str | None


class _Languages:
    """What the tokenizer knows about languages: multilingual codes, or Marian ``>>xx<<`` targets."""

    def __init__(self, runtime: TransformersRuntime) -> None:
        tok = runtime.tokenizer
        self._tok = tok
        codes: list[str] = []
        mapping = getattr(tok, "lang_code_to_id", None)
        if isinstance(mapping, Mapping) and mapping:
            codes = [str(c) for c in mapping]
        elif hasattr(tok, "src_lang"):
            extra = getattr(tok, "extra_special_tokens", None) or getattr(tok, "additional_special_tokens", None)
            if isinstance(extra, (list, tuple)):
                codes = [str(c) for c in extra]
        #: Multilingual codes (``src_lang`` / forced BOS), in the tokenizer's order.
        self.codes: tuple[str, ...] = tuple(codes)
        # Read now: generating sets ``tokenizer.src_lang`` per batch, so the live value moves.
        self.default_source: str | None = getattr(tok, "src_lang", None) if codes else None
        self.default_target: str | None = getattr(tok, "tgt_lang", None) if codes else None
        vocab = tok.get_vocab() if not self.codes else {}
        #: Targets of a multi-target Marian model, written ``>>xx<<`` at the start of the source.
        self.marian_targets: tuple[str, ...] = tuple(
            sorted(m.group(1) for t in vocab if (m := _MARIAN_TARGET.fullmatch(t)))
        )

    @property
    def multilingual(self) -> bool:
        return bool(self.codes)

    def forced_bos(self, code: str) -> int:
        if hasattr(self._tok, "get_lang_id"):
            return int(self._tok.get_lang_id(code))
        mapping = getattr(self._tok, "lang_code_to_id", None)
        if isinstance(mapping, Mapping) and code in mapping:
            return int(mapping[code])
        return int(self._tok.convert_tokens_to_ids(code))

    @staticmethod
    def unknown(which: str, code: str, valid: Sequence[str]) -> OptionError:
        shown = ", ".join(valid[:12]) + (f", ... ({len(valid)} in all)" if len(valid) > 12 else "")
        return OptionError(f"translate: unknown {which} {code!r} for this model", hint=f"valid codes: {shown}")


class Seq2SeqHead(TransformersHead):
    head = "seq2seq"


class TranslateTask(Task[_Encoded, list[str], Translation, TranslateOptions]):
    name = "translate"
    result_type: ClassVar[type] = Translation
    options_type = TranslateOptions
    runtime: TransformersRuntime

    def __init__(self, info: ModelInfo, backend: Seq2SeqHead, **kwargs: Any) -> None:
        self.languages = _Languages(backend.runtime)
        super().__init__(info, backend, **kwargs)

    def _card_lang(self, key: str) -> str | None:
        value = self.info.card.get(key)
        return str(value) if value else None

    def check_options(self, options: TranslateOptions) -> TranslateOptions:
        langs = self.languages
        if langs.multilingual:
            for which, code in (("source_lang", options.source_lang), ("target_lang", options.target_lang)):
                if code is not None and code not in langs.codes:
                    raise langs.unknown(which, code, langs.codes)
            return options
        if langs.marian_targets:
            if options.target_lang is not None and options.target_lang not in langs.marian_targets:
                raise langs.unknown("target_lang", options.target_lang, langs.marian_targets)
        # A bilingual model translates one pair: a language other than its card's is a mistake.
        for which, code in (("source_lang", options.source_lang), ("target_lang", options.target_lang)):
            fixed = self._card_lang(which)
            if which == "target_lang" and langs.marian_targets:
                continue
            if code is not None and fixed is not None and code != fixed:
                raise OptionError(
                    f"translate: model {self.info.name!r} translates {self._card_lang('source_lang') or '?'} -> "
                    f"{self._card_lang('target_lang') or '?'} only, got {which}={code!r}",
                    hint="pick a model for that language pair, or leave the option out",
                )
        return options

    def _plan(self, options: TranslateOptions) -> tuple[_Plan, str | None, str | None]:
        langs = self.languages
        src = options.source_lang
        tgt = options.target_lang
        forced_bos = None
        prefix = ""
        if langs.multilingual:
            src = src or langs.default_source
            tgt = tgt or langs.default_target
            if tgt is None:
                raise OptionError(
                    f"translate: model {self.info.name!r} is multilingual and needs target_lang",
                    hint=f"for example target_lang={langs.codes[0]!r}",
                )
            forced_bos = langs.forced_bos(tgt)
        else:
            src = src or self._card_lang("source_lang")
            if langs.marian_targets:
                if tgt is None:
                    raise OptionError(
                        f"translate: model {self.info.name!r} translates into several languages and needs target_lang",
                        hint=f"valid codes: {', '.join(langs.marian_targets[:12])}",
                    )
                prefix = f">>{tgt}<< "
            tgt = tgt or self._card_lang("target_lang")
        plan = _Plan(
            src_lang=src if langs.multilingual else None,
            forced_bos=forced_bos,
            prefix=prefix,
            num_beams=options.num_beams,
            max_new_tokens=options.max_new_tokens,
        )
        return plan, src, tgt

    def _fit(self, sentence: str, prefix: str) -> list[str]:
        """The sentence, or word-boundary halves of it, each within the model's input window."""
        # A token covers at least one char almost always, so short sentences skip the tokenizer.
        if len(sentence) + len(prefix) < self.runtime.max_tokens // 2:
            return [sentence]
        if len(self.runtime.tokenizer(prefix + sentence, verbose=False)["input_ids"]) <= self.runtime.max_tokens:
            return [sentence]
        words = sentence.split()
        if len(words) > 1:
            half = len(words) // 2
            left, right = " ".join(words[:half]), " ".join(words[half:])
        else:
            half = len(sentence) // 2
            left, right = sentence[:half], sentence[half:]
        return [*self._fit(left, prefix), *self._fit(right, prefix)]

    def preprocess(self, raw: Any, options: TranslateOptions) -> _Encoded:
        text = check_text(raw, max_chars=self.max_text_chars)
        plan, src, tgt = self._plan(options)
        layout = split_sentences(text)
        parts = tuple(tuple(self._fit(s, plan.prefix)) for s in layout.sentences)
        return _Encoded(layout, parts, plan, src, tgt)

    def forward(self, batch: Sequence[_Encoded]) -> list[list[str]]:
        # Sentences of every document that share generation settings are translated together.
        groups: dict[_Plan, list[tuple[int, int, int]]] = {}
        for d, item in enumerate(batch):
            for s, parts in enumerate(item.parts):
                groups.setdefault(item.plan, []).extend((d, s, p) for p in range(len(parts)))
        pieces: list[list[list[str]]] = [[[""] * len(parts) for parts in item.parts] for item in batch]
        for plan, refs in groups.items():
            texts = [plan.prefix + batch[d].parts[s][p] for d, s, p in refs]
            translated = self.runtime.generate(
                texts,
                batch_size=self.batch_size,
                num_beams=plan.num_beams,
                max_new_tokens=plan.max_new_tokens,
                forced_bos_token_id=plan.forced_bos,
                src_lang=plan.src_lang,
            )
            for (d, s, p), text in zip(refs, translated, strict=True):
                pieces[d][s][p] = text
        return [[" ".join(parts) for parts in doc] for doc in pieces]

    def postprocess(self, raw: list[str], encoded: _Encoded, options: TranslateOptions) -> Translation:
        return Translation(
            text=encoded.layout.join(raw),
            sentences=len(raw),
            source_lang=encoded.source_lang,
            target_lang=encoded.target_lang,
        )

    def describe(self) -> dict[str, Any]:
        langs = self.languages
        limit, source = self.runtime.token_limit
        return {
            **super().describe(),
            "languages": list(langs.codes or langs.marian_targets),
            "max_tokens": limit,
            "max_tokens_source": source,
        }
