"""Whole jobs with techniques on messy data: the report's comparison, sections and served model hold together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.predict import Predictor
from engine.spec import JobSpec
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
pytestmark = pytest.mark.slow


def _spec(data: dict, techniques: dict, **params) -> JobSpec:
    return JobSpec.from_dict(
        {
            "task": "text-classification",
            "base_model": "minilm-l6",
            "data": data,
            "params": {"epochs": 1, "batch_size": 16, "max_length": 48, "seed": 11, "learning_rate": 3e-4, **params},
            "techniques": techniques,
        }
    )


def test_augmented_adversarial_ensemble_on_gb18030_chinese_reports_numbers_that_agree(tmp_path: Path):
    data = {"train": str(FIXTURES / "zh" / "reviews.csv"), "text_column": "评论内容", "label_column": "情感"}
    techniques = {"augment": {"copies": 1}, "adversarial": {"epsilon": 0.3}, "ensemble": {"members": 2}}
    phases: list[str] = []
    result = train(
        _spec(data, techniques), tmp_path / "out", on_event=lambda e: e.kind == "phase" and phases.append(e.phase)
    )
    report = result.report
    assert phases.index("training: member 1 of 2") < phases.index("training: member 2 of 2")
    assert "training: plain recipe (for comparison)" in phases
    comparison, info = report["comparison"], report["techniques"]
    assert comparison["technique"]["score"] == report["metrics"]["macro_f1"] == info["ensemble"]["score"]
    assert comparison["delta"] == round(comparison["technique"]["score"] - comparison["plain"]["score"], 4)
    assert set(comparison["plain"]["per_class_f1"]) == {"正面", "负面"}
    assert [m["seed"] for m in info["ensemble"]["members"]] == [11, 12]
    assert info["ensemble"]["best_member_score"] == max(m["score"] for m in info["ensemble"]["members"])
    kept = [m for m in info["ensemble"]["members"] if m["kept"]]
    if len(kept) == 1:  # averaging lost on validation: the best member alone is the model
        assert kept[0]["validation_score"] == max(m["validation_score"] for m in info["ensemble"]["members"])
        assert not (result.model_dir / "ensemble.json").exists()
    else:
        assert info["ensemble"]["size_mb"] > 1.9 * info["ensemble"]["member_size_mb"] > 0
    robust = info["adversarial"]["robustness"]
    assert robust["clean_accuracy"] == pytest.approx(report["metrics"]["accuracy"], abs=1e-4)  # the same model
    assert robust["plain_clean_accuracy"] == pytest.approx(comparison["plain"]["accuracy"], abs=1e-4)
    assert 0 <= robust["perturbed_accuracy"] <= 1 and 0 <= robust["plain_perturbed_accuracy"] <= 1
    added = info["augment"]["added"]
    assert report["train"]["train_samples"] == report["data"]["splits"]["train"]["rows"] + added
    markdown = (result.output_dir / "report.md").read_text(encoding="utf-8")
    assert markdown.index("## What it bought") < markdown.index("## Headline metrics")
    assert comparison["verdict"] in markdown and "| Ensemble |" in markdown
    if len(kept) == 2:
        manifest = json.loads((result.model_dir / "ensemble.json").read_text(encoding="utf-8"))
        assert [m["path"] for m in manifest["members"]] == ["members/1", "members/2"]
    answer = Predictor(result.model_dir).classify(["质量很好，物流也快，下次还会再买。"])[0]
    assert set(answer["scores"]) == {"正面", "负面"} and sum(answer["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert not (result.output_dir / "checkpoints").exists()


def test_domain_pretraining_and_self_training_on_a_latin1_unlabeled_file(tmp_path: Path):
    reviews = (FIXTURES / "reviews.csv").read_text(encoding="utf-8").splitlines()[1:]
    unlabeled = tmp_path / "unlabeled.txt"  # a Windows export: Latin-1, blank lines, a repeat, accents
    lines = [line.rsplit(",", 1)[0].strip('"') + " Très émouvant, ou pas." for line in reviews]
    unlabeled.write_bytes("\n".join([*lines, "", lines[0], "   "]).encode("latin-1"))
    data = {"train": str(FIXTURES / "reviews.csv"), "text_column": "review_body", "unlabeled": str(unlabeled)}
    techniques = {
        "domain_pretraining": {"epochs": 1, "use_training_texts": False},
        "self_training": {"rounds": 1, "threshold": 0.55},
        "compare_with_plain": False,
    }
    result = train(_spec(data, techniques, epochs=2), tmp_path / "out")
    report = result.report
    assert report.get("comparison") is None
    domain = report["techniques"]["domain_pretraining"]
    assert domain["texts"] == len(set(lines)) and domain["mlm_loss_after"] < domain["mlm_loss_before"]
    rounds = report["techniques"]["self_training"]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[1]["added_total"] == sum(rounds[1]["added"].values()) > 0
    assert rounds[1]["train_rows"] == rounds[0]["train_rows"] + rounds[1]["added_total"]
    kept = report["techniques"]["self_training"]["kept_round"]
    assert rounds[kept]["validation_score"] == max(r["validation_score"] for r in rounds)
    assert report["metrics"]["macro_f1"] == rounds[kept]["test_score"]
    assert not (result.output_dir / "domain-model").exists()  # its encoder lives on in model/
    # Each training run of the job charts into a TensorBoard folder of its own.
    board = result.output_dir / "tensorboard"
    charted = sorted(str(path.parent.relative_to(board)) for path in board.rglob("events.out.tfevents.*"))
    stages = ["domain-pretraining/encoder", *(["domain-pretraining/head"] if domain["fresh_head"] else [])]
    assert charted == sorted(set(charted)) == sorted([*stages, "round-0", "round-1"])
    assert "## Self-training" in (result.output_dir / "report.md").read_text(encoding="utf-8")
