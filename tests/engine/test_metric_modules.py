"""The project's own evaluate modules: they load offline from their folders and give scikit-learn's and seqeval's
numbers, and the report's metrics are theirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import evaluate
import numpy as np
import pytest
from seqeval.metrics import accuracy_score as seqeval_accuracy
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from engine.metrics import classification_metrics, metric_module, metric_module_path
from engine.tasks.token_classification.metrics import entity_metrics

ROOT = Path(__file__).resolve().parents[2]

# Imbalanced (12 / 5 / 2 / 1), "neutre" never predicted, "mixte" in neither: only `labels` keeps it in the averages.
NAMES = ["négatif", "正面", "neutre", "😐 autre", "mixte"]
TRUE = ["négatif"] * 12 + ["正面"] * 5 + ["neutre"] * 2 + ["😐 autre"]
PRED = ["négatif"] * 10 + ["正面"] * 2 + ["正面"] * 3 + ["négatif"] * 2 + ["négatif", "正面"] + ["😐 autre"]

GOLD_TAGS = [
    ["B-人名", "I-人名", "O", "B-LOC"],
    ["B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC"],
    ["O", "O", "B-人名"],
    ["B-LOC", "O", "B-ORG"],
]
PRED_TAGS = [
    ["B-人名", "I-人名", "O", "B-ORG"],  # one right, one wrong type
    ["B-ORG", "I-ORG", "O", "O", "I-LOC", "I-LOC"],  # a cut boundary; a dangling I-LOC is no entity in strict IOB2
    ["O", "O", "B-人名"],
    ["O", "O", "O"],  # two missed: ORG is never predicted right
]


def _sklearn(true: list, pred: list, labels: list) -> dict:
    out = {"accuracy": accuracy_score(true, pred)}
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(true, pred, labels=labels, average=average, zero_division=0)
        out.update({f"{average}_precision": p, f"{average}_recall": r, f"{average}_f1": f})
    return out


@pytest.fixture(scope="module")
def classification():
    return evaluate.load(str(metric_module_path("classification")))


@pytest.fixture(scope="module")
def entities():
    return evaluate.load(str(metric_module_path("entities")))


def test_metric_module_paths_are_folders_evaluate_loads_and_unknown_names_say_what_exists():
    for name in ("classification", "entities"):
        folder = metric_module_path(name)
        assert folder.is_dir() and (folder / f"{name}.py").is_file()
        assert folder.is_relative_to(ROOT / "engine")  # shipped inside the package, not fetched
    with pytest.raises(
        ValueError, match=r"no metric module 'seqeval'; the project ships \['classification', 'entities'\]"
    ):
        metric_module_path("seqeval")


def test_classification_module_equals_sklearn_on_unicode_imbalanced_labels(classification):
    scores = classification.compute(predictions=PRED, references=TRUE, labels=NAMES)
    expected = _sklearn(TRUE, PRED, NAMES)
    assert {key: scores[key] for key in expected} == pytest.approx(expected)
    p, r, f, s = precision_recall_fscore_support(TRUE, PRED, labels=NAMES, average=None, zero_division=0)
    assert scores["labels"] == NAMES
    assert list(scores["per_class"]) == NAMES
    for i, name in enumerate(NAMES):
        row = scores["per_class"][name]
        assert row == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert scores["confusion_matrix"] == confusion_matrix(TRUE, PRED, labels=NAMES).tolist()
    assert scores["per_class"]["mixte"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["per_class"]["neutre"]["support"] == 2 and scores["per_class"]["neutre"]["recall"] == 0.0
    assert json.loads(json.dumps(scores, ensure_ascii=False)) == scores  # plain JSON types


def test_labels_keep_absent_classes_in_the_averages(classification):
    listed = classification.compute(predictions=PRED, references=TRUE, labels=NAMES)
    seen = classification.compute(predictions=PRED, references=TRUE)
    assert seen["labels"] == sorted(set(TRUE) | set(PRED))  # "mixte" is in neither
    assert seen["macro_f1"] == pytest.approx(_sklearn(TRUE, PRED, seen["labels"])["macro_f1"])
    assert listed["macro_f1"] == pytest.approx(seen["macro_f1"] * 4 / 5)  # the fifth class adds a zero
    assert listed["accuracy"] == seen["accuracy"] == pytest.approx(14 / 20)


def test_classification_module_takes_class_ids_and_keeps_digit_labels_as_text(classification):
    true_ids = [NAMES.index(name) for name in TRUE]
    pred_ids = np.array([NAMES.index(name) for name in PRED])  # numpy, as the Trainer hands them over
    by_id = classification.compute(predictions=pred_ids, references=true_ids, labels=list(range(5)))
    by_name = classification.compute(predictions=PRED, references=TRUE, labels=NAMES)
    assert by_id["per_class"] == {i: by_name["per_class"][name] for i, name in enumerate(NAMES)}
    assert by_id["confusion_matrix"] == by_name["confusion_matrix"]
    digits = classification.compute(predictions=["1", "10", "2"], references=["1", "2", "2"])
    assert digits["labels"] == ["1", "10", "2"]  # sorted as text: "10" stayed a string


def test_engine_classification_metrics_equal_sklearn_on_class_ids():
    true_ids = [NAMES.index(name) for name in TRUE]
    pred_ids = [NAMES.index(name) for name in PRED]
    ids = list(range(len(NAMES)))
    result = classification_metrics(true_ids, pred_ids, NAMES)
    expected = _sklearn(true_ids, pred_ids, ids)
    assert list(result["metrics"]) == [
        "accuracy",
        "macro_f1",
        "micro_f1",
        "weighted_f1",
        "macro_precision",
        "macro_recall",
    ]
    assert result["metrics"] == pytest.approx({key: expected[key] for key in result["metrics"]})
    _, _, f, s = precision_recall_fscore_support(true_ids, pred_ids, labels=ids, average=None, zero_division=0)
    assert [row["f1"] for row in result["per_class"].values()] == pytest.approx(f.tolist())
    assert [row["support"] for row in result["per_class"].values()] == s.tolist()
    assert result["confusion_matrix"] == {
        "labels": NAMES,
        "matrix": confusion_matrix(true_ids, pred_ids, labels=ids).tolist(),
    }
    assert metric_module("classification") is metric_module("classification")  # loaded once per process


def test_entities_module_equals_seqeval_strict_iob2(entities):
    scores = entities.compute(predictions=PRED_TAGS, references=GOLD_TAGS)
    for average in ("micro", "macro", "weighted"):
        kwargs = {"average": average, "mode": "strict", "scheme": IOB2, "zero_division": 0}
        assert scores[f"{average}_precision"] == pytest.approx(seqeval_precision(GOLD_TAGS, PRED_TAGS, **kwargs))
        assert scores[f"{average}_recall"] == pytest.approx(seqeval_recall(GOLD_TAGS, PRED_TAGS, **kwargs))
        assert scores[f"{average}_f1"] == pytest.approx(seqeval_f1(GOLD_TAGS, PRED_TAGS, **kwargs))
    assert scores["micro_precision"] == pytest.approx(2 / 4) and scores["micro_recall"] == pytest.approx(2 / 7)
    assert scores["token_accuracy"] == pytest.approx(seqeval_accuracy(GOLD_TAGS, PRED_TAGS))
    report = seqeval_report(GOLD_TAGS, PRED_TAGS, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    assert list(scores["per_type"]) == ["LOC", "ORG", "人名"]
    for name, row in scores["per_type"].items():
        want = report[name]
        assert row == pytest.approx(
            {
                "precision": want["precision"],
                "recall": want["recall"],
                "f1": want["f1-score"],
                "support": want["support"],
            }
        )


def test_entities_module_without_entities_scores_zero_and_rejects_unknown_schemes(entities):
    scores = entities.compute(predictions=[["O", "O"], ["O"]], references=[["O", "O"], ["O"]])
    assert scores["micro_f1"] == scores["macro_f1"] == 0.0 and scores["per_type"] == {}
    assert scores["token_accuracy"] == 1.0
    with pytest.raises(ValueError, match="scheme 'IOB1' is not one strict mode reads"):
        entities.compute(predictions=[["B-X"]], references=[["B-X"]], scheme="IOB1")


def test_engine_entity_metrics_are_the_modules(entities):
    scores = entities.compute(predictions=PRED_TAGS, references=GOLD_TAGS)
    result = entity_metrics(GOLD_TAGS, PRED_TAGS, entity_types=["LOC", "ORG", "人名", "MISC"])
    for key in ("micro_f1", "macro_f1", "weighted_f1", "micro_precision", "macro_recall", "token_accuracy"):
        assert result["metrics"][key] == scores[key]
    assert {name: result["per_class"][name] for name in scores["per_type"]} == scores["per_type"]
    assert result["per_class"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


PROBE = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network used: " + repr(args))
socket.socket.connect = refuse
socket.create_connection = refuse
import evaluate
folders = json.loads(sys.argv[1])
out = {
    "classification": evaluate.load(folders[0]).compute(predictions=[1, 0], references=[1, 1], labels=[0, 1, 2]),
    "entities": evaluate.load(folders[1]).compute(predictions=[["B-X", "O"]], references=[["B-X", "I-X"]]),
}
print(json.dumps(out))
"""


def test_modules_load_offline_with_a_cold_cache_and_no_network(tmp_path: Path):
    # A fresh interpreter with an empty Hugging Face cache, sockets refused: a load that tried the Hub would fail.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    env.pop("HF_MODULES_CACHE", None)
    env.pop("HF_EVALUATE_CACHE", None)
    folders = json.dumps([str(metric_module_path("classification")), str(metric_module_path("entities"))])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, folders], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["classification"]["macro_recall"] == pytest.approx((0 + 0.5 + 0) / 3)
    assert out["entities"]["micro_f1"] == 0.0 and out["entities"]["token_accuracy"] == 0.5
    # evaluate copies the scripts into its modules cache, under the HF_HOME it was given.
    copies = tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics"
    assert sorted(path.name for path in copies.iterdir() if path.is_dir()) == ["classification", "entities"]
