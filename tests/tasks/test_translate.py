"""Translation with tiny random Marian and NLLB (M2M100) models, and the sentence splitter."""

from __future__ import annotations

from pathlib import Path

import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import EmptyInputError, InputTypeError, OptionError
from modeldeck.tasks._sentences import split_sentences
from modeldeck.tasks.results import to_arrow
from modeldeck.tasks.translate import TranslateTask, Translation
from modeldeck.types import ModelInfo

from .language_models import NLLB_LANGS, save_tiny_marian, save_tiny_nllb, save_tiny_t5

DOC = (
    "Hello world. The cat sat on the mat! A dog runs fast?\n\n  We go home. It is late.\nGood morning\n\n\nI am here. "
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def marian(tmp_path_factory: pytest.TempPathFactory, home: Path) -> TranslateTask:
    pytest.importorskip("transformers")
    path = save_tiny_marian(tmp_path_factory.mktemp("tiny-marian"))
    task = modeldeck.load("translate", model=str(path), settings=Settings.from_env({}, home=home), batch_size=3)
    assert isinstance(task, TranslateTask)
    return task


@pytest.fixture(scope="module")
def nllb(tmp_path_factory: pytest.TempPathFactory, home: Path) -> TranslateTask:
    pytest.importorskip("transformers")
    path = save_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb"))
    task = modeldeck.load("translate", model=str(path), settings=Settings.from_env({}, home=home), batch_size=4)
    assert isinstance(task, TranslateTask)
    return task


def _direct(task: TranslateTask, sentence: str, max_new_tokens: int, **generate: object) -> str:
    """One sentence, unbatched and unpadded, through the model's own generate."""
    tok = task.runtime.tokenizer
    enc = tok(sentence, return_tensors="pt")
    out = task.runtime.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, **generate)
    return tok.decode(out[0], skip_special_tokens=True).strip()


# -- the splitter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two? Three!", ["One.", "Two?", "Three!"]),
        ("Dr. Smith met J. K. Rowling, e.g. at home. Next.", ["Dr. Smith met J. K. Rowling, e.g. at home.", "Next."]),
        ('He said "Stop." Then he left... and came back.', ['He said "Stop."', "Then he left... and came back."]),
        ("Pi is 3.14 today. ok then", ["Pi is 3.14 today. ok then"]),
        ("他来了。她走了\uff01好", ["他来了。", "她走了\uff01", "好"]),
        ("Line one\nLine two.\n\n\nPara", ["Line one", "Line two.", "Para"]),
        ("   ", []),
        ("no end", ["no end"]),
    ],
)  # fmt: skip
def test_splitter_finds_sentences_and_rebuilds_the_text(text: str, sentences: list[str]) -> None:
    layout = split_sentences(text)
    assert list(layout.sentences) == sentences
    assert layout.join(layout.sentences) == text
    marked = layout.join([f"<{i}>" for i in range(len(sentences))])
    assert [marked.index(f"<{i}>") for i in range(len(sentences))] == sorted(
        marked.index(f"<{i}>") for i in range(len(sentences))
    )


def test_splitter_keeps_every_separator() -> None:
    layout = split_sentences(DOC)
    assert layout.sentences == (
        "Hello world.", "The cat sat on the mat!", "A dog runs fast?", "We go home.", "It is late.",
        "Good morning", "I am here.",
    )  # fmt: skip
    assert layout.join(["S"] * 7) == "S S S\n\n  S S\nS\n\n\nS "
    with pytest.raises(ValueError, match="expected 7"):
        layout.join(["S"])


# -- Marian ------------------------------------------------------------------------------------


def test_marian_output_is_the_models_greedy_output_in_order(marian: TranslateTask) -> None:
    result = marian(DOC, max_new_tokens=6, num_beams=1)
    sentences = split_sentences(DOC).sentences
    expected = [_direct(marian, s, 6) for s in sentences]
    assert len(set(expected)) > 3, "the tiny model should translate different sentences differently"
    assert result.sentences == len(sentences)
    assert result.text == split_sentences(DOC).join(expected)
    assert result.text.count("\n\n") == 2 and result.text.startswith(expected[0]) and result.text.endswith(" ")


def test_batch_of_documents_keeps_each_in_order(marian: TranslateTask) -> None:
    docs = ["We go home. Hello world.", "A dog runs fast.\n\nThe cat sat on the mat.", "Good morning"]
    results = marian(docs, max_new_tokens=5)
    assert isinstance(results, list) and len(results) == 3
    for doc, result in zip(docs, results, strict=True):
        assert result == marian(doc, max_new_tokens=5)
        layout = split_sentences(doc)
        assert result.text == layout.join([_direct(marian, s, 5) for s in layout.sentences])


