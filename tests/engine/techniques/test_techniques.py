"""The techniques' behaviour on small real runs: augmented rows stay in the training split, FGM changes the
gradient only while training, an ensemble answers with its members' mean, masked-LM loss falls on the domain text,
pseudo-labels are only taken above the threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer

from engine.catalog import resolve_model
from engine.fit import _build_model, _trainer
from engine.predict import Predictor, predict_logits
from engine.spec import JobSpec
from engine.tasks import get_task
from engine.techniques import DomainPretrainingSpec
from engine.techniques.adversarial import AdversarialTrainer, embedding_layers
from engine.techniques.domain import continue_pretraining
from engine.techniques.ensemble import EnsembleModel, save_model
from engine.techniques.self_training import added_per_label, pseudo_labels

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ZH = FIXTURES / "zh" / "reviews.csv"  # GB18030, imbalanced 213/156, a few flipped labels, repeats
EN = FIXTURES / "reviews.csv"


def _spec(train: Path = EN, techniques: dict | None = None, **params) -> JobSpec:
    columns = {"text_column": "评论内容", "label_column": "情感"} if train == ZH else {"text_column": "review_body"}
    return JobSpec.from_dict(
        {
            "task": "text-classification",
            "base_model": "minilm-l6",
            "data": {"train": str(train), **columns},
            "params": {"epochs": 1, "batch_size": 8, "max_length": 48, "seed": 5, "dropout": 0.0, **params},
            **({"techniques": techniques} if techniques else {}),
        }
    )


def _prepared(spec: JobSpec):
    recipe = get_task(spec.task).recipe()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec.base_model, task=spec.task))
    return recipe, tokenizer, recipe.prepare(spec, tokenizer)


def test_augmented_rows_join_the_training_split_only_and_the_summary_counts_them():
    _, tokenizer, plain = _prepared(_spec(ZH))
    _, _, augmented = _prepared(_spec(ZH, {"augment": {"copies": 2, "methods": ["swap", "insert"]}}))
    added = augmented.summary["augmentation"]["added"]
    assert 0 < added <= 2 * len(plain.train)
    assert len(augmented.train) == len(plain.train) + added
    assert list(augmented.validation["input_ids"]) == list(plain.validation["input_ids"])  # never augmented
    assert list(augmented.raw.test["text"]) == list(plain.raw.test["text"])
    assert list(augmented.raw.train["text"]) == list(plain.raw.train["text"])  # the baseline sees the rows as given
    summary = augmented.summary["augmentation"]
    assert summary["unit"] == "character" and set(summary["added_per_label"]) == {"正面", "负面"}
    assert sum(summary["added_per_label"].values()) == added
    example = summary["examples"][0]
    assert example["before"] != example["after"] and " " not in example["after"].strip()  # Chinese edited by character
    held_out = set(plain.raw.validation["text"]) | set(plain.raw.test["text"])
    new_rows = tokenizer.batch_decode(augmented.train["input_ids"][len(plain.train) :], skip_special_tokens=True)
    assert not {text.replace(" ", "") for text in new_rows} & {text.replace(" ", "") for text in held_out} - {
        text.replace(" ", "") for text in plain.raw.train["text"]
    }


def _gradients(spec: JobSpec, trainer_class, tmp_path: Path) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    recipe, tokenizer, prepared = _prepared(spec)
    model_path = resolve_model(spec.base_model, task=spec.task)
    torch.manual_seed(0)
    trainer = _trainer(
        spec,
        recipe,
        prepared,
        tokenizer,
        lambda: _build_model(recipe, spec, model_path, prepared.labels),
        tmp_path,
        "fp32",
        [],
    )
    assert isinstance(trainer, trainer_class)
    batch = trainer.data_collator([prepared.train[i] for i in range(8)])
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    trainer.current_gradient_accumulation_steps = 1  # what the training loop sets before each step
    trainer.model.zero_grad()
    trainer.training_step(trainer.model, batch)
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return grads, trainer.model


def test_fgm_changes_the_gradient_during_a_training_step_and_leaves_no_trace_on_the_model(tmp_path: Path):
    plain, _ = _gradients(_spec(), Trainer, tmp_path / "plain")
    tiny, _ = _gradients(_spec(techniques={"adversarial": {"epsilon": 1e-6}}), AdversarialTrainer, tmp_path / "t")
    pushed, model = _gradients(_spec(techniques={"adversarial": {"epsilon": 2.0}}), AdversarialTrainer, tmp_path / "p")
    name = "classifier.weight"
    # A push of almost nothing: the adversarial pass repeats the clean one, so the gradient doubles.
    torch.testing.assert_close(tiny[name], 2 * plain[name], rtol=1e-3, atol=1e-6)
    gap = (pushed[name] - 2 * plain[name]).norm() / (2 * plain[name]).norm()
    assert gap > 0.05  # a real push changes the gradient
    assert all(not layer._forward_hooks for layer in embedding_layers(model))  # the hook is gone after the step
    model.eval()
    batch = {"input_ids": torch.tensor([[101, 2023, 3185, 2001, 2307, 102]])}
    with torch.no_grad():
        once, twice = model(**batch).logits, model(**batch).logits
    torch.testing.assert_close(once, twice)  # prediction has no perturbation in it


def _members(labels: list[str], seeds: tuple[int, ...]) -> list[torch.nn.Module]:
    path = resolve_model("minilm-l6", task="text-classification")
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={k: i for i, k in enumerate(labels)},
        )
        members.append(model.eval())
    return members


def test_an_ensemble_answers_with_the_mean_of_its_members_probabilities_after_a_save_and_reload(tmp_path: Path):
    labels = ["正面", "负面", "neutre"]
    members = _members(labels, (1, 2, 3))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6", task="text-classification"))
    texts = ["质量很好，物流也快。", "Le café était froid et le service très lent…", "ok " * 200]
    each = [torch.tensor(predict_logits(m, tokenizer, texts, max_length=64)).softmax(-1) for m in members]
    ensemble = torch.tensor(predict_logits(EnsembleModel(members), tokenizer, texts, max_length=64)).softmax(-1)
    torch.testing.assert_close(ensemble, torch.stack(each).mean(0), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(each[0], each[1])  # the members differ, so the mean is not any one of them

    recipe = get_task("text-classification").recipe()
    rows = [{"seed": 1, "kept": True}, {"seed": 4, "kept": False}, {"seed": 2, "kept": True}, {"seed": 3}]
    folder = save_model(EnsembleModel(members), recipe, tokenizer, tmp_path, rows)
    assert sorted(p.name for p in (folder / "members").iterdir()) == ["1", "2", "3"]
    assert not list(folder.glob("*.safetensors"))  # weights per member
    manifest = json.loads((folder / "ensemble.json").read_text(encoding="utf-8"))
    assert manifest["members"] == [{"path": f"members/{i}", "seed": i} for i in (1, 2, 3)]  # the kept rows only
    predictor = Predictor(folder, precision="fp32")  # the members average exactly in fp32
    each = [torch.tensor(predict_logits(m, tokenizer, texts, max_length=predictor.max_length)) for m in members]
    for row, mean in zip(predictor.classify(texts), torch.stack(each).softmax(-1).mean(0), strict=True):
        assert [row["scores"][label] for label in labels] == pytest.approx(mean.tolist(), abs=1e-5)


def test_masked_lm_loss_falls_on_the_domain_text_and_the_adapted_encoder_loads_for_fine_tuning(tmp_path: Path):
    texts = [
        f"Das Kabel Nr. {i} der Serie Überlandleitung hält {i % 7 + 2} Kilovolt aus; Prüfprotokoll {i * 3}."
        for i in range(80)
    ]
    params = _spec().params
    path = resolve_model("minilm-l6", task="text-classification")
    tokenizer = AutoTokenizer.from_pretrained(path)
    folder, info = continue_pretraining(
        path,
        tokenizer,
        texts,
        DomainPretrainingSpec(epochs=3, learning_rate=3e-4),
        params,
        tmp_path,
        precision="fp32",
        callbacks=[],
    )
    assert info["texts"] == 80 and info["held_out"] == 8 and info["steps"] > 0
    assert info["fresh_head"] and info["mlm_loss_head_only"] < info["mlm_loss_before"]  # the head fitted alone first
    assert info["mlm_loss_after"] < info["mlm_loss_head_only"] - 0.1, info  # then the encoder learned the domain
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    reference = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    weights = dict(reference.named_parameters())
    changed = [n for n, p in model.named_parameters() if n in weights and not torch.equal(p, weights[n])]
    assert any("encoder.layer" in name for name in changed)  # the encoder itself moved, not only the head


def test_pseudo_labels_are_only_taken_above_the_threshold_most_confident_first():
    probs = np.array([[0.95, 0.05], [0.60, 0.40], [0.10, 0.90], [0.02, 0.98], [0.91, 0.09], [0.5, 0.5]])
    rows, labels = pseudo_labels(probs, threshold=0.9)
    assert rows == [0, 2, 3, 4] and labels == [0, 1, 1, 0]
    rows, labels = pseudo_labels(probs, threshold=0.9, max_per_label=1)
    assert rows == [0, 3] and labels == [0, 1]  # the surest of each label
    assert added_per_label(labels, ["正面", "负面", "中性"]) == {"正面": 1, "负面": 1, "中性": 0}
    assert pseudo_labels(probs, threshold=0.99) == ([], [])


def test_balanced_pseudo_labels_keep_the_labeled_proportions():
    # Seven confident 'a', two confident 'b', and a labeled split two thirds 'a': the two 'b' allow 6 in all at
    # 2/3 and 1/3, so the four surest 'a' and both 'b'.
    probs = np.array([[0.99 - i / 100, 0.01 + i / 100] for i in range(7)] + [[0.05, 0.95], [0.08, 0.92]])
    rows, labels = pseudo_labels(probs, threshold=0.9, proportions=[2 / 3, 1 / 3])
    assert rows == [0, 1, 2, 3, 7, 8] and labels == [0, 0, 0, 0, 1, 1]
    none_sure = np.array([[0.95, 0.05], [0.97, 0.03]])
    assert pseudo_labels(none_sure, threshold=0.9, proportions=[0.5, 0.5]) == ([], [])  # one label only: none


def test_ensemble_selection_keeps_a_member_only_if_averaging_it_in_does_not_lower_the_validation_score():
    from engine.techniques.ensemble import select_members

    labels = ["a", "b"]
    members = _members(labels, (1, 2, 3))
    alone = {id(members[0]): 0.70, id(members[1]): 0.80, id(members[2]): 0.40}

    def score(model):
        if isinstance(model, EnsembleModel):
            kept = {id(m) for m in model.members}
            return 0.83 if kept == {id(members[0]), id(members[1])} else 0.60
        return alone[id(model)]

    chosen, scores = select_members(members, score)
    assert chosen == [0, 1] and scores == [0.70, 0.80, 0.40]  # the weak third would pull the average down
    alone[id(members[0])] = 0.90  # now no average beats the best member: it is kept alone
    assert select_members(members, score)[0] == [0]


def test_an_ensembles_validation_score_is_computed_like_a_members(tmp_path: Path):
    # An ensemble's forward(**inputs) names no labels, so a Trainer left to find them scored nothing: every
    # ensemble looked no better than its best member, and was never kept.
    from types import SimpleNamespace

    from datasets import Dataset

    from engine.techniques.ensemble import validation_score

    labels = ["negative", "positive"]
    members = _members(labels, (1, 2))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6", task="text-classification"))
    texts = ["a dull, joyless film", "a wonderful cast, très émouvant", "un film ennuyeux", "simply superb"]
    rows = Dataset.from_dict({**tokenizer(texts, truncation=True, max_length=32), "labels": [0, 1, 0, 1]})
    ctx = SimpleNamespace(
        recipe=get_task("text-classification").recipe(), tokenizer=tokenizer, output_dir=tmp_path, precision="fp32"
    )
    prepared = SimpleNamespace(validation=rows, labels=labels)
    alone = [validation_score(ctx, prepared, member) for member in members]
    together = validation_score(ctx, prepared, EnsembleModel(members))
    assert all(isinstance(score, float) for score in alone) and isinstance(together, float)
    assert 0.0 <= together <= 1.0
