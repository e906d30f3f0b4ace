"""Token classification (named entities): a tag per word, first sub-token carries the label, seqeval metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

import engine.heads.gemma3_token_classification  # noqa: F401  (registers the Gemma 3 tagging head)
from engine.adapters import add_adapters
from engine.spec import JobSpec
from engine.tasks.base import Prepared, model_with_head, save_model_folder
from engine.tasks.token_classification.data import (
    TokenClassificationData,
    load_token_classification_data,
)
from engine.tasks.token_classification.metrics import (
    entity_metrics,
    most_frequent_tag_baseline,
    trainer_compute_metrics,
)
from engine.tasks.token_classification.predict import predict_word_tags
from engine.tasks.token_classification.report import build_token_classification_report

if TYPE_CHECKING:
    from engine.predict import Predictor

IGNORE = -100  # label of positions the loss skips


def align_tags(word_ids: list[int | None], word_tags: list[int]) -> list[int]:
    """Sub-token labels: a word's tag on its first sub-token, IGNORE on the rest and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(word_tags[word] if word is not None and word != previous else IGNORE)
        previous = word
    return labels


class TokenClassification:
    """Recipe for `token-classification`."""

    metric_for_best_model = "micro_f1"  # the headline number of NER benchmarks (CoNLL's F1 is micro over entities)
    greater_is_better = True

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        params = spec.params
        data = load_token_classification_data(
            spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed
        )

        def encode(batch: dict[str, list]) -> dict[str, list]:
            enc = tokenizer(
                [list(t) for t in batch["tokens"]],
                is_split_into_words=True,
                truncation=True,
                max_length=params.max_length,
            )
            enc["labels"] = [align_tags(enc.word_ids(i), list(tags)) for i, tags in enumerate(batch["tags"])]
            return enc

        splits = datasets.DatasetDict(train=data.train, validation=data.validation)
        tokenized = splits.map(encode, batched=True, remove_columns=["tokens", "tags"], desc="Tokenizing")
        return Prepared(tokenized["train"], tokenized["validation"], data.labels, data.summary, raw=data)

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        # The fresh head trains fully; with method 'lora' the rest of the model learns through adapters.
        model = model_with_head(AutoModelForTokenClassification, model_path, labels)
        return add_adapters(model, spec.params, "TOKEN_CLS")

    def collator(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None) -> Any:
        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

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
        data: TokenClassificationData = prepared.raw
        names = data.labels

        def as_tags(split: datasets.Dataset) -> tuple[list[list[str]], list[list[str]]]:
            return [list(t) for t in split["tokens"]], [[names[i] for i in tags] for tags in split["tags"]]

        train_tokens, train_tags = as_tags(data.train)
        test_tokens, test_tags = as_tags(data.test)
        predicted = predict_word_tags(model, tokenizer, test_tokens, labels=names, max_length=spec.params.max_length)
        return build_token_classification_report(
            base_model=spec.base_model,
            labels=names,
            entity_types=data.entity_types,
            test_tokens=test_tokens,
            y_true_tags=test_tags,
            y_pred_tags=predicted,
            baseline=most_frequent_tag_baseline(train_tokens, train_tags, test_tokens, test_tags),
            data_summary=data.summary,
            train_info=train_info,
        )

    def save(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
        return save_model_folder(model, tokenizer, output_dir)

    def training_texts(self, prepared: Prepared) -> list[str]:
        return [" ".join(tokens) for tokens in prepared.raw.train["tokens"]]

    def test_texts(self, prepared: Prepared) -> list[str]:
        return [" ".join(tokens) for tokens in prepared.raw.test["tokens"]]

    def test_examples(self, prepared: Prepared) -> None:
        return None  # a tag per word, not a label per text: no accuracy to attack

    def test_scores(self, prepared: Prepared, predictor: Predictor) -> dict[str, float]:
        data: TokenClassificationData = prepared.raw
        tokens = [list(t) for t in data.test["tokens"]]
        gold = [[data.labels[i] for i in tags] for tags in data.test["tags"]]
        scores = entity_metrics(gold, predictor.tag_words(tokens), entity_types=data.entity_types)["metrics"]
        return {name: scores[name] for name in ("micro_f1", "micro_precision", "micro_recall")}

    def with_pseudo_labels(
        self, prepared: Prepared, texts: list[str], label_ids: list[int], tokenizer, spec
    ) -> Prepared:
        raise ValueError("self-training is offered for text classification only")
