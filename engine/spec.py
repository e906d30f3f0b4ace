"""The one description of a fine-tuning job: built by the CLI, the UI and the API, re-validated by the worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Task = Literal["text-classification", "token-classification", "chat"]
FileFormat = Literal["csv", "tsv", "json", "jsonl", "parquet", "conll", "text"]
Method = Literal["lora", "full"]

# Defaults that differ by task; every other default lives on the field itself.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # LoRA adapters start at zero and need a larger step than full fine-tuning to move in a few epochs.
    "chat": {
        "base_model": "smollm2-135m-instruct",
        "params": {"max_length": 512, "batch_size": 8, "learning_rate": 2e-4},
    },
}
Precision = Literal["auto", "bf16", "fp16", "fp32"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSpec(_Frozen):
    """Where the labeled data lives and which columns hold what."""

    train: str = Field(description="Labeled training file (CSV, TSV, JSON, JSONL or Parquet).")
    validation: str | None = Field(
        default=None, description="Optional validation file; split from the training file when absent."
    )
    test: str | None = Field(default=None, description="Optional test file; split from the training file when absent.")
    format: FileFormat | None = Field(
        default=None, description="File format; guessed from the file name and contents when absent."
    )
    text_column: str | None = Field(default=None, description="Column holding the text; guessed when absent.")
    label_column: str | None = Field(default=None, description="Column holding the label; guessed when absent.")
    tokens_column: str | None = Field(
        default=None, description="Token classification, JSON/JSONL: field holding the list of tokens; guessed."
    )
    tags_column: str | None = Field(
        default=None,
        description="Token classification: JSON/JSONL field holding the list of tags, or for CoNLL files the "
        "1-based column number of the tag (default: the last column).",
    )
    messages_column: str | None = Field(
        default=None, description="Chat: field holding the list of {role, content} messages; guessed when absent."
    )
    instruction_column: str | None = Field(
        default=None, description="Chat: column holding the instruction (prompt); guessed when absent."
    )
    input_column: str | None = Field(
        default=None, description="Chat: optional column with extra input appended to the instruction."
    )
    output_column: str | None = Field(
        default=None, description="Chat: column holding the reference answer; guessed when absent."
    )
    validation_fraction: float = Field(
        default=0.1, ge=0.01, le=0.5, description="Share of the training file held out for validation."
    )
    test_fraction: float = Field(
        default=0.1, ge=0.01, le=0.5, description="Share of the training file held out for testing."
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataSpec:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"validation_fraction + test_fraction = {self.validation_fraction + self.test_fraction:.2f} "
                "leaves too little to train on; keep their sum below 0.9"
            )
        return self


class TrainingParams(_Frozen):
    """Hyper-parameters; bounds and descriptions double as the UI's slider bounds and help text."""

    epochs: float = Field(default=3, gt=0, le=100, description="Passes over the training data.")
    learning_rate: float = Field(
        default=1e-4,
        gt=0,
        le=1e-2,
        description="Peak learning rate of AdamW. 1e-4 suits small encoders such as MiniLM; use 2e-5 to 5e-5 for "
        "base-size models.",
    )
    batch_size: int = Field(default=16, ge=1, le=1024, description="Examples per training step.")
    max_length: int = Field(
        default=128, ge=8, le=8192, description="Texts longer than this many tokens are truncated (and counted)."
    )
    warmup_ratio: float = Field(
        default=0.06, ge=0, le=0.5, description="Share of training steps over which the learning rate warms up."
    )
    weight_decay: float = Field(default=0.01, ge=0, le=1, description="AdamW weight decay.")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed for the data split, initialisation and order.")
    method: Method = Field(
        default="lora",
        description="Chat: 'lora' trains small adapter matrices (fast, little memory); 'full' trains every weight.",
    )
    lora_rank: int = Field(default=16, ge=1, le=256, description="LoRA: rank of the adapter matrices.")
    lora_alpha: int = Field(default=32, ge=1, le=1024, description="LoRA: scaling of the adapter (alpha / rank).")
    lora_dropout: float = Field(default=0.05, ge=0, le=0.5, description="LoRA: dropout on the adapter's input.")
    lora_target_modules: tuple[str, ...] | None = Field(
        default=None,
        description="LoRA: names of the layers that get adapters; the architecture's attention and MLP "
        "projections when absent.",
    )
    precision: Precision = Field(
        default="auto",
        description="Numeric precision: 'auto' uses bf16 where the CPU or GPU runs it fast, fp32 otherwise.",
    )


class JobSpec(_Frozen):
    """A whole fine-tuning job: task, base model, data and hyper-parameters."""

    task: Task = Field(default="text-classification", description="What the model learns to do.")
    base_model: str = Field(
        default="minilm-l6",
        min_length=1,
        description="Catalog name (see `playground models`), a local Hugging Face model folder, or a hub id.",
    )
    data: DataSpec
    params: TrainingParams = Field(default_factory=TrainingParams)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: object) -> object:
        # Conversations need a longer window than one-line texts; an explicit max_length always wins.
        if isinstance(raw, dict) and raw.get("task") in TASK_DEFAULTS:
            defaults = TASK_DEFAULTS[raw["task"]]
            raw = {"base_model": defaults["base_model"], **raw}
            params = raw.get("params") or {}
            if isinstance(params, dict):
                raw["params"] = {**defaults["params"], **params}
        return raw

    @model_validator(mode="after")
    def _columns_fit_the_task(self) -> JobSpec:
        if self.task == "text-classification" and (self.data.tokens_column or self.data.tags_column):
            raise ValueError("data.tokens_column/tags_column are for token-classification; use text/label_column")
        if self.task == "token-classification" and (self.data.text_column or self.data.label_column):
            raise ValueError("data.text_column/label_column are for text-classification; use tokens/tags_column")
        chat_columns = ("messages_column", "instruction_column", "input_column", "output_column")
        used = [c for c in chat_columns if getattr(self.data, c)]
        if self.task != "chat" and used:
            raise ValueError(f"data.{used[0]} is for task 'chat', not '{self.task}'")
        if self.task == "chat" and (self.data.text_column or self.data.label_column or self.data.tags_column):
            raise ValueError("chat data is mapped with messages_column or instruction/input/output_column")
        if self.task != "chat" and self.data.format == "text":
            raise ValueError("data.format 'text' (plain text for continued pre-training) needs task 'chat'")
        if self.task == "text-classification" and self.data.format == "conll":
            raise ValueError("data.format 'conll' holds tagged tokens; it needs task 'token-classification'")
        return self

    def to_json(self) -> str:
        """Serialise to indented JSON, the format of spec.json."""
        return self.model_dump_json(indent=2)

    def save(self, path: str | Path) -> None:
        """Write the spec as JSON to `path`."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> JobSpec:
        """Read a spec from a YAML or JSON file; errors name the file and the offending field."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read spec file {path}: {exc.strerror}") from exc
        try:
            raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            kind = "JSON" if path.suffix == ".json" else "YAML"
            raise ValueError(f"spec file {path} is not valid {kind}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"spec file {path} must hold a mapping with at least 'data: {{train: FILE}}'")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "spec") -> JobSpec:
        """Validate a plain dict (parsed YAML/JSON, API body) into a spec with a readable error."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{source} is not a valid job spec:\n{format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the dotted field, what was given, and what is allowed."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        lines.append(f"  - {field}: {err['msg']}{given}")
    return "\n".join(lines)
