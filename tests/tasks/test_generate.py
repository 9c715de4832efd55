"""generate and chat on tiny random GPT-2 models: decoding checked against model.generate, options, streaming."""

from __future__ import annotations

import re

import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import (
    ConfigError,
    EmptyInputError,
    InputTooLargeError,
    InputTypeError,
    OptionError,
)
from modeldeck.tasks.generate import ChatResult, Generation
from modeldeck.tasks.results import to_arrow

from .gpt2_models import CHAT_TEMPLATE, save_tiny_gpt2

pytestmark = pytest.mark.timeout(120)

PROMPTS = ["Once upon a time", "Hi", "Paris is the capital of France, and Berlin", "The quick brown fox"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads; on a busy 2-core machine their hand-offs cost 10-100x."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings.from_env({}, home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def gen(tmp_path_factory, settings):
    path = save_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    return modeldeck.load("generate", model=str(path), settings=settings)


@pytest.fixture(scope="module")
def chat_path(tmp_path_factory):
    return save_tiny_gpt2(tmp_path_factory.mktemp("chat"), chat_template=CHAT_TEMPLATE, tasks=("generate", "chat"))


@pytest.fixture(scope="module")
def chat(chat_path, settings):
    return modeldeck.load("chat", model=str(chat_path), settings=settings)


def reference(task, prompt: str, **kwargs) -> str:
    """What transformers' own generate makes of ``prompt``, decoded the same way."""
    import torch

    runtime = task.runtime
    ids = torch.tensor([runtime.encode(prompt)])
    out = runtime.model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=runtime.pad_id, **kwargs)
    return runtime.decode(out[0, ids.shape[1] :].tolist())


def test_greedy_output_equals_model_generate(gen):
    for prompt in PROMPTS:
        result = gen(prompt, max_new_tokens=12)
        assert result.text == reference(gen, prompt, max_new_tokens=12, do_sample=False)
        assert (result.finish_reason, result.completion_tokens) == ("length", 12)
        assert result.prompt_tokens == len(gen.runtime.encode(prompt))


def test_repetition_penalty_matches_transformers(gen):
    result = gen(PROMPTS[0], max_new_tokens=16, repetition_penalty=5.0)
    assert result.text == reference(gen, PROMPTS[0], max_new_tokens=16, do_sample=False, repetition_penalty=5.0)
    assert result.text != gen(PROMPTS[0], max_new_tokens=16).text


def test_left_padded_batch_gives_the_one_by_one_outputs(gen):
    # Different lengths and options in one batch: finished rows leave the batch while the others go on.
    lengths = [3, 15, 8, 1]
    batched = gen.run_batch(
        [(p, gen.parse_options({"max_new_tokens": n})) for p, n in zip(PROMPTS, lengths, strict=True)]
    )
    alone = [gen(p, max_new_tokens=n) for p, n in zip(PROMPTS, lengths, strict=True)]
    assert batched == alone
    assert [r.completion_tokens for r in batched] == lengths
    assert len({len(gen.runtime.encode(p)) for p in PROMPTS}) > 1  # the batch really was padded
    mixed = [
        {"max_new_tokens": 4, "repetition_penalty": 3.0},
        {"max_new_tokens": 12, "temperature": 1.0, "seed": 1, "top_k": 50},
        {"max_new_tokens": 7, "temperature": 0.5, "seed": 2, "top_p": 0.9, "repetition_penalty": 1.5},
        {"max_new_tokens": 9, "stop": ["e"]},
    ]
    batched = gen.run_batch([(p, gen.parse_options(o)) for p, o in zip(PROMPTS, mixed, strict=True)])
    assert batched == [gen(p, **o) for p, o in zip(PROMPTS, mixed, strict=True)]


def test_seeded_sampling_is_reproducible_alone_and_in_a_batch(gen):
    options = {"temperature": 1.5, "max_new_tokens": 20}
    first = gen(PROMPTS[0], seed=7, **options)
    assert gen(PROMPTS[0], seed=7, **options) == first
    assert len({gen(PROMPTS[0], seed=s, **options).text for s in range(4)}) > 1
    # Each row samples from its own generator: the batch gives what each request gives alone.
    batch = gen.run_batch([(p, gen.parse_options({**options, "seed": 7 + i})) for i, p in enumerate(PROMPTS)])
    assert batch[0] == first
    assert batch == [gen(p, seed=7 + i, **options) for i, p in enumerate(PROMPTS)]


