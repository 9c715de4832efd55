"""fastai's AWD-LSTM (random initial weights, as pretrained=False): both stages, the store, and classify."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.finetuning import finetune

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # minutes on a busy 2-core machine


@pytest.fixture(scope="module")
def tiny_awd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("awd")
    (folder / "awd_lstm.json").write_text(json.dumps({"emb_sz": 16, "n_hid": 32, "n_layers": 2}), encoding="utf-8")
    return folder


def test_both_stages_then_classify_gives_fastais_own_logits(
    tiny_awd: Path, splits: dict[str, Path], settings: Settings
) -> None:
    import torch
    from fastai.text.core import WordTokenizer, tokenize1
    from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_config
    from fastai.text.models.core import get_text_classifier
    from safetensors.torch import load_model

    report = finetune(
        "classify",
        data=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        base=str(tiny_awd),
        name="awd",
        settings=settings,
        lm_epochs=1,
        epochs=2,
        batch_size=16,
        max_length=24,
        lr=1e-2,
    )
    assert [(h["stage"], h["epoch"]) for h in report.history] == [(1, 1), (2, 1), (2, 2)]
    assert [h["trainable_groups"] for h in report.history if h["stage"] == 2] == [1, 2]  # 4 groups: emb, 2 LSTMs, head
    classify = modeldeck.load("classify", model=report.model, settings=settings)
    assert classify.info.runtime == "awd-lstm" and classify.labels == report.labels
    files = {p.name for p in classify.info.path.iterdir()}
    assert {"model.safetensors", "awd_lstm.json", "modeldeck.json"} <= files
    assert not any(name.endswith((".pkl", ".pth", ".pt", ".bin")) for name in files)  # no pickle

    # fastai's own classifier, built from fastai's config and the saved weights, on fastai's own tokens.
    meta = json.loads((classify.info.path / "awd_lstm.json").read_text())
    model = get_text_classifier(
        AWD_LSTM, len(meta["vocab"]), len(meta["labels"]), config={**awd_lstm_clas_config, **meta["config"]}
    )
    load_model(model, str(classify.info.path / "model.safetensors"))
    model.eval()
    index = {token: i for i, token in enumerate(meta["vocab"])}
    texts = ["Is the router reliable?", "The winter jacket is not slow.", "My phone was awful!!!"]
    for text in texts:
        ids = [index.get(t, 0) for t in tokenize1(text, WordTokenizer())]
        model.reset()
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0][0].numpy()
        ours = classify(text).scores
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        for i, label in enumerate(meta["labels"]):
            assert ours[label] == pytest.approx(float(probs[i]), abs=1e-6)
    # In a batch, rows are padded first and sorted longest first, as fastai reads them, and come back
    # in the caller's order (the LSTM state runs through the padding, so scores move a little).
    for result, text in zip(classify(texts), texts, strict=True):
        assert result.scores == pytest.approx(classify(text).scores, abs=0.05)
