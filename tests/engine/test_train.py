"""Training on the packaged MiniLM encoder: loss, report numbers, reload, determinism, stop and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.catalog import resolve_model
from engine.metrics import classification_metrics
from engine.predict import Predictor
from engine.spec import JobSpec
from engine.train import TrainingStopped, train

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reviews.csv"
pytestmark = pytest.mark.slow


def _spec(train_file: Path | str = FIXTURE, **params) -> JobSpec:
    defaults = {"epochs": 2, "batch_size": 16, "max_length": 64, "seed": 7}
    return JobSpec.from_dict(
        {
            "task": "text-classification",
            "base_model": "minilm-l6",
            "data": {"train": str(train_file), "text_column": "review_body", "label_column": "verdict"},
            "params": {**defaults, **params},
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    events = []
    result = train(_spec(), out, on_event=events.append)
    return result, events


def test_loss_falls_on_a_repeated_batch():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    path = resolve_model("minilm-l6", task="text-classification")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    rows = pd.read_csv(FIXTURE).head(8)
    batch = tokenizer(list(rows["review_body"]), padding=True, return_tensors="pt")
    labels = torch.tensor([int(v == "fresh") for v in rows["verdict"]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(8):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_report_numbers_agree_with_each_other(trained):
    result, _ = trained
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["labels"] == ["fresh", "rotten"]
    n_test = report["data"]["splits"]["test"]["rows"]
    assert n_test == 24  # 10% of 120 per class, stratified
    assert sum(row["support"] for row in report["per_class"].values()) == n_test
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert matrix.sum() == n_test
    assert report["metrics"]["accuracy"] == pytest.approx(np.trace(matrix) / n_test)
    f1s = [row["f1"] for row in report["per_class"].values()]
    assert report["metrics"]["macro_f1"] == pytest.approx(sum(f1s) / len(f1s))
    # The model learned something real: well above the 0.5 of guessing on balanced classes.
    assert report["metrics"]["macro_f1"] > 0.75
    assert 0.5 < report["baseline"]["macro_f1"] <= 1.0
    wrong = n_test - int(np.trace(matrix))
    assert len(report["errors"]) == min(wrong, 20)
    assert all(e["label"] != e["predicted"] for e in report["errors"])
    confidences = [e["confidence"] for e in report["errors"]]
    assert confidences == sorted(confidences, reverse=True)
    assert report["train"]["train_samples"] == 192
    assert report["train"]["samples_per_second"] > 0
    assert (result.output_dir / "report.md").read_text(encoding="utf-8").count("rotten") >= 2


def test_output_folder_is_complete_and_reproducible(trained):
    result, _ = trained
    out = result.output_dir
    assert JobSpec.load(out / "spec.json") == _spec()
    assert not (out / "checkpoints").exists()
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "fresh", "1": "rotten"}
    assert config["label2id"] == {"fresh": 0, "rotten": 1}


def test_training_writes_tensorboard_events_with_the_reports_numbers(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _ = trained
    events = EventAccumulator(str(result.output_dir / "tensorboard"))  # the job's one run: no sub-folder
    events.Reload()
    assert {"train/loss", "train/learning_rate", "eval/loss", "eval/macro_f1"} <= set(events.Tags()["scalars"])
    losses = [event.value for event in events.Scalars("train/loss")]
    assert len(losses) >= 10 and all(np.isfinite(losses))
    history = [h for h in result.report["train"]["history"] if "eval_macro_f1" in h]
    charted = events.Scalars("eval/macro_f1")
    assert [event.step for event in charted] == [h["step"] for h in history] == [12, 24]
    assert [event.value for event in charted] == pytest.approx([h["eval_macro_f1"] for h in history], abs=1e-6)


def test_the_reports_metric_module_recomputes_its_metrics(trained):
    import evaluate

    from engine.metrics import HEADLINE_METRICS, metric_module_path

    report = json.loads(trained[0].report_path.read_text(encoding="utf-8"))
    names, matrix = report["confusion_matrix"]["labels"], report["confusion_matrix"]["matrix"]
    cells = [(names[i], names[j]) for i, row in enumerate(matrix) for j, count in enumerate(row) for _ in range(count)]
    module = evaluate.load(str(metric_module_path(report["metrics_module"])))
    scores = module.compute(references=[t for t, _ in cells], predictions=[p for _, p in cells], labels=names)
    assert {key: scores[key] for key in HEADLINE_METRICS} == pytest.approx(report["metrics"])


def test_saved_model_reloads_and_reproduces_the_report(trained):
    result, _ = trained
    from engine.tasks.text_classification.data import load_classification_data

    spec = _spec()
    data = load_classification_data(spec.data, max_length=spec.params.max_length, seed=spec.params.seed)
    predictor = Predictor(result.model_dir)
    assert predictor.labels == ["fresh", "rotten"]
    assert predictor.max_length == 64
    probs = predictor.predict_proba(list(data.test["text"]))
    again = classification_metrics(list(data.test["label"]), probs.argmax(axis=1).tolist(), predictor.labels)
    assert again["metrics"] == pytest.approx(result.report["metrics"])
    assert again["confusion_matrix"] == result.report["confusion_matrix"]
    [one] = predictor.classify("An utterly joyless, clumsy slog.")
    assert set(one["scores"]) == {"fresh", "rotten"}
    assert sum(one["scores"].values()) == pytest.approx(1.0, abs=1e-4)

    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(result.model_dir))
    assert pipe("A warm, funny and moving film.")[0]["label"] in {"fresh", "rotten"}


def test_model_card_carries_the_report_and_its_snippet_runs(trained, capsys):
    from tests.engine.card_helpers import index_metrics, split_card, table_after

    result, _ = trained
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    meta, body = split_card((result.model_dir / "README.md").read_text(encoding="utf-8"))
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "text-classification" and meta["language"] == ["en"]
    scores = index_metrics(meta)
    assert scores["Macro F1"] == report["metrics"]["macro_f1"] and scores["Accuracy"] == report["metrics"]["accuracy"]
    per_class = table_after(body, "### Per label")
    for label, row in report["per_class"].items():
        assert float(per_class[label][2]) == round(row["f1"], 3) and int(per_class[label][3]) == row["support"]
    assert f"on {report['data']['splits']['train']['rows']} labeled English texts" in body
    snippet = body.split("```python\n", 1)[1].split("```", 1)[0]
    exec(snippet, {})  # the card's own loading code, as a stranger would paste it
    assert "'label': 'fresh'" in capsys.readouterr().out


def test_progress_events_describe_the_run(trained):
    _, events = trained
    from engine.progress import PHASES

    # Each phase is announced once, in order, and training's own events sit inside the training phase.
    assert [e.phase for e in events if e.kind == "phase"] == list(PHASES)
    kinds = [e.kind for e in events]
    assert kinds.index("start") > kinds.index("phase", 2) and kinds.index("end") < len(kinds) - 2
    events = [e for e in events if e.kind != "phase"]
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    total = events[0].total_steps
    assert total == 2 * 12  # 192 rows / 16 per step, 2 epochs
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == list(range(1, total + 1))
    evals = [e for e in events if e.kind == "eval"]
    assert [round(e.epoch) for e in evals] == [1, 2]
    assert all(0 <= e.metrics["macro_f1"] <= 1 for e in evals)
    logged = [e.loss for e in events if e.kind == "log"]
    assert len(logged) >= 10 and all(np.isfinite(logged))
    assert any(e.eta_seconds is not None and e.samples_per_second for e in events if e.kind == "step")
    json.dumps([e.to_dict() for e in events])  # plain data: it can go through any queue or store


def test_cpu_training_draws_cheap_dropout_masks_and_saves_a_plain_model(trained):
    result, _ = trained
    assert result.report["train"]["cheap_dropout"] is True  # the CPU, and no compile
    config = json.loads((result.model_dir / "config.json").read_text())
    assert "cheap" not in json.dumps(config)  # a reload anywhere gets the library's own attention and dropout
    reloaded = Predictor(result.model_dir).model
    assert reloaded.config._attn_implementation == "sdpa"
    assert not any("Cheap" in type(m).__name__ for m in reloaded.modules())


def test_same_seed_same_result(tmp_path):
    small = tmp_path / "small.csv"
    pd.read_csv(FIXTURE).head(80).to_csv(small, index=False)
    first = train(_spec(small, epochs=1), tmp_path / "a")
    second = train(_spec(small, epochs=1), tmp_path / "b")
    assert first.report["metrics"] == second.report["metrics"]
    assert first.report["errors"] == second.report["errors"]
    texts = ["dull and far too long", "a small gem"]
    assert np.array_equal(
        Predictor(first.model_dir).predict_proba(texts), Predictor(second.model_dir).predict_proba(texts)
    )


def test_should_stop_ends_training_without_a_model(tmp_path):
    events = []

    def should_stop() -> bool:
        return sum(e.kind == "step" for e in events) >= 3

    with pytest.raises(TrainingStopped, match="step 3"):
        train(_spec(), tmp_path / "out", on_event=events.append, should_stop=should_stop)
    assert not (tmp_path / "out" / "model").exists()
    assert not (tmp_path / "out" / "report.json").exists()


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "out"
    events = []
    # Stop two steps into the second epoch: the end-of-epoch-1 checkpoint exists by then.
    with pytest.raises(TrainingStopped):
        train(_spec(), out, on_event=events.append, should_stop=lambda: events[-1].step >= 14)
    assert any((out / "checkpoints").glob("checkpoint-12"))
    resumed = []
    result = train(_spec(), out, on_event=resumed.append, resume=True)
    started = next(e for e in resumed if e.kind != "phase")
    assert started.kind == "start" and started.step == 12  # picked up where the checkpoint left off
    assert [e.step for e in resumed if e.kind == "step"][0] == 13
    assert result.report["train"]["steps"] == 24
    assert (out / "model" / "config.json").is_file()


def test_refuses_to_overwrite_a_finished_run(trained):
    result, _ = trained
    with pytest.raises(FileExistsError, match="already holds a trained model"):
        train(_spec(), result.output_dir)


def test_evaluate_scores_a_new_file_and_refuses_unknown_labels(trained, tmp_path):
    from engine.errors import DataError
    from engine.evaluation import evaluate

    result, _ = trained
    rows = pd.read_csv(FIXTURE).tail(30).rename(columns={"review_body": "comment", "verdict": "grade"})
    rows.to_csv(tmp_path / "new.csv", index=False)
    report = evaluate(result.model_dir, tmp_path / "new.csv", output=tmp_path / "eval" / "report.json")
    assert report["data"]["text_column"] == "comment" and report["data"]["label_column"] == "grade"
    assert sum(row["support"] for row in report["per_class"].values()) == 30
    assert np.array(report["confusion_matrix"]["matrix"]).sum() == 30
    assert report["baseline"]["name"].startswith("TF-IDF")  # refit on the model's own training split
    assert report["train"] is None
    assert json.loads((tmp_path / "eval" / "report.json").read_text(encoding="utf-8")) == report
    rows.assign(grade="meh").to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(DataError, match=r"labels \['meh'\].*not among the model's labels"):
        evaluate(result.model_dir, tmp_path / "odd.csv", text_column="comment", label_column="grade")
