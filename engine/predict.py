"""Load a finished model once and run it on batches of texts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from engine.errors import DataError
from engine.metrics import softmax
from engine.tasks import Task, task_of_model
from engine.tasks.chat.generation import generate_reply, stream_reply
from engine.tasks.token_classification.predict import predict_word_tags, tag_spans
from engine.techniques.ensemble import is_ensemble, load_ensemble

DEFAULT_MAX_LENGTH = 512


def predict_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    max_length: int,
    batch_size: int = 32,
) -> np.ndarray:
    """Logits for `texts`, in the order given; batches are formed by length so little time goes into padding."""
    if not texts:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            ).to(device)
            out[idx] = model(**batch).logits.float().cpu().numpy()
    return out


class Predictor:
    """A fine-tuned model loaded once from its folder: `classify`, `tag` or `chat`, as its task offers."""

    def __init__(self, model_dir: str | Path, *, device: str | None = None, batch_size: int = 32):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a model folder (no config.json); "
                "pass the 'model' folder inside a training output, e.g. runs/reviews/model"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.task_info: Task = task_of_model(_config(self.model_dir))
        self.task = self.task_info.name
        if is_ensemble(self.model_dir):  # members averaged; everything below reads it as one model
            self.model = load_ensemble(self.model_dir, self.task_info.load_model, self.device)
        else:
            self.model = self.task_info.load_model(self.model_dir, self.device)
        self.labels: list[str] = self.task_info.labels_of(self.model)
        self.max_length = self._trained_max_length()

    def _trained_max_length(self) -> int:
        # Predict with the length the model was trained with (spec.json sits beside the model folder).
        spec_path = self.model_dir.parent / "spec.json"
        if spec_path.is_file():
            try:
                return int(json.loads(spec_path.read_text(encoding="utf-8"))["params"]["max_length"])
            except (KeyError, ValueError, TypeError):
                pass  # a hand-edited spec: fall back to the tokenizer's own limit
        return min(int(getattr(self.tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)), DEFAULT_MAX_LENGTH)

    def _expect(self, method: Callable) -> None:
        # The task's playground interaction names the one method (classify, tag or chat) its models answer.
        if self.task_info.playground != method.__name__:
            raise ValueError(
                f"{self.model_dir} is a {self.task} model; use {self.task_info.playground}() for it, "
                f"not {method.__name__}()"
            )

    def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer a REST-style request ({text | texts | messages, options}) the way the model's task does."""
        return {"task": self.task, **self.task_info.serve(self, request)}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `self.labels` order."""
        self._expect(self.classify)
        logits = predict_logits(
            self.model, self.tokenizer, list(texts), max_length=self.max_length, batch_size=self.batch_size
        )
        return softmax(logits)

    def classify(self, texts: list[str] | str) -> list[dict[str, Any]]:
        """Label, its probability, and every label's probability for each text."""
        if isinstance(texts, str):
            texts = [texts]
        probs = self.predict_proba(texts)
        results = []
        for row in probs:
            best = int(row.argmax())
            results.append(
                {
                    "label": self.labels[best],
                    "score": round(float(row[best]), 6),
                    "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)},
                }
            )
        return results

    def tag(self, texts: list[str] | str) -> list[list[dict[str, Any]]]:
        """Entity spans for each raw text: text, type, start and end character offsets, score."""
        self._expect(self.tag)
        if isinstance(texts, str):
            texts = [texts]

        return tag_spans(self.model, self.tokenizer, list(texts), labels=self.labels, max_length=self.max_length)

    def tag_words(self, sentences: list[list[str]]) -> list[list[str]]:
        """A tag for every word of pre-tokenized sentences."""
        self._expect(self.tag)

        return predict_word_tags(self.model, self.tokenizer, sentences, labels=self.labels, max_length=self.max_length)

    def chat(
        self, messages: list[dict], *, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0
    ) -> str:
        """The assistant's reply to a conversation (list of {role, content})."""
        self._expect(self.chat)

        reply = generate_reply(
            self.model, self.tokenizer, messages, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )
        return reply.text

    def stream_chat(
        self, messages: list[dict], *, max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 0.9
    ) -> Iterator[str]:
        """The reply piece by piece, as it is generated."""
        self._expect(self.chat)

        yield from stream_reply(
            self.model, self.tokenizer, messages, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )


def _config(model_dir: Path) -> dict[str, Any]:
    return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))


def model_task(model_dir: str | Path) -> str:
    """The task a model folder serves, from the architecture in its config.json."""
    return task_of_model(_config(Path(model_dir))).name


def predict_file(
    predictor: Predictor, input_path: str | Path, output_path: str | Path, *, text_column: str | None = None
) -> int:
    """Run a model on every row of a file and write the rows with its predictions (.csv or .jsonl), as its task does.

    Classifiers add `predicted`, `confidence` and a `p_<label>` column per label; taggers add `entities`; chat
    models answer each line of a JSONL file of prompts.
    """
    return predictor.task_info.predict_file(predictor, Path(input_path), Path(output_path), text_column=text_column)


def predict_table(
    input_path: Path,
    output_path: Path,
    columns: Callable[[list[str], bool], dict[str, list]],
    *,
    text_column: str | None,
) -> int:
    """Read a table of texts, add the prediction columns `columns(texts, as_json)` makes, write it atomically."""
    from engine.tabular import likely_text_column, read_table

    output_path = Path(output_path)
    if output_path.suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ValueError(f"cannot write predictions to {output_path.name}: use a .csv or .jsonl file name")
    frame = read_table(input_path).frame
    column = text_column or likely_text_column(frame)
    if column not in frame.columns:
        raise DataError(f"text column {column!r} not found in {input_path}; columns are {list(frame.columns)}")
    texts = ["" if v is None else str(v) for v in frame[column].tolist()]
    out = frame.copy()
    for name, values in columns(texts, output_path.suffix == ".csv").items():
        out[name] = values
    partial = output_path.with_name(f".{output_path.name}.partial")
    if output_path.suffix == ".csv":
        out.to_csv(partial, index=False)
    else:
        out.to_json(partial, orient="records", lines=True, force_ascii=False)
    os.replace(partial, output_path)
    return len(out)