def test_top_k_1_and_a_tiny_top_p_sample_the_greedy_token(gen):
    greedy = gen(PROMPTS[2], max_new_tokens=10).text
    assert gen(PROMPTS[2], max_new_tokens=10, temperature=2.0, top_k=1, seed=3).text == greedy
    assert gen(PROMPTS[2], max_new_tokens=10, temperature=2.0, top_p=1e-6, seed=3).text == greedy


def test_stop_sequences_end_the_text_before_the_stop(gen):
    full = gen(PROMPTS[0], max_new_tokens=30).text
    stop = next(full[i : i + 2] for i in range(4, len(full) - 2) if full[i : i + 2].isprintable())
    result = gen(PROMPTS[0], max_new_tokens=30, stop=[stop, "never-seen-stop"])
    assert result.text == full[: full.index(stop)]
    assert result.finish_reason == "stop" and result.completion_tokens < 30
    pieces = list(gen.stream(PROMPTS[0], max_new_tokens=30, stop=stop))
    assert "".join(pieces) == result.text and not any(stop in p for p in pieces)
    assert gen(PROMPTS[0], max_new_tokens=30, stop="never-seen-stop").finish_reason == "length"


def test_max_new_tokens_is_honoured_exactly(gen):
    for n in (1, 2, 9):
        result = gen(PROMPTS[1], max_new_tokens=n, temperature=1.0, seed=n)
        assert (result.completion_tokens, result.finish_reason) == (n, "length")


def test_end_of_text_stops_generation(tmp_path, settings):
    eager = modeldeck.load("generate", model=str(save_tiny_gpt2(tmp_path / "eos", eos_bias=60.0)), settings=settings)
    result = eager(PROMPTS[0], max_new_tokens=10)
    assert result == Generation(text="", finish_reason="stop", prompt_tokens=result.prompt_tokens, completion_tokens=1)


def test_streaming_yields_the_same_text_as_the_plain_call(gen):
    for options in ({"max_new_tokens": 25}, {"max_new_tokens": 25, "temperature": 0.9, "seed": 11}):
        stream = gen.stream(PROMPTS[3], **options)
        pieces = list(stream)
        result = gen(PROMPTS[3], **options)
        assert len(pieces) > 1 and all(pieces)
        assert "".join(pieces) == result.text
        assert stream.result == result


def test_closing_a_stream_stops_generation(gen):
    before = gen.generated_tokens
    stream = gen.stream(PROMPTS[0], max_new_tokens=200)
    next(stream)
    stream.close()
    assert gen.generated_tokens - before < 10


def test_a_sink_that_declines_cancels_its_row_only(gen):
    class Sink:
        def __init__(self, limit):
            self.pieces, self.limit = [], limit

        def emit(self, piece):
            self.pieces.append(piece)
            return len(self.pieces) < self.limit

    short, full = Sink(3), Sink(10_000)
    opts = gen.parse_options({"max_new_tokens": 40})
    cut, whole = gen.run_batch([(PROMPTS[0], opts, short), (PROMPTS[1], opts, full)])
    assert cut.finish_reason == "cancelled" and cut.completion_tokens == 3
    assert whole == gen(PROMPTS[1], max_new_tokens=40) and "".join(full.pieces) == whole.text


def test_prompts_that_do_not_fit_the_window(gen):
    window = gen.window
    long_prompt = "hello world " * window
    with pytest.raises(InputTooLargeError, match=r"window is 256.*truncate='left'"):
        gen(long_prompt, max_new_tokens=10)
    result = gen(long_prompt, max_new_tokens=10, truncate="left")
    assert result.prompt_tokens == window - 10 and result.completion_tokens == 10
    default = gen(long_prompt, truncate="left")
    assert default.prompt_tokens + default.completion_tokens <= window


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_new_tokens": 0}, "greater than or equal to 1"),
        ({"max_new_tokens": 1_000_000}, "less than or equal to 100000"),
        ({"max_new_tokens": 256}, "does not fit the model's window of 256"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"stop": [""]}, "non-empty"),
        ({"truncate": "right"}, "truncate"),
        ({"colour": "red"}, "unknown option 'colour'"),
    ],
)
def test_bad_options_are_option_errors(gen, options, match):
    with pytest.raises(OptionError, match=match):
        gen("Hi", **options)


