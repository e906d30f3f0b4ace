"""Entity-level NER metrics, error kinds, the most-frequent-tag baseline, the Trainer hook and the NER report."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.spec import DataSpec
from engine.tasks.token_classification.data import load_token_classification_data
from engine.tasks.token_classification.metrics import (
    entity_metrics,
    error_examples,
    join_tokens,
    most_frequent_tag_baseline,
    repair_predictions,
    trainer_compute_metrics,
)
from engine.tasks.token_classification.report import build_token_classification_report, render_ner_markdown

EN = Path(__file__).resolve().parents[3] / "fixtures" / "ner" / "en.conll"

# Three sentences holding one error of each kind, worked out by hand below.
TOKENS = [
    ["John", "Smith", "lives", "in", "New", "York", "."],
    ["Acme", "Corp", "hired", "Mary", "in", "Paris"],
    ["It", "rained", "in", "April"],
]
GOLD = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"],
    ["B-ORG", "I-ORG", "O", "B-PER", "O", "B-LOC"],
    ["O", "O", "O", "O"],
]
PRED = [
    ["B-PER", "O", "O", "O", "B-LOC", "I-LOC", "O"],  # "John" for "John Smith": wrong boundary; New York right
    ["B-LOC", "I-LOC", "O", "B-PER", "O", "O"],  # Acme Corp as LOC: wrong type; Mary right; Paris missed
    ["O", "O", "O", "B-MISC"],  # April: spurious
]


def test_entity_metrics_match_hand_computed_strict_scores():
    scores = entity_metrics(GOLD, PRED)
    # Gold: PER 2, LOC 2, ORG 1. Predicted: PER 2 (John, Mary), LOC 2 (New York, Acme Corp), MISC 1.
    # Exact matches: New York (LOC) and Mary (PER). The boundary error costs one FN and one FP.
    per_class = scores["per_class"]
    assert per_class["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per_class["LOC"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per_class["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_class["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    metrics = scores["metrics"]
    assert metrics["micro_precision"] == pytest.approx(2 / 5)
    assert metrics["micro_recall"] == pytest.approx(2 / 5)
    assert metrics["micro_f1"] == pytest.approx(2 / 5)
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0 + 0 + 0.5) / 4)  # over LOC, MISC, ORG, PER
    assert metrics["macro_precision"] == metrics["macro_recall"] == pytest.approx(0.25)
    assert metrics["weighted_f1"] == pytest.approx((2 * 0.5 + 1 * 0 + 2 * 0.5) / 5)
    # Wrong tokens: Smith; Acme, Corp, Paris; April -> 12 of 17 right.
    assert metrics["token_accuracy"] == metrics["accuracy"] == pytest.approx(12 / 17)
    assert list(metrics) == [
        "micro_f1",
        "macro_f1",
        "weighted_f1",
        "micro_precision",
        "micro_recall",
        "macro_precision",
        "macro_recall",
        "token_accuracy",
        "accuracy",
    ]
    assert scores["error_kinds"] == {"missed": 1, "spurious": 1, "wrong_type": 1, "wrong_boundary": 1}


def test_confusion_matrix_cells_and_sums():
    matrix = entity_metrics(GOLD, PRED)["confusion_matrix"]
    assert matrix["labels"] == ["LOC", "MISC", "ORG", "PER", "O"]
    cell = {
        (g, p): matrix["matrix"][i][j] for i, g in enumerate(matrix["labels"]) for j, p in enumerate(matrix["labels"])
    }
    assert cell["LOC", "LOC"] == 1 and cell["LOC", "O"] == 1  # New York found, Paris missed
    assert cell["ORG", "LOC"] == 1  # Acme Corp: right span, wrong type
    assert cell["PER", "PER"] == 1 and cell["PER", "O"] == 1  # Mary found; John Smith has no exact prediction
    assert cell["O", "PER"] == 1 and cell["O", "MISC"] == 1  # "John" and "April" match no gold span
    assert sum(sum(row) for row in matrix["matrix"]) == 7
    # Rows add up to gold entities per type, columns to predicted ones, so P and R read straight off the matrix.
    assert [sum(row) for row in matrix["matrix"][:4]] == [2, 0, 1, 2]
    assert [sum(row[j] for row in matrix["matrix"]) for j in range(4)] == [2, 1, 0, 2]


def test_strict_matching_counts_a_boundary_error_as_a_miss_and_a_false_alarm():
    scores = entity_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert scores["per_class"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["metrics"]["token_accuracy"] == pytest.approx(2 / 3)
    assert scores["error_kinds"] == {"missed": 0, "spurious": 0, "wrong_type": 0, "wrong_boundary": 1}


def test_entity_types_absent_from_the_split_are_listed_without_changing_averages():
    plain = entity_metrics([["B-PER", "O"]], [["B-PER", "O"]])
    listed = entity_metrics([["B-PER", "O"]], [["B-PER", "O"]], entity_types=["LOC", "PER"])
    assert listed["per_class"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert listed["metrics"] == plain["metrics"] and plain["metrics"]["macro_f1"] == 1.0
    assert listed["confusion_matrix"]["labels"] == ["LOC", "PER", "O"]


def test_an_i_tag_without_b_is_no_entity_in_strict_mode_until_repaired():
    gold, raw = [["B-LOC", "I-LOC"]], [["I-LOC", "I-LOC"]]
    assert entity_metrics(gold, raw)["metrics"]["micro_f1"] == 0.0
    assert entity_metrics(gold, raw)["error_kinds"]["missed"] == 1
    assert repair_predictions(raw[0]) == ["B-LOC", "I-LOC"]
    assert entity_metrics(gold, [repair_predictions(raw[0])])["metrics"]["micro_f1"] == 1.0


def test_entity_metrics_with_no_entities_anywhere_are_zero_without_warnings(recwarn):
    scores = entity_metrics([["O", "O"]], [["O", "O"]])
    assert scores["metrics"]["micro_f1"] == 0.0 and scores["metrics"]["token_accuracy"] == 1.0
    assert scores["per_class"] == {} and not recwarn.list


def test_entity_metrics_reject_mismatched_or_non_iob2_input():
    with pytest.raises(ValueError, match=r"y_true has 1 sentences but y_pred has 2"):
        entity_metrics([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match=r"sentence 0: 2 gold tags but 1 predicted"):
        entity_metrics([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match=r"y_pred holds tag 'S-PER'; scoring needs IOB2 tags"):
        entity_metrics([["B-PER"]], [["S-PER"]])


def test_error_examples_show_each_kind_commonest_first_and_limited():
    tokens = [*TOKENS, ["Ann", "met", "Bo"], ["Cy", "left"]]
    gold = [*GOLD, ["B-PER", "O", "B-PER"], ["B-PER", "O"]]
    pred = [*PRED, ["O", "O", "O"], ["O", "O"]]  # three more missed people
    examples = error_examples(tokens, gold, pred, limit_per_kind=2)
    assert [e["kind"] for e in examples] == ["missed", "missed", "spurious", "wrong_type", "wrong_boundary"]
    assert examples[0] == {
        "kind": "missed",
        "sentence_index": 1,
        "sentence": "Acme Corp hired Mary in Paris",
        "entity": "Paris",
        "gold": "LOC",
        "predicted": "O",
        "predicted_entity": None,
        "start": 5,
        "end": 6,
    }
    boundary = examples[-1]
    assert (boundary["entity"], boundary["gold"], boundary["predicted"], boundary["predicted_entity"]) == (
        "John Smith",
        "PER",
        "PER",
        "John",
    )
    spurious = examples[2]
    assert (spurious["entity"], spurious["gold"], spurious["predicted"]) == ("April", "O", "MISC")


def test_chinese_characters_join_without_spaces():
    assert join_tokens(list("张伟在北京工作")) == "张伟在北京工作"
    assert join_tokens(["New", "York"]) == "New York"
    example = error_examples([list("张伟在北京")], [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]], [["O"] * 5])[0]
    assert (example["sentence"], example["entity"]) == ("张伟在北京", "张伟")


# --- Trainer hook --------------------------------------------------------------------------------------------------

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def _logits(ids: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(ids), len(ids[0]), len(LABELS)), dtype=np.float32)
    for i, row in enumerate(ids):
        for j, label in enumerate(row):
            out[i, j, label] = 5.0
    return out


def test_trainer_compute_metrics_ignores_positions_labelled_minus_100():
    compute = trainer_compute_metrics(LABELS)
    # [CLS] Ann ##a Lee visits Oslo [SEP] pad: only first sub-tokens carry labels.
    label_ids = np.array([[-100, 3, -100, 4, 0, 1, -100, -100], [-100, 1, 2, 0, -100, -100, -100, -100]])
    # Predictions at ignored positions are wild (B-LOC everywhere); they must not count.
    predicted = np.where(label_ids == -100, 1, label_ids)
    scores = compute(SimpleNamespace(predictions=_logits(predicted.tolist()), label_ids=label_ids))
    assert scores["micro_f1"] == 1.0 and scores["token_accuracy"] == 1.0
    assert all(isinstance(value, float) for value in scores.values())
    assert {"micro_f1", "macro_f1", "weighted_f1", "token_accuracy", "accuracy"} <= set(scores)

    # One mistake on a counted position: "Oslo" predicted O. PER found (1/1), LOC 1 of 2 found.
    wrong = predicted.copy()
    wrong[0, 5] = 0
    scores = compute(SimpleNamespace(predictions=(_logits(wrong.tolist()), None), label_ids=label_ids))
    assert scores["micro_precision"] == 1.0
    assert scores["micro_recall"] == pytest.approx(2 / 3)
    assert scores["token_accuracy"] == pytest.approx(6 / 7)
    # Ids already reduced by preprocess_logits_for_metrics give the same scores.
    assert compute(SimpleNamespace(predictions=wrong, label_ids=label_ids)) == scores


def test_trainer_compute_metrics_reads_a_stray_i_tag_as_an_entity_start():
    compute = trainer_compute_metrics(LABELS)
    label_ids = np.array([[-100, 3, 4, -100]])
    predicted = np.array([[0, 4, 4, 0]])  # I-PER I-PER: read as B-PER I-PER, as the playground shows it
    assert compute(SimpleNamespace(predictions=_logits(predicted.tolist()), label_ids=label_ids))["micro_f1"] == 1.0


# --- baseline ------------------------------------------------------------------------------------------------------


def test_most_frequent_tag_baseline_on_a_small_fixture():
    train_tokens = [["Ann", "lives", "in", "Oslo"], ["Ann", "Lee", "left", "Oslo"], ["Lee", "saw", "Ann"]]
    train_tags = [["B-PER", "O", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "B-PER"]]
    # "Lee" is I-PER once and B-PER once: a tie, broken alphabetically to B-PER. "Rome" is unseen: O.
    test_tokens = [["Ann", "Lee", "visited", "Oslo"], ["Bo", "left", "Rome"]]
    test_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "B-LOC"]]
    baseline = most_frequent_tag_baseline(train_tokens, train_tags, test_tokens, test_tags)
    # Predicted: [B-PER B-PER O B-LOC], [O O O]. Entities found: Oslo only; Ann and Lee are 2 false PERs.
    assert baseline["name"] == "most frequent tag per word"
    assert baseline["micro_f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert baseline["per_class_f1"] == {"LOC": pytest.approx(2 / 3), "PER": 0.0}
    assert baseline["macro_f1"] == pytest.approx(1 / 3)
    # Right tokens: Ann, visited, Oslo; left. Wrong: Lee (B- for I-), Bo, Rome.
    assert baseline["token_accuracy"] == baseline["accuracy"] == pytest.approx(4 / 7)


def test_most_frequent_tag_baseline_repairs_stray_i_tags_before_scoring():
    baseline = most_frequent_tag_baseline([["York", "New"]], [["I-LOC", "B-LOC"]], [["York"]], [["B-LOC"]])
    assert baseline["micro_f1"] == 1.0  # "York" alone predicted I-LOC, read as B-LOC


@pytest.fixture(scope="module")
def english():
    return load_token_classification_data(DataSpec(train=str(EN)))


def _tags(dataset, labels: list[str]) -> list[list[str]]:
    return [[labels[i] for i in row] for row in dataset["tags"]]


def test_baseline_on_the_english_fixture_is_informative_but_imperfect(english):
    train, test = english.train, english.test
    baseline = most_frequent_tag_baseline(
        train["tokens"], _tags(train, english.labels), test["tokens"], _tags(test, english.labels)
    )
    assert 0.3 < baseline["micro_f1"] < 1.0
    assert baseline["token_accuracy"] > 0.8


# --- report --------------------------------------------------------------------------------------------------------


def _report(english, *, predicted=None, baseline=None, train_info=None) -> dict:
    test = english.test
    gold = _tags(test, english.labels)
    return build_token_classification_report(
        base_model="minilm-l6",
        labels=english.labels,
        entity_types=english.entity_types,
        test_tokens=test["tokens"],
        y_true_tags=gold,
        y_pred_tags=predicted or gold,
        baseline=baseline,
        data_summary=english.summary,
        train_info=train_info,
    )


def test_build_report_has_the_classification_keys_plus_error_kinds(english):
    predicted = _tags(english.test, english.labels)
    predicted[0] = ["O"] * len(predicted[0])  # miss every entity of the first sentence
    report = _report(english, predicted=predicted)
    assert {"task", "base_model", "labels", "metrics", "per_class", "confusion_matrix", "baseline", "errors"} <= set(
        report
    )
    assert {"data", "train", "error_kinds"} <= set(report)
    assert report["task"] == "token-classification"
    assert report["labels"] == ["LOC", "MISC", "ORG", "PER"] and report["tags"] == english.labels
    missed = sum(tag.startswith("B-") for tag in _tags(english.test, english.labels)[0])
    assert report["error_kinds"] == {"missed": missed, "spurious": 0, "wrong_type": 0, "wrong_boundary": 0}
    assert [e["kind"] for e in report["errors"]] == ["missed"] * min(missed, 5)
    json.dumps(report)  # plain JSON types only


def test_build_report_repairs_stray_predicted_i_tags_and_counts_them(english):
    predicted = _tags(english.test, english.labels)
    first = next(i for i, tags in enumerate(predicted) if tags[0].startswith("B-"))
    predicted[first] = ["I-" + predicted[first][0][2:], *predicted[first][1:]]
    report = _report(english, predicted=predicted)
    assert report["prediction_repairs"] == 1
    assert report["metrics"]["micro_f1"] == 1.0


def test_build_report_rejects_tags_outside_the_labels(english):
    predicted = _tags(english.test, english.labels)
    predicted[0][0] = "B-DATE"
    with pytest.raises(ValueError, match=r"y_pred_tags holds tags \['B-DATE'\] that are not among"):
        _report(english, predicted=predicted)


def test_render_ner_markdown_has_every_section(english):
    predicted = _tags(english.test, english.labels)
    predicted[0] = ["O"] * len(predicted[0])
    baseline = {"name": "most frequent tag per word", "micro_f1": 0.5, "macro_f1": 0.4, "per_class_f1": {"PER": 0.3}}
    train_info = {"epochs": 3, "steps": 60, "wall_seconds": 75.0, "device": "cpu"}
    markdown = render_ner_markdown(_report(english, predicted=predicted, baseline=baseline, train_info=train_info))
    for heading in ("# token-classification report: minilm-l6", "## Headline metrics", "## Fine-tuned vs baseline"):
        assert heading in markdown
    for heading in ("## Per entity type", "## Confusion matrix", "## Errors", "### Missed entities: examples"):
        assert heading in markdown
    assert "## Data" in markdown and "## Training" in markdown
    assert "| Micro F1 (entities) |" in markdown and "| Token accuracy |" in markdown
    assert "micro-F1** over most frequent tag per word" in markdown
    assert "| Entity type | Precision | Recall | F1 | Support | Baseline F1 | Note |" in markdown
    assert "| gold \\ predicted | LOC | MISC | ORG | PER | O |" in markdown
    assert "| Missed entities |" in markdown
    assert "| train | en.conll | conll | utf-8 | IOB2 | 150 |" in markdown
    assert "Tag scheme: IOB2." in markdown and "Tag repairs: none." in markdown
    assert "| Wall time | 1 min 15 s |" in markdown


def test_render_ner_markdown_warns_when_the_baseline_wins_and_escapes_pipes(english):
    report = _report(english, baseline={"name": "most frequent tag per word", "micro_f1": 1.0})
    report["metrics"]["micro_f1"] = 0.9
    report["errors"] = [
        {
            "kind": "missed",
            "sentence": "a | b",
            "entity": "b",
            "gold": "PER",
            "predicted": "O",
            "predicted_entity": None,
        }
    ]
    report["error_kinds"] = {"missed": 1, "spurious": 0, "wrong_type": 0, "wrong_boundary": 0}
    markdown = render_ner_markdown(report)
    assert "**Warning: the fine-tuned model is worse than most frequent tag per word** by 0.100" in markdown
    assert "| a \\| b |" in markdown
    assert "Evaluate-only report" in markdown  # no training info


def test_render_ner_markdown_without_errors_or_baseline():
    report = {
        "base_model": "m",
        "metrics": {"micro_f1": 1.0, "macro_f1": 1.0},
        "per_class": {"PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}},
        "confusion_matrix": {"labels": ["PER", "O"], "matrix": [[1, 0], [0, 0]]},
        "error_kinds": {"missed": 0, "spurious": 0, "wrong_type": 0, "wrong_boundary": 0},
    }
    markdown = render_ner_markdown(report)
    assert "No baseline was computed" in markdown and "No entity errors on the test split." in markdown
    assert "No data summary was recorded." in markdown


def test_a_tagger_that_finds_no_entities_or_loses_to_the_baseline_is_called_out_first(english):
    from engine.tasks.token_classification.views import ner_headline_markdown

    gold = _tags(english.test, english.labels)
    all_o = [["O"] * len(tags) for tags in gold]
    baseline = {"name": "most frequent tag per word", "micro_f1": 0.55}
    report = _report(english, predicted=all_o, baseline=baseline)
    n_gold = sum(tag.startswith("B-") for tags in gold for tag in tags)
    first, second = report["warnings"]
    assert first.startswith(f"The model marks 0 entities in the test sentences, which hold {n_gold}: it has collapsed")
    assert "Likely causes: too few epochs" in first  # English data, an English model: the knobs are to blame
    assert second.startswith("The fine-tuned model scores below the most frequent tag per word baseline")
    assert "(entity micro-F1 0.000 vs 0.550)" in second
    markdown = render_ner_markdown(report)
    assert markdown.index("## Warnings") < markdown.index("## Headline metrics")
    headline = ner_headline_markdown(report, "tagger")
    assert headline.index("⚠ **The model marks 0 entities") < headline.index("Scored on")
    # A perfect tagger gets no warning; one that finds half the entities has not collapsed.
    assert _report(english, baseline=baseline)["warnings"] == []
    half = [tags if i % 2 else ["O"] * len(tags) for i, tags in enumerate(gold)]
    assert not any("collapsed" in w for w in _report(english, predicted=half)["warnings"])
