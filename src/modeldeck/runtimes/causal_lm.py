"""Causal language models (GPT-2 family and others) through transformers, with a hand-written decode loop.

The loop runs a left-padded batch with a key/value cache, one forward per generated token, and
lets every row carry its own sampling settings and random generator; the caller decides after
each step which rows are finished, and finished rows leave the cache so they cost nothing more.
Greedy rows pick the same tokens as ``model.generate(do_sample=False)`` (tested).
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, UnknownModelError
from .base import import_framework
from .transformers import model_memory_bytes, quiet_loading, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["CausalLMRuntime", "Decoder", "Sampling"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """How one row picks its next token. ``temperature == 0`` is greedy (argmax)."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="torch")


class CausalLMRuntime:
    """A tokenizer (pad token falls back to end-of-text, padding on the left) and a causal LM in eval mode."""

    name = "transformers"

    def __init__(self, tokenizer: Any, model: Any, *, device: str = "cpu") -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ConfigError(
                    "the tokenizer has neither a pad nor an end-of-text token",
                    hint="save the tokenizer with an eos_token (or pad_token)",
                )
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.pad_id = int(tokenizer.pad_token_id)
        eos: set[int] = set()
        generation_config = getattr(model, "generation_config", None)
        for source in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, (list, tuple)):
                eos.update(int(i) for i in source)
        self.eos_ids = frozenset(eos)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> CausalLMRuntime:
        path = Path(path)
        if not path.is_dir():
            raise UnknownModelError(f"no model folder at {str(path)!r}", hint="pull the model or fix its path")
        transformers = import_framework("transformers", package="transformers", extra="torch")
        torch_device = resolve_device(device)
        with quiet_loading(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        model.to(torch_device).eval()
        return cls(tokenizer, model, device=str(torch_device))

    @property
    def max_positions(self) -> int:
        """The longest sequence (prompt plus generated tokens) the model can attend over."""
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = int(self.tokenizer.model_max_length)
        return limit if limit < 1_000_000 else 2048

    @property
    def chat_template(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None)
        return template if isinstance(template, str) and template else None

    def encode(self, text: str, *, special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special_tokens, verbose=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def render_chat(self, messages: Sequence[dict[str, str]], template: str | None) -> str:
        """The prompt text for ``messages`` with the assistant's turn opened (the template's own job)."""
        return str(
            self.tokenizer.apply_chat_template(
                list(messages), chat_template=template, add_generation_prompt=True, tokenize=False
            )
        )

    def decoder(self, prompts: Sequence[Sequence[int]], samplings: Sequence[Sampling]) -> Decoder:
        return Decoder(self, prompts, samplings)

    def memory_bytes(self) -> int | None:
        return model_memory_bytes(self.model)


class Decoder:
    """One batch of prompts being decoded token by token. ``rows`` are the still active input indices."""

    def __init__(self, runtime: CausalLMRuntime, prompts: Sequence[Sequence[int]], samplings: Sequence[Sampling]):
        torch = _torch()
        if not prompts or len(prompts) != len(samplings) or any(len(p) == 0 for p in prompts):
            raise ValueError("need one non-empty prompt per sampling setting")
        self._torch = torch
        self._model = runtime.model
        device = self._model.device
        self.rows: list[int] = list(range(len(prompts)))
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), runtime.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        # Positions count real tokens only, as model.generate does for left-padded batches.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self._input = ids.to(device)
        self._mask = mask.to(device)
        self._positions = positions.to(device)
        self._past: Any = None
        # transformers 5 renamed ``past_key_values`` to ``cache``; accept models written either way.
        params = inspect.signature(self._model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._extra: dict[str, Any] = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        vocab = int(self._model.get_output_embeddings().weight.shape[0])
        self._vocab = vocab
        self._samplings = list(samplings)
        penalized = [i for i, s in enumerate(samplings) if s.repetition_penalty != 1.0]
        self._seen = None
        if penalized:
            seen = torch.zeros((len(prompts), vocab), dtype=torch.bool)
            for i in penalized:
                seen[i, torch.tensor(sorted(set(prompts[i])), dtype=torch.long)] = True
            self._seen = seen.to(device)
        self._generators = []
        for s in samplings:
            gen = None
            if not s.greedy:
                gen = torch.Generator(device="cpu")
                gen.manual_seed(s.seed if s.seed is not None else secrets.randbits(63))
            self._generators.append(gen)

    def step(self) -> list[int]:
        """Run one forward over the active rows; the next token of each, in ``rows`` order."""
        torch = self._torch
        with torch.inference_mode():
            out = self._model(
                input_ids=self._input,
                attention_mask=self._mask,
                position_ids=self._positions,
                use_cache=True,
                **{self._cache_arg: self._past},
                **self._extra,
            )
            cache = getattr(out, "cache", None)
            self._past = cache if cache is not None else out.past_key_values
            logits = out.logits[:, -1, :].float()
            tokens = self._choose(logits)
            self._input = tokens[:, None]
            self._mask = torch.cat([self._mask, torch.ones_like(self._input)], dim=1)
            self._positions = self._positions[:, -1:] + 1
            if self._seen is not None:
                self._seen[torch.arange(len(self.rows), device=tokens.device), tokens] = True
        return [int(t) for t in tokens.tolist()]

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these input indices (a subset of ``rows``, in order); the others leave the cache."""
        if list(rows) == self.rows:
            return
        torch = self._torch
        where = {row: i for i, row in enumerate(self.rows)}
        with torch.inference_mode():
            index = torch.tensor([where[r] for r in rows], dtype=torch.long, device=self._input.device)
            self._input = self._input[index]
            self._mask = self._mask[index]
            self._positions = self._positions[index]
            if self._seen is not None:
                self._seen = self._seen[index]
            if self._past is not None and len(index):
                self._past.batch_select_indices(index)
        self._samplings = [self._samplings[where[r]] for r in rows]
        self._generators = [self._generators[where[r]] for r in rows]
        self.rows = list(rows)

    def _choose(self, logits: torch.Tensor) -> torch.Tensor:
        torch = self._torch
        if self._seen is not None:
            penalty = torch.tensor([s.repetition_penalty for s in self._samplings], device=logits.device)[:, None]
            punished = torch.where(logits < 0, logits * penalty, logits / penalty)
            logits = torch.where(self._seen, punished, logits)
        chosen = logits.argmax(dim=-1)
        sampled = [i for i, s in enumerate(self._samplings) if not s.greedy]
        if not sampled:
            return chosen  # type: ignore[no-any-return]
        for i in sampled:
            chosen[i] = self._sample(logits[i], self._samplings[i], self._generators[i])
        return chosen  # type: ignore[no-any-return]

    def _sample(self, logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
        torch = self._torch
        scores, order = torch.sort(logits / sampling.temperature, descending=True)
        if sampling.top_k is not None and sampling.top_k < scores.shape[0]:
            scores[sampling.top_k :] = -float("inf")
        if sampling.top_p < 1.0:
            probs = torch.softmax(scores, dim=-1)
            # Drop a token once the ones before it already reach top_p; the first always stays.
            before = torch.cumsum(probs, dim=-1) - probs
            scores[before >= sampling.top_p] = -float("inf")
        probs = torch.softmax(scores, dim=-1).cpu()
        pick = torch.multinomial(probs, 1, generator=generator)
        return int(order[int(pick)])
