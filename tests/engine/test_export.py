"""Export variants: each folder loads with its runtime alone, answers as the report says, and is what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.export import VARIANTS, Timing, export_model
from engine.export.writers import read_variant_file
from engine.predict import Predictor
from engine.spec import ExportSpec, JobSpec
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOADER = Path(__file__).resolve().parent / "load_variant.py"
QUICK = Timing(rounds=1, latency_texts=3, batch_texts=16)  # the figures are not under test here, only their shape


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A MiniLM classifier trained here on the review fixture, with its spec.json beside model/."""
    out = tmp_path_factory.mktemp("job")
    spec = JobSpec.from_dict(
        {
            "data": {"train": str(FIXTURES / "reviews.csv"), "test_fraction": 0.2},
            "params": {"epochs": 2, "max_length": 64, "seed": 1},
        }
    )
    train(spec, out)
    return out / "model"


@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Every variant of the trained classifier: its output folder and report."""
    results = {}
    for to in VARIANTS:
        out = tmp_path_factory.mktemp(to)
        results[to] = (out, export_model(trained, to, out, sparsity=0.3, timing=QUICK))
    return results


def _test_split(model_dir: Path) -> tuple[list[str], list[int]]:
    from transformers import AutoTokenizer

    spec = JobSpec.load(model_dir.parent / "spec.json")
    recipe = spec.task_info().recipe()
    return recipe.test_examples(recipe.prepare(spec, AutoTokenizer.from_pretrained(model_dir)))


def _fresh_python(folder: Path, texts: list, tmp_path: Path) -> list:
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(LOADER), str(folder), str(texts_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing of the project is importable by accident from here
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("to", VARIANTS)
def test_each_variant_loads_with_its_runtime_alone_and_scores_as_reported(exported, trained, to, tmp_path):
    out, report = exported[to]
    texts, gold = _test_split(trained)
    labels = [Predictor(trained).labels[i] for i in gold]
    predicted = _fresh_python(out / "model", texts, tmp_path)
    accuracy = sum(p == g for p, g in zip(predicted, labels, strict=True)) / len(labels)
    # bf16 from plain transformers is read back in fp32 there, so its logits differ a little from the Predictor's
    # bf16 run; int8 quantizes activations with one scale per batch, and the loader batches all texts at once where
    # the Predictor batches by length: a text or two near the boundary may flip. The report rounds to 4 places.
    tolerance = {"bf16": 1.5, "int8": 2.5}.get(to, 0.0) / len(labels) + 1e-4
    assert abs(accuracy - report["exported"]["metrics"]["accuracy"]) <= tolerance
    assert report["test_rows"] == len(texts) and len(texts) >= 40
    original = report["original"]["metrics"]["accuracy"]
    assert report["exported"]["metric_change"]["accuracy"] == pytest.approx(
        report["exported"]["metrics"]["accuracy"] - original, abs=1e-4
    )
    assert (out / "report.md").is_file() and to in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_variants_are_what_they_claim(exported, trained):
    sizes = {to: report["exported"]["size_mb"] for to, (_, report) in exported.items()}
    original = exported["bf16"][1]["original"]["size_mb"]
    assert sizes["bf16"] < 0.55 * original  # two bytes a weight instead of four
    assert sizes["int8"] < 0.75 * original  # the Linear layers at one byte; embeddings stay fp32
    pruned = exported["pruned"][1]["variant"]
    assert pruned["zero_share"] == pytest.approx(0.3, abs=0.01)
    # The head is left whole: its weights are the trained ones, none set to zero.
    from safetensors.torch import load_file

    weights = load_file(exported["pruned"][0] / "model" / "model.safetensors")
    head = weights["classifier.weight"]
    assert int((head == 0).sum()) == 0
    for to, (out, _) in exported.items():
        info = read_variant_file(out / "model")
        assert info["name"] == to and info["max_length"] == 64
        assert Predictor(out / "model").variant == to


@pytest.mark.slow
def test_a_variant_refuses_another_precision_and_serves_its_name(exported):
    out, _ = exported["int8"]
    with pytest.raises(ValueError, match="runs in int8"):
        Predictor(out / "model", precision="bf16")
    answer = Predictor(out / "model").serve({"text": "Un film très réussi, drôle et émouvant."})
    assert answer["variant"] == "int8" and answer["predictions"][0]["label"] in ("fresh", "rotten")


@pytest.mark.slow
def test_tagger_exports_to_onnx_and_tags_like_the_report(tmp_path):
    spec = JobSpec.from_dict(
        {
            "task": "token-classification",
            "data": {"train": str(FIXTURES / "ner" / "en.conll")},
            "params": {"epochs": 3, "learning_rate": 3e-4, "batch_size": 8, "max_length": 64, "seed": 3},
        }
    )
    train(spec, tmp_path / "job")
    report = export_model(tmp_path / "job" / "model", "onnx", tmp_path / "onnx", timing=QUICK)
    change = report["exported"]["metric_change"]["micro_f1"]
    assert abs(change) < 0.02  # the same graph in another runtime: at most a word near a tie changes
    assert report["original"]["metrics"]["micro_f1"] > 0.3  # it learned something to keep
    sentences = [["Anna", "Kowalska", "visited", "Kraków", "."], ["São", "Paulo", "is", "far", "."]]
    tags = _fresh_python(tmp_path / "onnx" / "model", sentences, tmp_path)
    assert tags == Predictor(tmp_path / "onnx" / "model").tag_words(sentences)


def test_export_spec_names_what_is_wrong():
    with pytest.raises(ValueError, match="to"):
        ExportSpec.from_dict({"model": "abc", "to": "fp8"})
    with pytest.raises(ValueError, match="sparsity and prune apply to the pruned variant only"):
        ExportSpec.from_dict({"model": "abc", "to": "int8", "sparsity": 0.5})
    with pytest.raises(ValueError, match="sparsity"):
        ExportSpec.from_dict({"model": "abc", "to": "pruned", "sparsity": 0.99})


def test_export_refuses_a_folder_without_its_training_spec(tmp_path):
    from tests.engine.tasks.conftest import tiny_encoder

    folder = tiny_encoder(tmp_path / "model", "sequence", ["a", "b"])
    with pytest.raises(ValueError, match="no spec.json beside it"):
        export_model(folder, "int8", tmp_path / "out")
    with pytest.raises(ValueError, match="not a model folder"):
        export_model(tmp_path, "int8", tmp_path / "out")
    assert not (tmp_path / "out" / "model").exists()


@pytest.mark.slow
@pytest.mark.parametrize("to", ["int8", "onnx"])
def test_the_variants_card_code_runs_as_printed(exported, to, tmp_path):
    card = (exported[to][0] / "model" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and f"library_name: {'torchscript' if to == 'int8' else 'onnxruntime'}" in card
    code = card.split("## How to use", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(json.loads(done.stdout.strip().replace("'", '"'))) <= {"fresh", "rotten"}


@pytest.mark.slow
def test_head_pruning_removes_whole_heads_and_loads_in_plain_transformers(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    report = export_model(trained, "pruned", tmp_path / "heads", sparsity=0.3, prune="heads", timing=QUICK)
    info = report["variant"]
    assert info["prune"] == "heads" and report["exported"]["metric_change"]["accuracy"] > -0.2
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "heads" / "model")
    heads, size = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    removed = {int(layer): gone for layer, gone in info["pruned_heads"].items()}
    assert sum(map(len, removed.values())) == round(0.3 * heads * model.config.num_hidden_layers)
    for index, layer in enumerate(model.bert.encoder.layer):
        attention = layer.attention
        for head in range(heads):
            rows = slice(head * size, (head + 1) * size)
            zero = bool(
                (attention.self.value.weight[rows] == 0).all() and (attention.output.dense.weight[:, rows] == 0).all()
            )
            assert zero == (head in removed.get(index, [])), (index, head)
        assert len(removed.get(index, [])) < heads  # every layer keeps a head
    assert "heads removed by layer" in (tmp_path / "heads" / "report.md").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="sparsity and prune apply to the pruned variant only"):
        ExportSpec.from_dict({"model": "abc", "to": "int8", "prune": "heads"})
