"""Token classification end to end on the packaged encoder: sub-word alignment, a run whose loss falls, spans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from engine.catalog import resolve_model
from engine.predict import Predictor
from engine.spec import JobSpec
from engine.tasks.token_classification.recipe import IGNORE, align_tags
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "ner"


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))


def test_first_sub_token_of_each_word_carries_the_tag(tokenizer):
    words = ["Wojciechowski", "visited", "Szczebrzeszyn", "."]
    tags = [1, 0, 3, 0]  # B-PER, O, B-LOC, O
    enc = tokenizer(words, is_split_into_words=True)
    pieces = [len(tokenizer.tokenize(w)) for w in words]
    assert pieces[0] > 1 and pieces[2] > 1  # the test is about words that split
    labels = align_tags(enc.word_ids(), tags)
    assert labels[0] == IGNORE and labels[-1] == IGNORE  # [CLS] and [SEP]
    body = labels[1:-1]
    expected = []
    for word_tag, n in zip(tags, pieces, strict=True):
        expected += [word_tag] + [IGNORE] * (n - 1)
    assert body == expected


@pytest.mark.slow
def test_tiny_ner_run_learns_and_tags_raw_text(tmp_path):
    spec = JobSpec.from_dict(
        {
            "task": "token-classification",
            "data": {"train": str(FIXTURES / "en.conll")},
            "params": {"epochs": 6, "learning_rate": 3e-4, "batch_size": 8, "max_length": 64, "seed": 3},
        }
    )
    events = []
    result = train(spec, tmp_path / "ner", on_event=events.append)
    losses = [e.loss for e in events if e.kind == "log"]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])

    report = json.loads((tmp_path / "ner" / "report.json").read_text(encoding="utf-8"))
    assert report["task"] == "token-classification"
    assert set(report["labels"]) == {"LOC", "MISC", "ORG", "PER"}
    gold_entities = report["data"]["splits"]["test"]["entities"]
    assert sum(row["support"] for row in report["per_class"].values()) == gold_entities
    assert 0.6 < report["metrics"]["micro_f1"] <= 1.0
    assert set(report["error_kinds"]) == {"missed", "spurious", "wrong_type", "wrong_boundary"}
    assert "micro_f1" in report["baseline"]

    predictor = Predictor(result.model_dir)
    assert predictor.task == "token-classification"
    text = "Last spring Anna Kowalski flew from Lisbon to meet engineers at Siemens."
    [spans] = predictor.tag(text)
    assert spans, "the model found no entity in a sentence full of them"
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
        assert span["type"] in report["labels"]
        assert 0 < span["score"] <= 1
    with pytest.raises(ValueError, match="use tag"):
        predictor.classify(text)

    # The same model scored on a tagged file, and run over a file of raw texts.
    from engine.evaluation import evaluate
    from engine.predict import predict_file

    scored = evaluate(result.model_dir, FIXTURES / "en.conll", output=tmp_path / "eval" / "report.json")
    assert scored["task"] == "token-classification"
    assert sum(row["support"] for row in scored["per_class"].values()) == scored["data"]["entities"]
    assert (tmp_path / "eval" / "report.md").is_file()
    (tmp_path / "in.csv").write_text(f"text\n{text}\nno names at all here\n", encoding="utf-8")
    assert predict_file(predictor, tmp_path / "in.csv", tmp_path / "out.jsonl", text_column=None) == 2
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["entities"] == spans
