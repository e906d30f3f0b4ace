"""The `playground` command line, run as a user runs it: a subprocess with its own working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.spec import JobSpec

ROOT = Path(__file__).resolve().parents[2]
REVIEWS = ROOT / "tests" / "fixtures" / "reviews.csv"
LABELS = ["fresh", "rotten"]
TRAIN_FLAGS = ["--text-column", "review_body", "--label-column", "verdict"]
TRAIN_FLAGS += ["--epochs", "2", "--batch-size", "16", "--max-length", "64"]
REPORT_KEYS = {
    "task",
    "base_model",
    "created_at",
    "split",
    "n_test",
    "labels",
    "metrics",
    "per_class",
    "confusion_matrix",
    "baseline",
    "errors",
    "data",
    "train",
}


def playground(*args: str | Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m ui.cli ARGS` offline in `cwd`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_user_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2 and one `error:` line naming every fragment, never a traceback; returns the line."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def trace(matrix: list[list[int]]) -> int:
    return sum(row[i] for i, row in enumerate(matrix))


# --- error paths: each fails before any model is loaded ---------------------------------------------------------


def test_train_without_a_training_file(tmp_path):
    done = playground("train", "--output", "out", cwd=tmp_path)
    assert_user_error(done, "no training file", "--train")
    assert not (tmp_path / "out").exists()


def test_train_with_a_file_that_does_not_exist(tmp_path):
    done = playground("train", "--train", "missing.csv", "--output", "out", "--json", cwd=tmp_path)
    assert_user_error(done, "missing.csv", "not found")
    assert done.stdout == ""  # --json promises JSON on stdout or nothing


def test_train_with_a_label_column_that_does_not_exist(tmp_path):
    args = ["--train", REVIEWS, "--label-column", "sentiment", "--output", "out"]
    done = playground("train", *args, cwd=tmp_path)
    assert_user_error(done, "'sentiment'", "'review_body'", "'verdict'")
    assert done.stdout == ""


def test_invalid_hyper_parameter_names_the_field(tmp_path):
    done = playground("train", "--train", REVIEWS, "--epochs", "0", "--output", "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    assert "params.epochs" in done.stderr and "greater than 0" in done.stderr
    assert not (tmp_path / "out").exists()


def test_invalid_config_file_names_the_file_and_the_field(tmp_path):
    (tmp_path / "job.yaml").write_text(f"data:\n  train: {REVIEWS}\nparams:\n  batch_size: 0\n", encoding="utf-8")
    done = playground("train", "--config", "job.yaml", "--output", "out", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: job.yaml is not a valid job spec")
    assert "params.batch_size" in done.stderr


def test_output_folder_that_cannot_be_created_is_a_user_error(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    done = playground("train", "--train", REVIEWS, "--output", "taken/run", "--json", cwd=tmp_path)
    assert_user_error(done, "taken")


def test_relative_data_paths_are_recorded_so_spec_json_works_from_anywhere(tmp_path, monkeypatch):
    from ui.cli import build_parser, spec_from_args

    (tmp_path / "reviews.csv").write_bytes(REVIEWS.read_bytes())
    monkeypatch.chdir(tmp_path)
    spec = spec_from_args(build_parser().parse_args(["train", "--train", "reviews.csv", "--output", "out"]))
    recorded = Path(spec.data.train)
    assert recorded.is_absolute() and recorded.resolve() == (tmp_path / "reviews.csv").resolve()


# --- read-only commands -----------------------------------------------------------------------------------------


def test_models_json_lists_the_packaged_models_with_their_tasks(tmp_path):
    done = playground("models", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    models = {row["name"]: row for row in json.loads(done.stdout)}
    assert "text-classification" in models["minilm-l6"]["tasks"]
    assert models["smollm2-135m-instruct"]["tasks"] == ["chat"]


def test_inspect_json_guesses_columns_and_counts_rows(tmp_path):
    done = playground("inspect", "--train", REVIEWS, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == 240
    assert summary["labels"] == LABELS
    assert (summary["text_column"], summary["label_column"]) == ("review_body", "verdict")
    assert summary["rows_per_label"] == {"fresh": 120, "rotten": 120}
    assert sum(split["rows"] for split in summary["splits"].values()) == 240
    assert summary["length_tokens"]["unit"] == "tokens"


# --- end to end: train once, then use the model through every command -------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run of the CLI on the reviews fixture; (working dir, output dir, stdout report)."""
    work = tmp_path_factory.mktemp("cli")
    done = playground("train", "--train", REVIEWS, *TRAIN_FLAGS, "--output", "run", "--json", cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    return work, work / "run", json.loads(done.stdout)


@pytest.mark.slow
def test_train_prints_the_report_and_writes_it_with_spec_and_model(trained):
    _, out, report = trained
    assert set(report) >= REPORT_KEYS
    assert report["labels"] == LABELS and report["split"] == "test"
    assert report["data"]["rows"] == 240

    n_test = report["n_test"]
    assert n_test == report["data"]["splits"]["test"]["rows"] == 24
    assert sum(row["support"] for row in report["per_class"].values()) == n_test
    matrix = report["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == n_test
    assert report["metrics"]["accuracy"] == pytest.approx(trace(matrix) / n_test)
    assert report["metrics"]["accuracy"] > 0.6, "two epochs on 192 reviews should beat chance"
    assert report["baseline"]["name"] == "TF-IDF + logistic regression"

    train = report["train"]
    assert (train["epochs"], train["train_samples"], train["steps"]) == (2, 192, 24)
    evals = [entry for entry in train["history"] if "eval_macro_f1" in entry]
    assert [entry["epoch"] for entry in evals] == [1, 2]
    assert train["best_validation_macro_f1"] == pytest.approx(max(e["eval_macro_f1"] for e in evals), abs=1e-4)

    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    expected = JobSpec.from_dict(
        {
            "data": {"train": str(REVIEWS), "text_column": "review_body", "label_column": "verdict"},
            "params": {"epochs": 2, "batch_size": 16, "max_length": 64},
        }
    )
    assert JobSpec.load(out / "spec.json") == expected
    md = (out / "report.md").read_text(encoding="utf-8")
    for label in LABELS:
        assert f"| {label} |" in md
    assert "| **Total** | 192 | 24 | 24 | 240 |" in md
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
def test_saved_model_loads_in_a_plain_transformers_pipeline(trained):
    import transformers

    _, out, _ = trained
    classify = transformers.pipeline("text-classification", model=str(out / "model"), device="cpu")
    results = classify(["A warm, funny and moving film.", "Tedious, lazy and far too long."])
    assert {result["label"] for result in results} <= set(LABELS)
    assert all(0.5 <= result["score"] <= 1.0 for result in results)


@pytest.mark.slow
def test_predict_text_returns_a_label_and_both_probabilities(trained):
    work, out, _ = trained
    done = playground(
        "predict", "--model", out / "model", "--text", "A warm, funny and moving film.", "--json", cwd=work
    )
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert set(result["scores"]) == set(LABELS)
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    assert result["score"] == result["scores"][result["label"]]


@pytest.mark.slow
def test_predict_file_writes_one_row_per_input(trained):
    work, out, _ = trained
    texts = pd.read_csv(REVIEWS)["review_body"].tolist()[:6]
    pd.DataFrame({"review_body": texts}).to_csv(work / "unlabeled.csv", index=False)
    done = playground(
        "predict", "--model", out / "model", "--input", "unlabeled.csv", "--output", "preds.csv", cwd=work
    )
    assert done.returncode == 0, done.stderr
    preds = pd.read_csv(work / "preds.csv")
    assert preds["review_body"].tolist() == texts  # same rows, same order, quotes and commas intact
    assert {"predicted", "confidence", "p_fresh", "p_rotten"} <= set(preds.columns)
    assert set(preds["predicted"]) <= set(LABELS)
    assert (preds["p_fresh"] + preds["p_rotten"]).to_numpy() == pytest.approx(1.0, abs=1e-5)
    assert preds["confidence"].to_numpy() == pytest.approx(preds[["p_fresh", "p_rotten"]].max(axis=1).to_numpy())
    picked = preds[["p_fresh", "p_rotten"]].to_numpy().argmax(axis=1)
    assert preds["predicted"].tolist() == [LABELS[i] for i in picked]


@pytest.mark.slow
def test_evaluate_scores_a_labeled_file_and_writes_its_report(trained):
    work, out, _ = trained
    pd.read_csv(REVIEWS).head(40).to_csv(work / "forty.csv", index=False)
    args = ["--model", out / "model", "--data", "forty.csv", "--text-column", "review_body"]
    args += ["--label-column", "verdict", "--output", "ev/report.json", "--json"]
    done = playground("evaluate", *args, cwd=work)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert json.loads((work / "ev" / "report.json").read_text(encoding="utf-8")) == report
    assert report["n_test"] == 40 and report["train"] is None
    assert sum(row["support"] for row in report["per_class"].values()) == 40
    matrix = report["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == 40
    assert report["metrics"]["accuracy"] == pytest.approx(trace(matrix) / 40)
    # The model's spec.json sits beside model/, so the baseline is refit on the same training split.
    assert report["baseline"] is not None
    md = (work / "ev" / "report.md").read_text(encoding="utf-8")
    assert "Evaluate-only report" in md and "| **Total** | 40 |" in md


@pytest.mark.slow
def test_training_again_into_the_same_folder_is_refused(trained):
    work, out, report = trained
    done = playground("train", "--train", REVIEWS, *TRAIN_FLAGS, "--output", "run", "--json", cwd=work)
    assert_user_error(done, "already holds a trained model", str(out))
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report


def test_progress_in_a_log_is_one_line_per_step_with_the_tasks_own_metrics():
    import io

    from engine.progress import ProgressEvent
    from ui.cli import _ProgressBar

    def events(metrics: dict) -> list[ProgressEvent]:
        return [
            ProgressEvent(kind="log", step=3, total_steps=12, epoch=0.25, loss=1.2345),
            ProgressEvent(kind="eval", step=12, total_steps=12, epoch=1.0, loss=0.5, metrics=metrics),
        ]

    log = io.StringIO()  # not a terminal: no carriage-return bar
    with _ProgressBar(enabled=True, task="chat", stream=log) as bar:
        for event in events({"loss": 0.5}):
            bar.update(event)
    assert log.getvalue().splitlines() == ["step 3/12  epoch 0.25  loss 1.2345", "epoch 1: validation loss 0.5000"]
    assert "\r" not in log.getvalue() and "nan" not in log.getvalue()  # chat has no macro-F1 to print as nan

    log = io.StringIO()
    with _ProgressBar(enabled=True, task="token-classification", stream=log) as bar:
        for event in events({"micro_f1": 0.71, "token_accuracy": 0.9, "loss": 0.5}):
            bar.update(event)
    assert log.getvalue().splitlines()[1].startswith("epoch 1: validation micro_f1 0.710")


def test_a_search_prints_each_trial_before_its_steps_and_ignores_other_phases():
    import io

    from engine.progress import ProgressEvent, announce, trial_phase
    from ui.cli import _ProgressBar

    log = io.StringIO()
    with _ProgressBar(enabled=True, task="text-classification", stream=log) as bar:
        announce(bar.update, "loading")
        for trial in (1, 2):
            announce(bar.update, trial_phase(trial, 2))
            bar.update(ProgressEvent(kind="log", step=3, total_steps=12, epoch=0.25, loss=0.7))
    assert log.getvalue().splitlines() == [
        "Trial 1 of 2",
        "step 3/12  epoch 0.25  loss 0.7000",
        "Trial 2 of 2",
        "step 3/12  epoch 0.25  loss 0.7000",
    ]


def test_recipe_flags_come_from_the_spec_and_build_its_search_and_preset():
    from ui.cli import build_parser, spec_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--train",
            str(ROOT / "tests" / "fixtures" / "reviews.csv"),
            "--output",
            "unused",
            "--preset",
            "best",
            "--epochs",
            "5",
            "--schedule",
            "polynomial",
            "--no-gradient-checkpointing",
            "--class-weights",
            "rotten=3",
            "--search-batch-sizes",
            "8,32",
            "--no-search-prune",
        ]
    )
    spec = spec_from_args(args)
    assert spec.search.ensemble == 3  # the preset's: its 3 best trials may answer together
    assert spec.params.epochs == 5  # the flag beats the preset's 8
    assert spec.params.early_stopping_patience == 2 and spec.params.schedule == "polynomial"
    assert spec.params.gradient_checkpointing is False and spec.params.class_weights == {"rotten": 3.0}
    assert spec.search.batch_sizes == (8, 32) and spec.search.prune is False
    assert spec.search.learning_rate == (1e-5, 1e-3)  # the preset's range, kept beside the flags' own
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--train", "x.csv", "--output", "o", "--optimizer", "sgd"])
    reviews = str(ROOT / "tests" / "fixtures" / "reviews.csv")
    plain = spec_from_args(build_parser().parse_args(["train", "--train", reviews, "--output", "o"]))
    assert plain.search is None and plain.params == JobSpec.from_dict({"data": {"train": reviews}}).params


def test_technique_flags_come_from_the_spec_and_merge_over_a_config(tmp_path: Path):
    from ui.cli import build_parser, spec_from_args

    unlabeled = tmp_path / "sans étiquette.txt"
    lines = [f"Un café tiède, servi sans un mot, « encore » n°{i}" for i in range(12)] + ["服务很好，菜也好吃。"]
    unlabeled.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "job.yaml"
    config.write_text(
        f"data: {{train: {REVIEWS}, text_column: review_body, label_column: verdict}}\n"
        "techniques: {augment: {copies: 4, rate: 0.2}, domain_pretraining: {epochs: 5}}\n",
        encoding="utf-8",
    )
    argv = ["train", "--config", str(config), "--output", "unused", "--augment-methods", "swap,substitute"]
    argv += ["--adversarial-method", "pgd", "--adversarial-epsilon", "0.8", "--self-training-max-per-label", "50"]
    argv += ["--unlabeled", os.path.relpath(unlabeled), "--no-compare-with-plain"]
    spec = spec_from_args(build_parser().parse_args(argv))
    techniques = spec.techniques
    # The flag's methods over the config's block, whose copies and rate stay; any flag of a technique turns it on.
    assert techniques.augment.methods == ("swap", "substitute") and techniques.augment.copies == 4
    assert techniques.augment.rate == 0.2 and techniques.domain_pretraining.epochs == 5
    assert (techniques.adversarial.method, techniques.adversarial.epsilon) == ("pgd", 0.8)
    assert techniques.adversarial.steps == 3  # the field's default
    assert techniques.self_training.max_per_label == 50 and techniques.self_training.threshold == 0.9
    assert techniques.ensemble is None and techniques.compare_with_plain is False
    assert techniques.used() == ["augment", "adversarial", "domain_pretraining", "self_training"]
    assert spec.data.unlabeled == str(unlabeled.resolve())  # made absolute, like --train

    reviews = ["train", "--train", str(REVIEWS), "--output", "o"]
    flags = ["--ensemble", "--no-domain-pretraining-use-training-texts"]
    on = spec_from_args(build_parser().parse_args([*reviews, *flags]))
    assert on.techniques.ensemble.members == 3 and on.techniques.compare_with_plain is True
    assert on.techniques.domain_pretraining.use_training_texts is False  # a field's flag turns its technique on
    off = spec_from_args(build_parser().parse_args([*reviews, "--no-compare-with-plain"]))
    assert off.techniques is None  # no technique on: no block
    assert spec_from_args(build_parser().parse_args(reviews)).techniques is None
    with pytest.raises(SystemExit):
        build_parser().parse_args([*reviews, "--ensemble-split", "bagging"])
    with pytest.raises(ValueError, match="augment.methods.1"):
        spec_from_args(build_parser().parse_args([*reviews, "--augment-methods", "swap,shuffle"]))
    with pytest.raises(ValueError, match="techniques.self_training needs unlabeled texts"):
        spec_from_args(build_parser().parse_args([*reviews, "--self-training"]))
    with pytest.raises(ValueError, match=r"techniques.augment is not offered for token-classification"):
        spec_from_args(build_parser().parse_args([*reviews, "--task", "token-classification", "--augment"]))


def test_the_cli_names_each_technique_flag_with_its_fields_help():
    from ui.cli import build_parser

    [train] = [a for a in build_parser()._actions if getattr(a, "choices", None) and "train" in a.choices]
    text = train.choices["train"].format_help()
    for flag in ("--augment-copies", "--adversarial-steps", "--ensemble-members", "--domain-pretraining-epochs"):
        assert flag in text
    assert "--self-training-max-per-label" in text and "--no-compare-with-plain" in text
    assert "Only predictions at least this probable join the training data" in " ".join(text.split())
    assert "(default swap,delete,insert)" in text and "--unlabeled" in text


def test_progress_prints_each_technique_stage_as_the_engine_names_it():
    import io

    from engine.progress import ProgressEvent, announce
    from ui.cli import _ProgressBar

    stages = [
        "training: plain recipe (for comparison)",
        "training: domain pre-training",
        "training: member 2 of 3",
        "training: self-training round 1 of 2",
        "training: MLM stage on 评论",
    ]
    log = io.StringIO()
    with _ProgressBar(enabled=True, task="text-classification", stream=log) as bar:
        announce(bar.update, "loading")
        for phase in stages:
            announce(bar.update, phase)
            bar.update(ProgressEvent(kind="log", step=1, total_steps=4, epoch=0.5, loss=0.5))
    lines = log.getvalue().splitlines()
    assert lines[::2] == [
        "Plain recipe (for comparison)",
        "Domain pre-training",
        "Member 2 of 3",
        "Self-training round 1 of 2",
        "MLM stage on 评论",
    ]
    assert lines[1] == "step 1/4  epoch 0.50  loss 0.5000"
    from ui.cli import format_report_summary

    report = {"task": "text-classification", "metrics": {"accuracy": 0.8, "macro_f1": 0.74, "weighted_f1": 0.75}}
    report |= {"per_class": {}, "comparison": {"verdict": "Ensemble beat the plain recipe (+0.040)."}}
    assert format_report_summary(report).startswith("what the techniques bought: Ensemble beat the plain recipe")
