"""Prediction and evaluation of a text classifier, on messy files, checked against the model's own logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.errors import DataError
from engine.evaluation import evaluate
from engine.predict import Predictor, predict_file

LABELS = ["négatif", "positif", "mitigé"]
# Short and very long texts with accents: batches are formed by length, so order bugs would show.
TEXTS = [
    "Très bon film, émouvant et drôle.",
    "Ennuyeux. " * 400,
    "Un scénario décousu, mais des acteurs formidables à Noël.",
    "ça",
    "L'été dernier, à Besançon, j'ai vu pire ; bien pire.",
]


def reference_probs(predictor: Predictor, texts: list[str]) -> np.ndarray:
    """Each text alone, through the tokenizer and model directly: what the batched predictor must match."""
    rows = []
    with torch.inference_mode():
        for text in texts:
            batch = predictor.tokenizer(text, truncation=True, max_length=predictor.max_length, return_tensors="pt")
            rows.append(torch.softmax(predictor.model(**batch).logits.float(), -1).numpy()[0])
    return np.stack(rows)


def test_classify_pairs_each_text_with_its_own_probabilities(encoder_factory):
    predictor = Predictor(encoder_factory("sequence", LABELS), precision="fp32")  # exact: bf16 rounds batches apart
    assert (predictor.task, predictor.labels) == ("text-classification", LABELS)
    results = predictor.classify(TEXTS)
    expected = reference_probs(predictor, TEXTS)
    for result, row in zip(results, expected, strict=True):
        assert list(result["scores"]) == LABELS
        assert np.allclose(list(result["scores"].values()), row, atol=1e-4)
        assert result["label"] == LABELS[int(row.argmax())]
    assert predictor.serve({"text": TEXTS[0]})["predictions"][0] == results[0]
    with pytest.raises(ValueError, match=r"is a text-classification model; use classify\(\) for it, not tag\(\)"):
        predictor.tag(TEXTS)
    with pytest.raises(ValueError, match="send 'text' or 'texts', not messages"):
        predictor.serve({"messages": [{"role": "user", "content": "salut"}]})


def test_predict_file_keeps_rows_in_order_and_accents(encoder_factory, tmp_path: Path):
    predictor = Predictor(encoder_factory("sequence", LABELS))
    source = tmp_path / "avis.csv"
    source.write_bytes(pd.DataFrame({"id": range(len(TEXTS)), "avis": TEXTS}).to_csv(index=False).encode("utf-8"))
    output = tmp_path / "out.csv"
    assert predict_file(predictor, source, output, text_column="avis") == len(TEXTS)
    written = pd.read_csv(output)
    assert list(written["avis"]) == TEXTS  # decoded right and kept in the input's order
    expected = reference_probs(predictor, TEXTS)
    assert list(written["predicted"]) == [LABELS[i] for i in expected.argmax(1)]
    assert np.allclose(written[[f"p_{label}" for label in LABELS]].to_numpy(), expected, atol=1e-4)
    assert not list(tmp_path.glob(".*partial"))  # written beside the target and renamed
    with pytest.raises(ValueError, match=r"use a \.csv or \.jsonl file name"):
        predict_file(predictor, source, tmp_path / "out.xlsx", text_column="avis")


def test_evaluate_on_a_labeled_file_reports_what_the_predictions_say(encoder_factory, tmp_path: Path):
    model_dir = encoder_factory("sequence", LABELS)
    predictor = Predictor(model_dir)
    labels = ["positif", "négatif", "mitigé", "positif", "négatif"]
    data = tmp_path / "test.csv"
    data.write_bytes(pd.DataFrame({"avis": TEXTS, "verdict": labels}).to_csv(index=False).encode("utf-8"))
    report = evaluate(model_dir, data, output=tmp_path / "eval.json", predictor=predictor)
    predicted = [LABELS[i] for i in reference_probs(predictor, TEXTS).argmax(1)]
    accuracy = np.mean([p == t for p, t in zip(predicted, labels, strict=True)])
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert report["n_test"] == 5 and report["baseline"] is None  # no spec.json beside it: nothing to refit
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == 5
    assert "mitigé" in (tmp_path / "eval.md").read_text(encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("avis,verdict\nBien,excellent\nMal,positif\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels \['excellent'\] in bad.csv are not among the model's labels"):
        evaluate(model_dir, bad, predictor=predictor)
