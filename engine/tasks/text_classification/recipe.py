"""Text classification: one label per text, a sequence-classification head, macro-F1, TF-IDF baseline."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import datasets
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from engine.adapters import add_adapters
from engine.metrics import classification_metrics, softmax, trainer_compute_metrics
from engine.predict import Predictor, predict_logits
from engine.spec import JobSpec
from engine.tasks.base import Prepared, model_with_head, save_model_folder
from engine.tasks.text_classification import NAME
from engine.tasks.text_classification.data import ClassificationData, load_classification_data
from engine.tasks.text_classification.report import build_classification_report, tfidf_baseline
from engine.techniques import AugmentSpec
from engine.techniques.augment import augment_texts, augmentation_summary


class TextClassification:
    """Recipe for `text-classification`."""

    metric_for_best_model = "macro_f1"
    greater_is_better = True

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        params = spec.params
        data = load_classification_data(spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed)

        train = data.train
        augment = spec.techniques.augment if spec.techniques else None
        if augment is not None:  # the training split only: validation and test stay as the user gave them
            train = _augmented(data, augment, params.seed)
        train = _tokenize(train, tokenizer, params.max_length)
        validation = _tokenize(data.validation, tokenizer, params.max_length)
        return Prepared(train, validation, data.labels, data.summary, raw=data)

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        # The fresh head trains fully; with method 'lora' the rest of the model learns through adapters.
        model = model_with_head(AutoModelForSequenceClassification, model_path, labels)
        return add_adapters(model, spec.params, "SEQ_CLS")

    def collator(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None) -> Any:
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def compute_metrics(self, labels: list[str]) -> Any:
        return trainer_compute_metrics(labels)

    def report(
        self,
        spec: JobSpec,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prepared: Prepared,
        train_info: dict,
    ) -> dict:
        data: ClassificationData = prepared.raw
        # Our own ordered loop, not Trainer.predict: each text stays paired with its prediction.
        test_texts = list(data.test["text"])
        y_true = list(data.test["label"])
        probs = softmax(predict_logits(model, tokenizer, test_texts, max_length=spec.params.max_length))
        baseline = tfidf_baseline(
            list(data.train["text"]), list(data.train["label"]), test_texts, y_true, data.labels, seed=spec.params.seed
        )
        return build_classification_report(
            task=NAME,
            base_model=spec.base_model,
            labels=data.labels,
            test_texts=test_texts,
            y_true=y_true,
            probs=probs,
            baseline=baseline,
            data_summary=data.summary,
            train_info=train_info,
        )

    def save(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
        return save_model_folder(model, tokenizer, output_dir)

    def training_texts(self, prepared: Prepared) -> list[str]:
        return list(prepared.raw.train["text"])

    def training_labels(self, prepared: Prepared) -> list[int]:
        return list(prepared.raw.train["label"])

    def test_texts(self, prepared: Prepared) -> list[str]:
        return list(prepared.raw.test["text"])

    def test_examples(self, prepared: Prepared) -> tuple[list[str], list[int]]:
        return list(prepared.raw.test["text"]), list(prepared.raw.test["label"])

    def test_scores(self, prepared: Prepared, predictor: Predictor) -> dict[str, float]:
        texts, y_true = self.test_examples(prepared)
        predicted = predictor.predict_proba(texts).argmax(axis=1).tolist()
        metrics = classification_metrics(y_true, predicted, prepared.labels)["metrics"]
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    def with_pseudo_labels(
        self,
        prepared: Prepared,
        texts: list[str],
        label_ids: list[int],
        tokenizer: PreTrainedTokenizerBase,
        spec: JobSpec,
    ) -> Prepared:
        if not texts:
            return prepared
        extra = datasets.Dataset.from_dict({"text": texts, "label": label_ids})
        tokenized = _tokenize(extra, tokenizer, spec.params.max_length).cast(prepared.train.features)
        train = datasets.concatenate_datasets([prepared.train, tokenized])
        return dataclasses.replace(prepared, train=train)


def _tokenize(split: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> datasets.Dataset:
    # No padding here: the collator pads each batch to its own longest text.
    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(list(batch["text"]), truncation=True, max_length=max_length)

    return split.map(encode, batched=True, remove_columns=["text"], desc="Tokenizing")


def _augmented(data: ClassificationData, augment: AugmentSpec, seed: int) -> datasets.Dataset:
    """The training split with its augmented copies; the data summary counts them and shows a few."""
    texts, labels = list(data.train["text"]), list(data.train["label"])
    copies = augment_texts(texts, labels, augment, seed=seed)
    data.summary["augmentation"] = augmentation_summary(texts, copies, augment, data.labels)
    extra = datasets.Dataset.from_dict({"text": copies.texts, "label": copies.labels}).cast(data.train.features)
    return datasets.concatenate_datasets([data.train, extra])
