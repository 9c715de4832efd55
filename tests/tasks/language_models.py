"""Tiny random-weight language models of the real architectures, saved the way hubs ship them.

Each ``save_*`` function writes a model folder (config, weights, tokenizer) under ``path`` and
returns ``path``; ``modeldeck.load(task, model=path)`` then goes through the real loading code.
"""

from __future__ import annotations

from pathlib import Path

QA_WORDS = [
    "who", "what", "where", "when", "founded", "the", "company", "in", "was", "by", "it", "a", "of", "and",
    "paris", "london", "berlin", "tim", "cook", "jose", "year", "city", "is", "to", "he", "she", "born",
    "##s", "##ing", "##ed", "##er", "##e", "1999", "2001",
    ".", ",", "!", "?", "-", "'",
]  # fmt: skip
SENTIMENT_LABELS = {0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL"}
TRANSLATE_WORDS = [
    "hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog", "runs", "fast", "good", "morning", "i",
    "am", "here", "it", "is", "late", "we", "go", "home", "hallo", "welt", "die", "katze", "hund",
    ".", ",", "!", "?",
]  # fmt: skip
NLLB_LANGS = ("eng_Latn", "deu_Latn", "fra_Latn")


def _bert_tokenizer(path: Path, words: list[str], max_length: int):  # type: ignore[no-untyped-def]
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return transformers.BertTokenizerFast(vocab=str(path / "vocab.txt"), model_max_length=max_length), len(vocab)


def _bert_config(vocab_size: int, max_positions: int, **extra):  # type: ignore[no-untyped-def]
    import transformers

    return transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        **extra,
    )


def save_tiny_bert_qa(path: Path, *, max_positions: int = 64, seed: int = 0) -> Path:
    """A random-weight ``BertForQuestionAnswering`` with a word-piece fast tokenizer.

    ``max_positions`` (default 64 tokens) is small so that ordinary contexts need several
    stride windows. Larger head weights spread the start/end logits so spans differ clearly.
    """
    import torch
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _bert_tokenizer(path, QA_WORDS, max_positions)
    config = _bert_config(vocab_size, max_positions, architectures=["BertForQuestionAnswering"])
    torch.manual_seed(seed)
    model = transformers.BertForQuestionAnswering(config)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(20.0)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


def save_tiny_bert_classifier(
    path: Path, *, labels: dict[int, str] | None = None, multi_label: bool = False, max_positions: int = 32
) -> Path:
    """A random-weight ``BertForSequenceClassification``; ``multi_label`` sets ``problem_type``."""
    import torch
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    labels = labels or SENTIMENT_LABELS
    tokenizer, vocab_size = _bert_tokenizer(path, QA_WORDS, max_positions)
    config = _bert_config(
        vocab_size,
        max_positions,
        architectures=["BertForSequenceClassification"],
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    torch.manual_seed(1)
    model = transformers.BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.mul_(20.0)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


def _word_level_tokenizer(words: list[str], specials: list[str]):  # type: ignore[no-untyped-def]
    """A ``tokenizers`` word-level tokenizer (no sentencepiece needed) that appends ``</s>``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate([*specials, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return tok


def save_tiny_marian(path: Path, *, max_positions: int = 64) -> Path:
    """A random-weight ``MarianMTModel`` (the OPUS-MT architecture) with a fast word-level tokenizer.

    Real OPUS-MT folders carry SentencePiece files, and ``sentencepiece`` is not installed here,
    so the tokenizer is a ``PreTrainedTokenizerFast``; the model and generation code are Marian's.
    """
    import torch
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "</s>", "<unk>"]
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_word_level_tokenizer(TRANSLATE_WORDS, specials),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_positions,
    )
    vocab_size = len(specials) + len(TRANSLATE_WORDS)
    config = transformers.MarianConfig(
        vocab_size=vocab_size,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=max_positions,
        init_std=0.5,  # large random weights make the output depend on the input
        scale_embedding=True,  # as OPUS-MT checkpoints do
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
        architectures=["MarianMTModel"],
    )
    torch.manual_seed(2)
    model = transformers.MarianMTModel(config)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


def save_tiny_nllb(path: Path, *, max_positions: int = 128) -> Path:
    """A random-weight ``M2M100ForConditionalGeneration`` with an ``NllbTokenizer`` (fast, language codes)."""
    import torch
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # Character-level BPE vocab (no merges): every text is covered, no sentencepiece model is needed.
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-"))
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", *chars, *NLLB_LANGS, "<mask>"]
    vocab = {tok: i for i, tok in enumerate(pieces)}
    tokenizer = transformers.NllbTokenizer(
        vocab=vocab,
        merges=[],
        extra_special_tokens=list(NLLB_LANGS),
        src_lang="eng_Latn",
        tgt_lang="deu_Latn",
        model_max_length=max_positions,
    )
    config = transformers.M2M100Config(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=max_positions,
        init_std=0.5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        architectures=["M2M100ForConditionalGeneration"],
    )
    torch.manual_seed(3)
    model = transformers.M2M100ForConditionalGeneration(config)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


def save_tiny_t5(path: Path) -> Path:
    """A random-weight ``T5ForConditionalGeneration``: relative positions, so its config has no
    ``max_position_embeddings``, and a tokenizer that declares no ``model_max_length``."""
    import torch
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "</s>", "<unk>"]
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_word_level_tokenizer(TRANSLATE_WORDS, specials),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    config = transformers.T5Config(
        vocab_size=len(specials) + len(TRANSLATE_WORDS),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        architectures=["T5ForConditionalGeneration"],
    )
    torch.manual_seed(3)
    model = transformers.T5ForConditionalGeneration(config)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path
