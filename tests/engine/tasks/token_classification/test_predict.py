"""Prediction and evaluation of an entity tagger: spans point into the raw text, scores agree with seqeval."""

from __future__ import annotations

from pathlib import Path

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from engine.errors import DataError
from engine.evaluation import evaluate
from engine.predict import Predictor, predict_file
from engine.tasks.token_classification.files import read_conll
from engine.tasks.token_classification.metrics import repair_predictions

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "ner"
TYPES = ["LOC", "MISC", "ORG", "PER"]
LABELS = ["O", *(f"{p}-{t}" for t in TYPES for p in ("B", "I"))]
TEXTS = ["Zoë Müller flew from Zürich to São Paulo.", "李明住在北京，在清华大学工作。", "", "   spaces   around   "]


def test_tag_gives_spans_whose_offsets_cut_the_raw_text(encoder_factory):
    predictor = Predictor(encoder_factory("token", LABELS))
    assert predictor.task == "token-classification"
    spans = predictor.tag(TEXTS)
    assert len(spans) == len(TEXTS) and spans[2] == []
    found = [span for text, per_text in zip(TEXTS, spans, strict=True) for span in per_text if (span, text)]
    assert found, "an untrained tagger with random weights still marks something in four texts"
    for text, per_text in zip(TEXTS, spans, strict=True):
        for span in per_text:
            assert text[span["start"] : span["end"]] == span["text"] and span["type"] in TYPES
            assert 0 < span["score"] <= 1
    assert predictor.serve({"texts": TEXTS})["entities"] == spans
    with pytest.raises(ValueError, match=r"use tag\(\) for it, not classify\(\)"):
        predictor.classify(TEXTS)


def test_evaluate_on_conll_matches_seqeval_on_the_same_predictions(encoder_factory, tmp_path: Path):
    model_dir = encoder_factory("token", LABELS)
    predictor = Predictor(model_dir)
    tokens, gold, _ = read_conll(FIXTURES / "en.conll")
    report = evaluate(model_dir, FIXTURES / "en.conll", output=tmp_path / "ner.json", predictor=predictor)
    # The report reads a predicted I- that continues no entity as starting one (and counts it); so does this.
    predicted = [repair_predictions(sentence) for sentence in predictor.tag_words(tokens)]
    expected = f1_score(gold, predicted, mode="strict", scheme=IOB2, average="micro", zero_division=0)
    assert report["task"] == "token-classification"
    assert report["metrics"]["micro_f1"] == pytest.approx(expected, abs=1e-6)
    assert report["n_test"] == len(tokens)
    assert (tmp_path / "ner.md").is_file()


def test_a_file_with_types_the_tagger_never_learned_is_refused(encoder_factory, tmp_path: Path):
    predictor = Predictor(encoder_factory("token", ["O", "B-PER", "I-PER"]))
    with pytest.raises(DataError, match=r"entity types \[.*'LOC'.*\] in en.conll are not among the model's types"):
        evaluate(predictor.model_dir, FIXTURES / "en.conll", predictor=predictor)


def test_predict_file_writes_spans_per_row(encoder_factory, tmp_path: Path):
    predictor = Predictor(encoder_factory("token", LABELS))
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(f'{{"text": "{t}"}}\n' for t in TEXTS[:2]), encoding="utf-8")
    output = tmp_path / "spans.jsonl"
    assert predict_file(predictor, source, output) == 2
    import json

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows] == TEXTS[:2]
    assert [row["entities"] for row in rows] == predictor.tag(TEXTS[:2])
