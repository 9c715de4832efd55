"""Tiny random-weight GPT-2 models with a locally trained byte-level BPE tokenizer, saved as hubs ship them."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "Once upon a time there was a little robot who liked to read books.",
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "user: hi there. assistant: hello, how can I help you today?",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "Numbers 0 1 2 3 4 5 6 7 8 9, punctuation . , ; : ! ? and émojis 🙂 too.",
]
EOS = "<|endoftext|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tokenizer(vocab_size: int):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS)


def save_tiny_gpt2(
    path: Path,
    *,
    chat_template: str | None = None,
    eos_bias: float = -60.0,
    n_positions: int = 256,
    n_embd: int = 32,
    seed: int = 0,
    tasks: tuple[str, ...] | None = None,
) -> Path:
    """Save a 2-layer GPT2LMHeadModel and its tokenizer in ``path``.

    ``eos_bias`` steers the end-of-text logit: very negative (the default) means the model never
    ends on its own, so lengths and stops in tests are decided by the options under test; very
    positive makes its first generated token end-of-text. The bias works through the final layer
    norm's bias along one direction that only the end-of-text row of the (untied) LM head reads.
    ``tasks`` writes a ``modeldeck.json`` naming the tasks the folder serves (a plain causal-LM
    folder is inferred as ``generate`` only).
    """
    import torch
    import transformers

    tokenizer = _tokenizer(300)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        # Spread the logits so greedy and sampled outputs vary from token to token.
        model.lm_head.weight.normal_(0.0, 1.0)
        direction = torch.zeros(n_embd)
        direction[0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos_id] = direction
        model.transformer.ln_f.weight[0] = 0.0
        model.transformer.ln_f.bias[0] = eos_bias
    model.generation_config.pad_token_id = eos_id
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    if tasks is not None:
        (path / "modeldeck.json").write_text(json.dumps({"runtime": "transformers", "tasks": list(tasks)}))
    return path
