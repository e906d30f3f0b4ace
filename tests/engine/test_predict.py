"""Batched inference: length-sorted batches keep the input order, and bf16 / int8 answer like fp32 within tolerance."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import hardware
from engine.hardware import INFERENCE_PRECISIONS, limit_threads_to_cores, physical_cores, resolve_inference_precision
from engine.predict import Predictor, length_batches, predict_logits
from tests.engine.tasks.conftest import tiny_encoder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reviews.csv"
LABELS = ["fresh", "rotten"]
# Very different lengths (one past the trained max length), a Chinese text, an empty and a blank one.
TEXTS = [
    "A warm, funny and moving film.",
    "Tedious. " * 300,
    "质量很好，物流也快，下次还会再买。",
    "",
    "   ",
    "ok",
    "The plot wanders for an hour, then the last act pulls everything together into something quietly devastating.",
    "Bad.",
]
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def reviews() -> tuple[list[str], list[int]]:
    with FIXTURE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["review_body"] for row in rows], [LABELS.index(row["verdict"]) for row in rows]


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory) -> Path:
    """A one-layer MiniLM classifier fitted for a few steps on the review fixture, so its answers have margins."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tiny_encoder(tmp_path_factory.mktemp("tiny") / "model", "sequence", LABELS)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    texts, labels = reviews()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(45):
        idx = torch.randint(len(texts), (16,)).tolist()
        batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=64, padding=True, return_tensors="pt")
        loss = model(**batch, labels=torch.tensor([labels[i] for i in idx])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def untrained_fp32(tmp_path: Path) -> Predictor:
    """An untrained one-layer classifier in fp32, cut into batches of 3 so that the 8 texts span several batches."""
    return Predictor(tiny_encoder(tmp_path / "model", "sequence", LABELS), precision="fp32", batch_size=3)


def one_by_one(predictor: Predictor, texts: list[str]) -> np.ndarray:
    return np.concatenate([predictor.predict_proba([text]) for text in texts])


def test_length_batches_cover_every_index_once_within_both_limits():
    lengths = [5, 300, 7, 2, 2, 40, 9, 120, 3, 300]
    batches = length_batches(lengths, batch_size=3, max_tokens=400)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(len(batch) <= 3 and max(lengths[i] for i in batch) * len(batch) <= 400 for batch in batches)
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)  # shortest first, so a batch pads only to a length close to its own texts'
    assert [len(batch) for batch in batches][-2:] == [1, 1]  # two 300-token texts would pass 400 tokens together
    assert length_batches([], batch_size=4) == []


def test_batched_predictions_come_back_in_input_order(untrained_fp32: Predictor):
    predictor = untrained_fp32
    batched = predictor.predict_proba(TEXTS)
    np.testing.assert_allclose(batched, one_by_one(predictor, TEXTS), atol=1e-5)
    reversed_order = predictor.predict_proba(TEXTS[::-1])
    np.testing.assert_allclose(reversed_order[::-1], batched, atol=1e-5)
    # The model's own answer for each text, tokenized alone and unpadded: what the sorted batches must give back.
    with torch.inference_mode():
        for text, row in zip(TEXTS, batched, strict=True):
            enc = predictor.tokenizer(text, truncation=True, max_length=predictor.max_length, return_tensors="pt")
            np.testing.assert_allclose(predictor.model(**enc).logits.softmax(-1)[0].numpy(), row, atol=1e-5)
    assert predict_logits(predictor.model, predictor.tokenizer, [], max_length=32).shape == (0, len(LABELS))


def test_bf16_gives_fp32_labels_and_probabilities_within_tolerance(trained_classifier: Path):
    texts, _ = reviews()
    texts = texts[:48] + TEXTS
    fp32 = Predictor(trained_classifier, precision="fp32")
    bf16 = Predictor(trained_classifier, precision="bf16")
    assert fp32.model.dtype == torch.float32 and bf16.model.dtype == torch.bfloat16
    logits = predict_logits(bf16.model, bf16.tokenizer, texts, max_length=bf16.max_length)
    assert logits.dtype == np.float32
    reference, probs = fp32.predict_proba(texts), bf16.predict_proba(texts)
    assert np.abs(reference - probs).max() < 0.03
    confident = np.abs(reference[:, 0] - reference[:, 1]) > 0.1
    assert confident.sum() > len(texts) // 2, "the fitted model should be sure of most reviews"
    assert (probs.argmax(1) == reference.argmax(1))[confident].all()
    # Batching changes only bf16 rounding: each text alone gives the same answer within that rounding.
    assert np.abs(one_by_one(bf16, texts) - probs).max() < 0.02
    assert [r["label"] for r in bf16.classify(texts)] == [LABELS[i] for i in probs.argmax(1)]


def test_int8_quantizes_every_linear_layer_and_keeps_confident_labels(trained_classifier: Path):
    texts, _ = reviews()
    texts = texts[:48]
    fp32 = Predictor(trained_classifier, precision="fp32")
    int8 = Predictor(trained_classifier, precision="int8")
    assert int8.precision == "int8"
    kinds = {type(m) for m in int8.model.modules()}
    assert torch.ao.nn.quantized.dynamic.Linear in kinds and torch.nn.Linear not in kinds
    reference, probs = fp32.predict_proba(texts), int8.predict_proba(texts)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert np.abs(reference - probs).max() < 0.15
    sure = np.abs(reference[:, 0] - reference[:, 1]) > 0.3
    assert (probs.argmax(1) == reference.argmax(1))[sure].all()


def test_auto_precision_is_bf16_only_where_the_device_runs_it_fast(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: True)
    assert resolve_inference_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    assert resolve_inference_precision("auto", "cpu") == "fp32"
    assert resolve_inference_precision("bf16", "cpu") == "bf16"  # asked for: slow there, but it runs
    assert resolve_inference_precision("int8", "cpu") == "int8"
    with pytest.raises(ValueError, match="'int8' .* runs on the CPU only, not cuda"):
        resolve_inference_precision("int8", "cuda")
    with pytest.raises(ValueError, match=r"precision 'fp16' is not one of auto, fp32, bf16, int8"):
        resolve_inference_precision("fp16", "cpu")


def test_predict_cli_offers_the_engine_precisions():
    from ui.cli import PREDICT_PRECISIONS

    assert PREDICT_PRECISIONS == INFERENCE_PRECISIONS


def test_threads_are_lowered_to_the_physical_cores_and_never_raised():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(physical_cores() + 3)
        assert limit_threads_to_cores() == physical_cores() == torch.get_num_threads()
        torch.set_num_threads(1)
        assert limit_threads_to_cores() == 1  # a count below the cores was chosen by someone: left alone
    finally:
        torch.set_num_threads(before)


def test_tagger_batches_give_one_by_one_answers_in_input_order(tmp_path: Path):
    predictor = Predictor(tiny_encoder(tmp_path / "ner", "token", NER_LABELS), precision="fp32", batch_size=2)
    texts = ["Zoë Müller flew from Zürich to São Paulo.", "李明住在北京。", "", "Ann " * 200, "   spaces   around   "]
    assert predictor.tag(texts) == [predictor.tag(text)[0] for text in texts]
    sentences = [text.split() for text in texts]
    tags = predictor.tag_words(sentences)
    assert tags == [predictor.tag_words([words])[0] for words in sentences]
    assert [len(t) for t in tags] == [len(words) for words in sentences]  # truncated words are tagged 'O'
    assert predictor.tag([]) == [] and predictor.tag_words([]) == []
