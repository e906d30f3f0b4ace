"""Load a finished model once and run it on batches of texts."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from engine.errors import DataError
from engine.export.runtime import load_runtime_model
from engine.export.writers import read_variant_file
from engine.hardware import (
    InferencePrecision,
    cpu_has_amx,
    device_name,
    limit_threads_to_cores,
    resolve_inference_precision,
)
from engine.metrics import softmax
from engine.tasks import Task, task_of_model
from engine.tasks.chat.generation import ReplyStream, generate_reply, stream_reply
from engine.tasks.token_classification.predict import predict_word_tags, tag_spans
from engine.techniques.ensemble import is_ensemble, load_ensemble

DEFAULT_MAX_LENGTH = 512
# Padded tokens one forward pass may hold: 32 texts of 256 tokens; short texts still stop at `batch_size` apiece.
DEFAULT_MAX_BATCH_TOKENS = 8192


def encode(tokenizer: PreTrainedTokenizerBase, texts: list, *, max_length: int, **options: Any) -> BatchEncoding:
    """Every text tokenized once, truncated and unpadded (lists of ids); batches are padded later, each to its own."""
    return tokenizer(texts, truncation=True, max_length=max_length, **options)


def length_batches(
    lengths: list[int], *, batch_size: int, max_tokens: int = DEFAULT_MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Indices sorted by length, cut into batches of at most `batch_size` texts and `max_tokens` padded tokens."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):  # stable: equal lengths keep their order
        # Sorted ascending, so the newcomer is the batch's longest: the batch would pad to its length.
        if current and (len(current) >= batch_size or lengths[i] * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_multiple(device: torch.device) -> int:
    """The multiple sequence lengths are padded to: 8 where matmul tiles want it (GPU tensor cores, AMX), else 1."""
    return 8 if device.type == "cuda" or (device.type == "cpu" and cpu_has_amx()) else 1


def padded_batch(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, encoding: BatchEncoding, idx: list[int]
) -> dict[str, torch.Tensor]:
    """The model inputs of texts `idx`, right-padded to the batch's longest (rounded up to `pad_multiple`).

    Right padding always: real tokens keep positions 0..n-1 whatever the tokenizer's side, so a text's logits do not
    depend on its batch, and a token's logits sit at the same index as in the unpadded encoding.
    """
    device = next(model.parameters()).device
    longest = max(len(encoding["input_ids"][i]) for i in idx)
    multiple = pad_multiple(device)
    rounded = -(-longest // multiple) * multiple
    if rounded > (getattr(model.config, "max_position_embeddings", None) or rounded):
        multiple = 1  # rounding up must not run past the positions the model has
    rows = {name: [encoding[name][i] for i in idx] for name in tokenizer.model_input_names if name in encoding}
    batch = tokenizer.pad(rows, padding=True, pad_to_multiple_of=multiple, padding_side="right", return_tensors="pt")
    return {name: tensor.to(device) for name, tensor in batch.items()}


def batched_logits(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    encoding: BatchEncoding,
    *,
    batch_size: int,
    max_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """(indices, float32 logits) per length-sorted batch of an unpadded encoding; rows follow `indices`."""
    lengths = [len(ids) for ids in encoding["input_ids"]]
    with torch.inference_mode():
        for idx in length_batches(lengths, batch_size=batch_size, max_tokens=max_tokens):
            logits = model(**padded_batch(model, tokenizer, encoding, idx)).logits
            yield idx, logits.float().cpu().numpy()


def predict_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    max_length: int,
    batch_size: int = 32,
    max_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> np.ndarray:
    """Float32 logits for `texts`, in the order given; batches are formed by token count so little goes to padding."""
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    if not texts:
        return out
    encoding = encode(tokenizer, texts, max_length=max_length)
    for idx, logits in batched_logits(model, tokenizer, encoding, batch_size=batch_size, max_tokens=max_tokens):
        out[idx] = logits
    return out


def with_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model in an inference precision: fp32, bf16 weights, or int8 Linear layers (dynamic quantization)."""
    if precision == "bf16":
        return model.to(torch.bfloat16)
    model = model.float()
    if precision == "int8":
        with warnings.catch_warnings():  # torch points eager quantization users at torchao, not installed here
            warnings.filterwarnings("ignore", message="torch.ao.quantization", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
            # Per-channel weight scales: one scale per output row keeps rows with small weights precise. On held-out
            # snippets per-tensor scales cost 2 accuracy points and per-channel none (bench/README.md, export).
            qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    return model


class Predictor:
    """A fine-tuned model loaded once from its folder: `classify`, `tag` or `chat`, as its task offers."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 32,
        precision: InferencePrecision = "auto",
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ):
        """Load the model of `model_dir`; a classifier or tagger runs in `precision` ('auto': bf16 where fast).

        `batch_size` and `max_batch_tokens` cap the texts and the padded tokens of one forward pass.
        """
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a model folder (no config.json); "
                "pass the 'model' folder inside a training output, e.g. runs/reviews/model"
            )
        self.device = device or device_name()
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.threads = limit_threads_to_cores()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.task_info: Task = task_of_model(_config(self.model_dir))
        self.task = self.task_info.name
        # An exported variant (engine.export) says what it is; it runs in the precision it was made for.
        variant = read_variant_file(self.model_dir)
        self.variant: str = variant["name"] if variant else "original"
        if variant and variant["runtime"] != "transformers":  # TorchScript and ONNX variants are CPU programs
            if device not in (None, "cpu"):
                raise ValueError(f"the {self.variant} variant runs on the CPU only, not on {device}")
            self.device = "cpu"
        # Only encoders answering classify() or tag() change precision; a chat model keeps the dtype it was saved in.
        encoder = self.task_info.playground in (self.classify.__name__, self.tag.__name__)
        if not encoder and precision != "auto":
            raise ValueError(f"precision {precision!r} applies to classifiers and taggers, not a {self.task} model")
        if variant and precision not in ("auto", variant["precision"]):
            raise ValueError(
                f"{self.model_dir} is the {self.variant} variant, which runs in {variant['precision']}; "
                f"leave precision at 'auto' rather than {precision!r}"
            )
        precision = variant["precision"] if variant and encoder else precision
        self.precision: str | None = resolve_inference_precision(precision, self.device) if encoder else None
        self.model = self._load(variant)
        self.labels: list[str] = self.task_info.labels_of(self.model)
        self.max_length = self._trained_max_length(variant)

    def _load(self, variant: dict[str, Any] | None) -> Any:
        if variant and variant["runtime"] != "transformers":  # quantized or fixed as exported: run as it is
            return load_runtime_model(self.model_dir, variant["runtime"])
        if is_ensemble(self.model_dir):  # members averaged; everything below reads it as one model
            model = load_ensemble(self.model_dir, self.task_info.load_model, self.device)
        else:
            model = self.task_info.load_model(self.model_dir, self.device)
        return with_precision(model, self.precision) if self.precision else model

    def _trained_max_length(self, variant: dict[str, Any] | None) -> int:
        # Predict with the length the model was trained with: an exported variant carries its source's, a trained
        # model's spec.json sits beside its folder.
        if variant and variant.get("max_length"):
            return int(variant["max_length"])
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
        return {"task": self.task, "variant": self.variant, **self.task_info.serve(self, request)}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `self.labels` order."""
        self._expect(self.classify)
        logits = predict_logits(
            self.model,
            self.tokenizer,
            list(texts),
            max_length=self.max_length,
            batch_size=self.batch_size,
            max_tokens=self.max_batch_tokens,
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

        return tag_spans(
            self.model,
            self.tokenizer,
            list(texts),
            labels=self.labels,
            max_length=self.max_length,
            batch_size=self.batch_size,
            max_tokens=self.max_batch_tokens,
        )

    def tag_words(self, sentences: list[list[str]]) -> list[list[str]]:
        """A tag for every word of pre-tokenized sentences."""
        self._expect(self.tag)

        return predict_word_tags(
            self.model,
            self.tokenizer,
            sentences,
            labels=self.labels,
            max_length=self.max_length,
            batch_size=self.batch_size,
            max_tokens=self.max_batch_tokens,
        )

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
        self,
        messages: list[dict],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.9,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> ReplyStream:
        """The reply piece by piece, as it is generated; then how it ended and its token counts (ReplyStream)."""
        self._expect(self.chat)
        options = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        return stream_reply(self.model, self.tokenizer, messages, **options, stop=stop, seed=seed)


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