def test_marian_language_options(marian: TranslateTask, tmp_path: Path) -> None:
    plain = marian("Hello world.", max_new_tokens=3)
    assert plain.source_lang is None and plain.target_lang is None
    labelled = marian("Hello world.", max_new_tokens=3, source_lang="en", target_lang="de")
    assert (labelled.source_lang, labelled.target_lang) == ("en", "de") and labelled.text == plain.text
    # With a card that names the pair, another pair is refused.
    info = ModelInfo(
        name="opus-mt-en-de", version="x", tasks=("translate",), runtime="transformers", path=marian.info.path,
        card={"source_lang": "en", "target_lang": "de"},
    )  # fmt: skip
    carded = TranslateTask(info, marian.backend)
    assert carded("Hello world.", max_new_tokens=3).target_lang == "de"
    with pytest.raises(OptionError, match="en -> de only"):
        carded("Hello world.", target_lang="fr")


def test_long_sentence_is_cut_to_fit_the_window(marian: TranslateTask) -> None:
    long = " ".join(["the cat sat on the mat"] * 30)  # ~180 tokens; the model takes 64
    result = marian(long, max_new_tokens=2)
    assert result.sentences == 1
    encoded = marian.preprocess(long, marian.default_options)
    parts = encoded.parts[0]
    assert len(parts) > 2 and " ".join(parts) == long
    assert all(len(marian.runtime.tokenizer(p)["input_ids"]) <= marian.runtime.max_tokens for p in parts)
    assert result.text == " ".join(_direct(marian, p, 2) for p in parts)


# -- NLLB / M2M100 ------------------------------------------------------------------------------


def test_nllb_uses_the_language_codes(nllb: TranslateTask) -> None:
    tok = nllb.runtime.tokenizer
    assert nllb.languages.codes == NLLB_LANGS and nllb.describe()["languages"] == list(NLLB_LANGS)
    text = "Hello world. The cat sat.\n\nWe go home."
    result = nllb(text, source_lang="deu_Latn", target_lang="fra_Latn", max_new_tokens=6)
    assert (result.source_lang, result.target_lang) == ("deu_Latn", "fra_Latn")
    layout = split_sentences(text)
    fra = tok.convert_tokens_to_ids("fra_Latn")
    tok.src_lang = "deu_Latn"
    expected = [_direct(nllb, s, 6, forced_bos_token_id=fra) for s in layout.sentences]
    assert result.text == layout.join(expected)
    # The source language is part of the encoder input: another source gives the model other input.
    assert tok("hello")["input_ids"][0] == tok.convert_tokens_to_ids("deu_Latn")
    # Defaults come from the tokenizer as saved (eng_Latn -> deu_Latn), whatever ran before.
    default = nllb(text, max_new_tokens=6)
    assert (default.source_lang, default.target_lang) == ("eng_Latn", "deu_Latn")
    tok.src_lang = "eng_Latn"
    deu = tok.convert_tokens_to_ids("deu_Latn")
    assert default.text == layout.join([_direct(nllb, s, 6, forced_bos_token_id=deu) for s in layout.sentences])


def test_unknown_language_code_lists_valid_ones(nllb: TranslateTask, marian: TranslateTask) -> None:
    with pytest.raises(OptionError, match="unknown target_lang 'xx_Yyyy'") as err:
        nllb("Hello.", target_lang="xx_Yyyy")
    assert "eng_Latn" in str(err.value) and "fra_Latn" in str(err.value)
    with pytest.raises(OptionError, match="unknown source_lang 'english'"):
        nllb("Hello.", source_lang="english")
    results = nllb.predict_each(["Hello.", "Hi."], nllb.parse_options({"target_lang": "fra_Latn", "max_new_tokens": 4}))
    assert all(isinstance(r, Translation) for r in results)


def test_mixed_options_in_one_batch(nllb: TranslateTask) -> None:
    items = [
        ("Hello world.", nllb.parse_options({"target_lang": "fra_Latn", "max_new_tokens": 4})),
        ("Hello world.", nllb.parse_options({"target_lang": "deu_Latn", "max_new_tokens": 4})),
        ("", nllb.default_options),
        (7, nllb.default_options),
    ]
    out = nllb.run_batch(items)
    assert out[0] == nllb("Hello world.", target_lang="fra_Latn", max_new_tokens=4)
    assert out[1] == nllb("Hello world.", target_lang="deu_Latn", max_new_tokens=4)
    assert isinstance(out[2], EmptyInputError) and isinstance(out[3], InputTypeError)


def test_result_round_trips(marian: TranslateTask) -> None:
    results = [marian("Hello world. Good morning.", max_new_tokens=3), Translation("x", 1, "en", None)]
    for result in results:
        assert Translation.from_dict(result.to_dict()) == result
    assert str(results[1]) == "x"
    assert to_arrow([*results, None], Translation).to_pylist() == [r.to_dict() for r in results] + [None]