def test_bad_prompts_are_input_errors(gen):
    with pytest.raises(EmptyInputError):
        gen("   ")
    with pytest.raises(InputTypeError, match="prompt must be a string"):
        gen(42)


def test_results_round_trip_to_dicts_and_arrow(gen, chat):
    results = [gen(PROMPTS[0], max_new_tokens=5), chat([{"role": "user", "content": "Hi"}], max_new_tokens=5)]
    for result in results:
        assert type(result).from_dict(result.to_dict()) == result
        column = to_arrow([result, None], type(result))
        assert column.to_pylist() == [result.to_dict(), None]


def test_chat_renders_the_template_and_answers_as_the_assistant(chat):
    messages = [{"role": "user", "content": "Hi there"}]
    result = chat(messages, max_new_tokens=8)
    assert isinstance(result, ChatResult)
    assert result.message["role"] == "assistant" and result.content == result.message["content"]
    rendered = "<|user|>Hi there\n<|assistant|>"
    assert result.prompt_tokens == len(chat.runtime.encode(rendered, special_tokens=False))
    assert result.content == reference(chat, rendered, max_new_tokens=8, do_sample=False)
    with pytest.raises(TypeError):
        result.message["content"] = "changed"  # type: ignore[index]


def test_chat_system_option_is_added_when_the_messages_have_none(chat):
    user = [{"role": "user", "content": "Hi"}]
    with_option = chat(user, system="Be brief.", max_new_tokens=4)
    explicit = chat([{"role": "system", "content": "Be brief."}, *user], max_new_tokens=4)
    assert with_option == explicit
    assert with_option.prompt_tokens > chat(user, max_new_tokens=4).prompt_tokens


def test_chat_batches_and_streams(chat):
    a = [{"role": "user", "content": "Hi"}]
    b = [{"role": "user", "content": "Tell me about Paris"}, {"role": "assistant", "content": "It is"}]
    batch = chat([a, b], max_new_tokens=6)
    assert batch == [chat(a, max_new_tokens=6), chat(b, max_new_tokens=6)]
    stream = chat.stream(b, max_new_tokens=6)
    assert "".join(stream) == batch[1].content and stream.result == batch[1]


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("Hi", r"list of messages, got str"),
        ([], "no messages"),
        (
            [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}],
            r"messages\[1\]\['role'\] must be one of",
        ),
        ([{"role": "user"}], r"messages\[0\] has no 'content'"),
        ([{"role": "user", "content": 3}], r"messages\[0\]\['content'\] must be a string"),
        ([["user", "hi"], {"role": "user", "content": "x"}], r"messages\[0\] must be an object"),
    ],
)
def test_malformed_messages_name_the_index_and_key(chat, messages, match):
    (error,) = chat.run_batch([(messages, chat.default_options)])
    assert isinstance(error, InputTypeError) and re.search(match, error.message)


def test_a_model_without_a_chat_template_says_how_to_give_one(tmp_path, settings):
    path = save_tiny_gpt2(tmp_path / "plain", tasks=("generate", "chat"))
    with pytest.raises(ConfigError, match="no chat template") as info:
        modeldeck.load("chat", model=str(path), settings=settings)
    assert "chat_template=" in str(info.value)
    chat = modeldeck.load("chat", model=str(path), settings=settings, chat_template=CHAT_TEMPLATE)
    assert chat([{"role": "user", "content": "Hi"}], max_new_tokens=3).completion_tokens == 3
    with pytest.raises(OptionError, match="chat_template does not render"):
        chat([{"role": "user", "content": "Hi"}], chat_template="{% for %}")


def test_a_plain_causal_lm_folder_loads_as_chat(tmp_path, settings):
    path = save_tiny_gpt2(tmp_path / "plain-chat", chat_template=CHAT_TEMPLATE)
    chat = modeldeck.load("chat", model=str(path), settings=settings)
    assert chat([{"role": "user", "content": "Hi"}], max_new_tokens=2).completion_tokens == 2
