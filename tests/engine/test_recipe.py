"""The training recipe behaves as its knobs say: early stopping on a plateau, accumulation equal to a bigger batch,
class weights for the rare class, and a learning-rate search whose best trial is the report's model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from engine.catalog import resolve_model
from engine.fit import _build_model, _trainer
from engine.spec import JobSpec
from engine.tasks import get_task
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "reviews.csv"
pytestmark = pytest.mark.slow


def _spec(train_file: Path = FIXTURE, test_file: Path | None = None, search: dict | None = None, **params) -> JobSpec:
    data = {"train": str(train_file), "text_column": "review_body", "label_column": "verdict"}
    if test_file is not None:
        data["test"] = str(test_file)
    raw = {
        "task": "text-classification",
        "base_model": "minilm-l6",
        "data": data,
        "params": {"epochs": 2, "max_length": 64, "seed": 7, **params},
    }
    return JobSpec.from_dict(raw | ({"search": search} if search else {}))


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_checkpoint(tmp_path: Path):
    # A learning rate this small leaves the validation score flat: patience 1 ends the run after the 2nd epoch.
    result = train(_spec(epochs=6, learning_rate=1e-9, early_stopping_patience=1), tmp_path / "out")
    info = result.report["train"]
    stopped = info["stopped_early"]
    steps_per_epoch = info["steps"] // 2
    assert stopped is not None and stopped["step"] == info["steps"] == 2 * steps_per_epoch < stopped["of_steps"]
    assert stopped["of_steps"] == 6 * steps_per_epoch and stopped["epoch"] == 2.0
    assert "did not improve for 1 evaluation(s)" in stopped["reason"]
    assert info["best_epoch"] == 1.0  # the flat second epoch did not replace the first as best
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"**Stopped early** at step {stopped['step']} of {stopped['of_steps']}" in markdown
    assert "best checkpoint (epoch 1," in markdown


class _Gradients(TrainerCallback):
    """Keeps the gradient the first optimizer step is taken from."""

    def __init__(self):
        self.first: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not self.first:
            self.first = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _first_gradient(spec: JobSpec, workdir: Path) -> dict[str, torch.Tensor]:
    """The gradient of the first optimizer update on the first 16 training rows, by weight."""
    recipe = get_task(spec.task).recipe()
    model_path = resolve_model(spec.base_model, task=spec.task)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prepared = recipe.prepare(spec, tokenizer)
    prepared.train = prepared.train.select(range(16))
    torch.manual_seed(0)
    gradients = _Gradients()
    trainer = _trainer(
        spec,
        recipe,
        prepared,
        tokenizer,
        lambda: _build_model(recipe, spec, model_path, prepared.labels),
        workdir,
        "fp32",
        [gradients],
    )
    trainer.train()
    assert trainer.state.global_step == 16 // (spec.params.batch_size * spec.params.gradient_accumulation_steps)
    return gradients.first


def test_accumulating_4_batches_of_4_makes_the_same_first_update_as_one_batch_of_16(tmp_path: Path):
    # No dropout and no clipping, so the two runs differ only in how the 16 examples are batched. The gradients
    # are compared: Adam's first step is about lr x sign(gradient), which float noise flips where a gradient is ~0.
    knobs = {"epochs": 1, "dropout": 0.0, "max_grad_norm": 0.0, "seed": 3}
    whole = _first_gradient(_spec(batch_size=16, **knobs), tmp_path / "whole")
    accumulated = _first_gradient(_spec(batch_size=4, gradient_accumulation_steps=4, **knobs), tmp_path / "acc")
    assert whole.keys() == accumulated.keys() and len(whole) > 50
    for name in whole:
        torch.testing.assert_close(accumulated[name], whole[name], rtol=1e-3, atol=1e-7, msg=name)
    four = _first_gradient(_spec(batch_size=4, **knobs), tmp_path / "four")  # one batch of 4: a real difference
    assert not torch.allclose(four["classifier.weight"], whole["classifier.weight"], rtol=1e-2, atol=1e-6)


def test_balanced_class_weights_raise_the_recall_of_the_rare_class(tmp_path: Path):
    frame = pd.read_csv(FIXTURE)
    fresh, rotten = frame[frame.verdict == "fresh"], frame[frame.verdict == "rotten"]
    # Training: 100 fresh reviews and 12 rotten ones; testing on a balanced held-out set.
    frame_train = pd.concat([fresh.iloc[:100], rotten.iloc[:12]]).sample(frac=1, random_state=1)
    frame_test = pd.concat([fresh.iloc[100:], rotten.iloc[12:52]])
    frame_train.to_csv(tmp_path / "train.csv", index=False)
    frame_test.to_csv(tmp_path / "test.csv", index=False)
    recall = {}
    for weights in (None, "balanced"):
        spec = _spec(tmp_path / "train.csv", tmp_path / "test.csv", epochs=3, class_weights=weights)
        report = train(spec, tmp_path / str(weights)).report
        recall[weights] = report["per_class"]["rotten"]["recall"]
    assert recall["balanced"] > recall[None] + 0.1, recall


def test_a_three_trial_search_hands_over_its_best_trial(tmp_path: Path):
    search = {"trials": 3, "learning_rate": [1e-4, 4e-4], "prune": False, "ensemble": 3}
    events = []
    result = train(_spec(epochs=3, search=search), tmp_path / "out", on_event=events.append)
    info = result.report["train"]
    found = info["search"]
    assert len(found["trials"]) == 3 and [t["state"] for t in found["trials"]] == ["complete"] * 3
    best = next(t for t in found["trials"] if t["number"] == found["best_trial"])
    assert best["score"] == max(t["score"] for t in found["trials"])
    assert best["score"] == info["best_validation_macro_f1"]  # the report's model is the best trial's
    assert info["learning_rate"] == best["learning_rate"] == found["best_params"]["learning_rate"]
    assert 1e-4 <= best["learning_rate"] <= 4e-4
    assert found["trials"][0]["learning_rate"] == 1e-4  # the job's own rate is tried first
    phases = [e.phase for e in events if e.kind == "phase"]
    assert [p for p in phases if "trial" in p] == [f"training: trial {i} of 3" for i in (1, 2, 3)]
    saved = json.loads((tmp_path / "out" / "spec.json").read_text(encoding="utf-8"))
    assert saved["search"]["trials"] == 3  # spec.json holds the search as asked, the report what it found
    assert not list((tmp_path / "out").glob("checkpoints/run-*"))  # trial checkpoints do not pile up
    board = tmp_path / "out" / "tensorboard"  # but each trial's curves stay, in a TensorBoard folder of its own
    charted = sorted(path.parent.name for path in board.rglob("events.out.tfevents.*"))
    assert charted == ["trial-0", "trial-1", "trial-2"]
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"| {best['number']} (best, kept) |" in markdown and "3 trial(s), 0 pruned" in markdown
    _check_ensemble_of_trials(found, result, markdown)


def _check_ensemble_of_trials(found: dict, result, markdown: str) -> None:
    """search.ensemble 3: the trials within 0.05 of the best validation score answer together (all three here), the
    report says which, and model/ is an ensemble of them that loads and answers."""
    from engine.predict import Predictor

    ensemble = found["ensemble"]
    members = ensemble["members"]
    by_number = {t["number"]: t for t in found["trials"]}
    assert members[0]["trial"] == found["best_trial"] and len(members) == 3
    for member in members:  # each trial's own validation score, the one its kept checkpoint earned
        assert member["validation_score"] == by_number[member["trial"]]["score"]
        assert member["kept"] == (members[0]["validation_score"] - member["validation_score"] <= 0.05)
    kept = [m["trial"] for m in members if m["kept"]]
    assert len(kept) == 3, members  # on this fixture and seed every trial is close to the best
    saved = json.loads((result.model_dir / "ensemble.json").read_text(encoding="utf-8"))
    assert [m["trial"] for m in saved["members"]] == kept
    assert f"Trials {', '.join(map(str, kept))} answer together" in markdown
    test = pd.read_csv(FIXTURE)
    predictor = Predictor(result.model_dir, precision="fp32")
    assert len(predictor.model.members) == 3
    labels = [row["label"] for row in predictor.classify(list(test["review_body"][:8]))]
    assert set(labels) <= {"fresh", "rotten"}


def test_a_search_ensemble_on_gb18030_chinese_with_flipped_labels_saves_its_kept_trials(tmp_path: Path):
    # 240 of the GB18030 shopping reviews, still GB18030: repeated rows, about 3% flipped labels, English product
    # names among the Chinese.
    from engine.predict import Predictor

    reviews = pd.read_csv(FIXTURES / "zh" / "reviews.csv", encoding="gb18030").head(240)
    reviews.to_csv(tmp_path / "reviews.csv", index=False, encoding="gb18030")
    data = {"train": str(tmp_path / "reviews.csv"), "text_column": "评论内容", "label_column": "情感"}
    spec = JobSpec.from_dict(
        {
            "task": "text-classification",
            "base_model": "minilm-l6",
            "data": data,
            "params": {"epochs": 2, "batch_size": 16, "max_length": 48, "seed": 12, "learning_rate": 1.5e-4},
            # Two close rates give close scores (both 0.822 here), well inside the 0.05 that keeps a trial.
            "search": {"trials": 2, "learning_rate": [1.4e-4, 1.6e-4], "prune": False, "ensemble": 2},
        }
    )
    result = train(spec, tmp_path / "out")
    assert result.report["data"]["files"][0]["encoding"] == "gb18030"
    found = result.report["train"]["search"]
    scores = {t["number"]: t["score"] for t in found["trials"]}
    members = found["ensemble"]["members"]
    assert [m["trial"] for m in members] == sorted(scores, key=lambda n: -scores[n])  # best first
    for member in members:  # the trial's own score, not a second evaluation of its model
        assert member["validation_score"] == scores[member["trial"]]
        assert member["kept"] == (members[0]["validation_score"] - member["validation_score"] <= 0.05)
    kept = [m["trial"] for m in members if m["kept"]]
    assert len(kept) == 2, members
    assert 0.0 <= found["ensemble"]["validation_score"] <= 1.0
    manifest = json.loads((result.model_dir / "ensemble.json").read_text(encoding="utf-8"))
    assert [m["trial"] for m in manifest["members"]] == kept
    assert [m["validation_score"] for m in manifest["members"]] == [scores[t] for t in kept]
    assert "kept" not in manifest["members"][0]
    assert f"Trials {kept[0]}, {kept[1]} answer together" in (result.output_dir / "report.md").read_text("utf-8")
    texts = ["质量很好，物流也快，下次还会再买。", "做工太差了，用了两天就坏，不推荐。", "这款USB充电器还行吧"]
    predictor = Predictor(result.model_dir, precision="fp32")
    assert len(predictor.model.members) == 2
    answers = predictor.classify(texts)
    assert {a["label"] for a in answers} <= {"正面", "负面"}
    each = [Predictor(result.model_dir / m["path"], precision="fp32").classify(texts) for m in manifest["members"]]
    for i, answer in enumerate(answers):  # the folder answers with the mean of its members' probabilities
        for label, score in answer["scores"].items():
            assert score == pytest.approx(sum(member[i]["scores"][label] for member in each) / 2, abs=1e-5)
    assert each[0] != each[1]  # two trials' models, not one saved twice