def test_task_is_inferred_from_the_folder(marian: TranslateTask, nllb: TranslateTask, home: Path) -> None:
    settings = Settings.from_env({}, home=home)
    for task in (marian, nllb):
        assert modeldeck.load(str(task.info.path), settings=settings).name == "translate"


@pytest.mark.slow
def test_sentencepiece_folder_without_the_package_names_the_install(tmp_path: Path, home: Path) -> None:
    import json
    import subprocess
    import sys

    # How OPUS-MT folders look: SentencePiece models and a slow MarianTokenizer.
    (tmp_path / "source.spm").write_bytes(b"spm")
    (tmp_path / "target.spm").write_bytes(b"spm")
    (tmp_path / "vocab.json").write_text(json.dumps({"<pad>": 0, "</s>": 1, "<unk>": 2}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MarianTokenizer"}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "marian", "architectures": ["MarianMTModel"]}))
    # A fresh process where the package cannot be imported: transformers caches what it finds.
    script = (
        "import sys; sys.modules['sentencepiece'] = None\n"
        "import modeldeck\n"
        "from modeldeck.config import Settings\n"
        "from modeldeck.errors import DependencyError\n"
        "try:\n"
        f"    settings = Settings.from_env({{}}, home={str(home)!r})\n"
        f"    modeldeck.load('translate', model={str(tmp_path)!r}, settings=settings)\n"
        "except DependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "pip install sentencepiece" in out.stdout, out.stdout + out.stderr


def test_max_new_tokens_is_capped_by_the_model_window(marian: TranslateTask) -> None:
    result = marian("Hello world.", max_new_tokens=500)  # the tiny model has 64 positions
    assert isinstance(result, Translation) and result.sentences == 1
    assert len(marian.runtime.tokenizer(result.text)["input_ids"]) <= marian.runtime.max_tokens


def test_opus_mt_layout_with_sentencepiece_tokenizers(tmp_path: Path, home: Path) -> None:
    """An OPUS-MT folder as the hub ships it: source/target SentencePiece models, vocab.json, MarianTokenizer."""
    import json

    import sentencepiece as spm
    import torch
    import transformers

    from .language_models import TRANSLATE_WORDS

    corpus = [" ".join(TRANSLATE_WORDS[i : i + 5]) for i in range(0, len(TRANSLATE_WORDS), 2)] * 4
    for side in ("source", "target"):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus), model_prefix=str(tmp_path / side), vocab_size=34,
            model_type="word", bos_id=-1, eos_id=1, unk_id=2, pad_id=0, minloglevel=2,
        )  # fmt: skip
        (tmp_path / f"{side}.model").rename(tmp_path / f"{side}.spm")
    pieces = [line.split("\t")[0] for line in (tmp_path / "source.vocab").read_text().splitlines()]
    (tmp_path / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}))
    tokenizer = transformers.MarianTokenizer(
        source_spm=str(tmp_path / "source.spm"), target_spm=str(tmp_path / "target.spm"),
        vocab=str(tmp_path / "vocab.json"), model_max_length=64,
    )  # fmt: skip
    config = transformers.MarianConfig(
        vocab_size=len(pieces), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        init_std=0.5, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, architectures=["MarianMTModel"],
    )  # fmt: skip
    torch.manual_seed(3)
    folder = tmp_path / "opus-mt-tiny"
    tokenizer.save_pretrained(folder)
    transformers.MarianMTModel(config).save_pretrained(folder)
    assert (folder / "source.spm").is_file()

    task = modeldeck.load("translate", model=str(folder), settings=Settings.from_env({}, home=home))
    assert type(task.runtime.tokenizer).__name__ == "MarianTokenizer"
    ids = task.runtime.tokenizer("the cat sat")["input_ids"]
    assert ids == [pieces.index(w) for w in ("▁the", "▁cat", "▁sat")] + [1]  # SentencePiece ids, then </s>
    result = task("the cat sat on the mat.\nwe go home.", max_new_tokens=40)
    direct = [_direct(task, sentence, 40) for sentence in ("the cat sat on the mat.", "we go home.")]
    assert result.sentences == 2 and result.text == "\n".join(direct)


def test_a_t5_style_model_without_any_length_limit_falls_back_and_says_so(tmp_path: Path, home: Path) -> None:
    # Regression: the tokenizer's "unset" model_max_length (int(1e30)) became the limit, and
    # translate crashed with OverflowError: int too big to convert.
    path = save_tiny_t5(tmp_path / "tiny-t5")
    task = modeldeck.load("translate", model=str(path), settings=Settings(home=home))
    assert task.runtime.max_tokens == 512
    described = task.describe()
    assert described["max_tokens"] == 512 and "fallback" in described["max_tokens_source"]
    result = task("the cat sat on the mat. the dog ran.")
    assert isinstance(result, Translation) and result.sentences == 1  # random weights: any text, no crash
