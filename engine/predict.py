"""Load a finished model once and run it on batches of texts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from engine.errors import DataError
from engine.generation import generate_reply, stream_reply
from engine.metrics import softmax
from engine.tagging import predict_word_tags, tag_spans

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
    """A fine-tuned model loaded once from its folder: `classify` for text classifiers, `tag` for entity taggers."""

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
        self.task = model_task(self.model_dir)
        self.model = _MODEL_CLASSES[self.task].from_pretrained(self.model_dir).to(self.device)
        self.model.eval()
        config = self.model.config
        self.labels: list[str] = [] if self.task == "chat" else [config.id2label[i] for i in range(config.num_labels)]
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

    def _expect(self, task: str, method: str) -> None:
        if self.task != task:
            raise ValueError(
                f"{self.model_dir} is a {self.task} model; use {_METHODS[self.task]}() for it, not {method}()"
            )

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `self.labels` order."""
        self._expect("text-classification", "classify")
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
        self._expect("token-classification", "tag")
        if isinstance(texts, str):
            texts = [texts]
        return tag_spans(self.model, self.tokenizer, list(texts), labels=self.labels, max_length=self.max_length)

    def tag_words(self, sentences: list[list[str]]) -> list[list[str]]:
        """A tag for every word of pre-tokenized sentences."""
        self._expect("token-classification", "tag")
        return predict_word_tags(self.model, self.tokenizer, sentences, labels=self.labels, max_length=self.max_length)

    def chat(
        self, messages: list[dict], *, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0
    ) -> str:
        """The assistant's reply to a conversation (list of {role, content})."""
        self._expect("chat", "chat")
        reply = generate_reply(
            self.model, self.tokenizer, messages, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )
        return reply.text

    def stream_chat(
        self, messages: list[dict], *, max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 0.9
    ) -> Iterator[str]:
        """The reply piece by piece, as it is generated."""
        self._expect("chat", "chat")
        yield from stream_reply(
            self.model, self.tokenizer, messages, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )


_MODEL_CLASSES = {
    "text-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "chat": AutoModelForCausalLM,
}
_METHODS = {"text-classification": "classify", "token-classification": "tag", "chat": "chat"}


def model_task(model_dir: str | Path) -> str:
    """The task a model folder serves, from the architecture in its config.json."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    if any(a.endswith("ForTokenClassification") for a in architectures):
        return "token-classification"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "chat"
    return "text-classification"


def predict_file(
    predictor: Predictor, input_path: str | Path, output_path: str | Path, *, text_column: str | None
) -> int:
    """Run a classifier or tagger on every row of a file; write the rows with its predictions (.csv or .jsonl).

    Classifiers add `predicted`, `confidence` and a `p_<label>` column per label; taggers add `entities`.
    """
    from engine.data import read_table

    table = read_table(input_path)
    frame = table.frame
    column = text_column or _likely_text_column(list(frame.columns), frame)
    if column not in frame.columns:
        raise DataError(f"text column {column!r} not found in {input_path}; columns are {list(frame.columns)}")
    texts = ["" if v is None else str(v) for v in frame[column].tolist()]
    out = frame.copy()
    if predictor.task == "token-classification":
        spans = predictor.tag(texts)
        # CSV cells hold the spans as JSON text; JSONL keeps them as lists.
        as_json = Path(output_path).suffix == ".csv"
        out["entities"] = [json.dumps(s, ensure_ascii=False) if as_json else s for s in spans]
    else:
        probs = predictor.predict_proba(texts)
        out["predicted"] = [predictor.labels[i] for i in probs.argmax(axis=1)]
        out["confidence"] = probs.max(axis=1).round(6)
        for j, label in enumerate(predictor.labels):
            out[f"p_{label}"] = probs[:, j].round(6)
    output_path = Path(output_path)
    partial = output_path.with_name(f".{output_path.name}.partial")
    if output_path.suffix in (".jsonl", ".ndjson"):
        out.to_json(partial, orient="records", lines=True, force_ascii=False)
    elif output_path.suffix == ".csv":
        out.to_csv(partial, index=False)
    else:
        raise ValueError(f"cannot write predictions to {output_path.name}: use a .csv or .jsonl file name")
    os.replace(partial, output_path)
    return len(out)


def _likely_text_column(columns: list[str], frame) -> str:
    # Unlabeled input: a column called text, the only column, or the string column with the longest values.
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    lengths = {c: frame[c].astype(str).str.len().mean() for c in columns}
    return max(lengths, key=lengths.get)
