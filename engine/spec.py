"""The one description of a fine-tuning job: built by the CLI, the UI and the API, re-validated by the worker."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from engine import tasks as registry
from engine.export import DEFAULT_SPARSITY, ExportVariant, PruneMethod
from engine.masking import MaskKind, mask_kinds
from engine.params import Frozen as _Frozen
from engine.params import SearchSpec, TrainingParams
from engine.presets import expand_preset
from engine.techniques import Techniques

FileFormat = Literal["csv", "tsv", "json", "jsonl", "parquet", "conll", "text"]


DATA_FILES = ("train", "validation", "test", "unlabeled")


def absolute_path(path: str | None, base: str | Path | None = None) -> str | None:
    """`path` as an absolute path, read relative to `base` (default: the current folder); None stays None."""
    if path is None:
        return None
    return str((Path(base or Path.cwd()) / Path(path).expanduser()).resolve())


class DataSpec(_Frozen):
    """Where the labeled data lives and which columns hold what."""

    train: str = Field(description="Labeled training file (CSV, TSV, JSON, JSONL or Parquet).")
    validation: str | None = Field(
        default=None, description="Optional validation file; split from the training file when absent."
    )
    test: str | None = Field(default=None, description="Optional test file; split from the training file when absent.")
    unlabeled: str | None = Field(
        default=None,
        description="Optional unlabeled texts for domain pre-training and self-training: a .txt file with one text "
        "per line, or a table whose text column has the training file's name (or is guessed).",
    )
    format: FileFormat | None = Field(
        default=None, description="File format; guessed from the file name and contents when absent."
    )
    encoding: str | None = Field(
        default=None,
        description="Text encoding of the data files (utf-8, cp1252, gb18030, shift_jis, big5, ...); guessed when "
        "absent, with a notice that shows decoded samples.",
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
    mask_personal_data: tuple[MaskKind, ...] | None = Field(
        default=None,
        description="Replace personal data in every text with a placeholder before training, so that the model, the "
        "report and the model card never see it: any of email, phone, id (Chinese resident ID, US SSN), card "
        "(Luhn-checked bank-card numbers) and url, comma-separated, or all. The report counts what was masked.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return codecs.lookup(value.strip()).name
        except LookupError as exc:
            raise ValueError(
                f"unknown encoding {value!r}; use a name such as utf-8, cp1252, latin-1, gb18030, shift_jis or big5"
            ) from exc

    @field_validator("mask_personal_data", mode="before")
    @classmethod
    def _known_kinds(cls, value: object) -> object:
        # "email, phone" from the CLI or a text box, a list from YAML, "all"; kept in one order, so equal specs match.
        if value is None or isinstance(value, str | list | tuple | set):
            return mask_kinds(value) or None
        return value

    def with_absolute_paths(self, base: str | Path | None = None) -> DataSpec:
        """The same mapping with relative data files made absolute against `base` (default: the current folder)."""
        return self.model_copy(update={split: absolute_path(getattr(self, split), base) for split in DATA_FILES})

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataSpec:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"validation_fraction + test_fraction = {self.validation_fraction + self.test_fraction:.2f} "
                "leaves too little to train on; keep their sum below 0.9"
            )
        return self


class _Validated(_Frozen):
    """A spec validated from a plain dict (parsed YAML/JSON, an API body) with an error a person can act on."""

    _what: ClassVar[str] = "spec"  # what an error calls it: "job spec", "evaluation spec", ...

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "spec") -> Self:
        """Validate a plain dict into this spec; a ValueError lists each bad field, what was given and allowed."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{source} is not a valid {cls._what}:\n{format_validation_error(exc)}") from exc


def _task_choices(schema: dict[str, Any]) -> None:
    # Read when a schema is made, so a task registered later (a plug-in, a test's toy task) shows up in it.
    schema["enum"] = registry.task_names()


class JobSpec(_Validated):
    """A whole fine-tuning job: task, base model, data and hyper-parameters."""

    _what: ClassVar[str] = "job spec"

    task: str = Field(
        default_factory=lambda: registry.default_task().name,
        description="What the model learns to do.",
        json_schema_extra=_task_choices,
    )
    base_model: str = Field(
        default_factory=lambda: registry.default_task().default_base_model,
        min_length=1,
        description="Catalog name (see `playground models`), a local Hugging Face model folder, or a hub id.",
    )
    data: DataSpec
    params: TrainingParams = Field(default_factory=TrainingParams)
    search: SearchSpec | None = Field(
        default=None,
        description="Optional learning-rate search: trials of this job with sampled knobs, the best one kept.",
    )
    techniques: Techniques | None = Field(
        default=None,
        description="Optional techniques for little labeled data (augmentation, adversarial training, ensembles, "
        "domain pre-training, self-training), compared with the plain recipe in the report.",
    )

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: object) -> object:
        # A task's own defaults (chat: its base model, a longer window), then a preset's knobs (`preset: best`
        # expands into the exact params and search it means); whatever the user gave always wins.
        if not isinstance(raw, dict):
            return raw
        try:
            task = registry.get_task(raw["task"]) if "task" in raw else registry.default_task()
        except ValueError:
            return raw  # the task field's own check names the known tasks
        raw = {"base_model": task.default_base_model, **raw}
        defaults = {**TrainingParams().model_dump(), **task.default_params}
        preset: dict[str, Any] = {"params": {}}
        if raw.get("preset"):
            preset = expand_preset(raw.pop("preset"), defaults, ensembles="ensemble" in task.techniques)
        params = raw.get("params") or {}
        if isinstance(params, dict):
            raw["params"] = {**task.default_params, **preset["params"], **params}
        given = raw.get("search")
        if "search" in preset and (given is None or isinstance(given, dict)):
            raw["search"] = {**preset["search"], **(given or {})}
        return raw

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        registry.get_task(value)
        return value

    @model_validator(mode="after")
    def _columns_fit_the_task(self) -> JobSpec:
        task = registry.get_task(self.task)
        others = {name for other in registry.all_tasks() for name in other.column_fields} - set(task.column_fields)
        used = sorted(name for name in others if getattr(self.data, name, None))
        if used:
            owners = [t.name for t in registry.all_tasks() if used[0] in t.column_fields]
            raise ValueError(
                f"data.{used[0]} is for task {' or '.join(repr(o) for o in owners)}, not {self.task!r}; "
                f"{self.task} reads {', '.join(f'data.{c}' for c in task.column_fields)}"
            )
        foreign = {name for other in registry.all_tasks() for name in other.own_params} - set(task.own_params)
        defaults = TrainingParams()
        for name in sorted(foreign):
            if getattr(self.params, name) != getattr(defaults, name):
                owners = [t.name for t in registry.all_tasks() if name in t.own_params]
                raise ValueError(
                    f"params.{name} is for task {' or '.join(repr(o) for o in owners)}, not {self.task!r}"
                )
        self._techniques_fit(task)
        if self.data.format is not None and self.data.format not in task.formats:
            owners = [t.name for t in registry.all_tasks() if self.data.format in t.formats]
            raise ValueError(
                f"data.format {self.data.format!r} is read by task {' or '.join(repr(o) for o in owners)}, "
                f"not {self.task!r}; {self.task} reads {', '.join(task.formats)}"
            )
        return self

    def _techniques_fit(self, task: registry.Task) -> None:
        used = self.techniques.used() if self.techniques else []
        for name in used:
            if name not in task.techniques:
                offered = ", ".join(f"techniques.{t}" for t in task.techniques) or "none"
                raise ValueError(f"techniques.{name} is not offered for {self.task}; it offers {offered}")
        if self.search is not None and self.search.ensemble > 1 and "ensemble" not in task.techniques:
            raise ValueError(f"search.ensemble is for the tasks that offer ensembles, not {self.task}; set it to 1")
        if used and self.search is not None:
            raise ValueError(
                "a learning-rate search and techniques cannot share a job (every trial would train them all); "
                "run the search first, then set the learning rate it found with the techniques"
            )
        if {"ensemble", "self_training"} <= set(used):
            raise ValueError(
                "techniques.ensemble and techniques.self_training cannot share a job (each round would train every "
                "member); pick one"
            )
        if "self_training" in used and not self.data.unlabeled:
            raise ValueError("techniques.self_training needs unlabeled texts: set data.unlabeled to a file of them")
        if self.data.unlabeled and not {"self_training", "domain_pretraining"} & set(used):
            raise ValueError(
                "data.unlabeled is read only by techniques.self_training and techniques.domain_pretraining; "
                "turn one on or leave the unlabeled file out"
            )

    def plain(self) -> JobSpec:
        """The same job without its techniques: the recipe the report compares them with."""
        data = self.data.model_copy(update={"unlabeled": None})
        return self.model_copy(update={"techniques": None, "data": data})

    def task_info(self) -> registry.Task:
        """The registered task this job trains."""
        return registry.get_task(self.task)

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


class EvaluateSpec(_Validated):
    """Evaluate a finished model on a labeled file and write report.json / report.md."""

    _what: ClassVar[str] = "evaluation spec"

    model: str = Field(min_length=1, description="The model/ folder of a finished training job, or that job's id.")
    data: str = Field(min_length=1, description="Labeled file to evaluate on (CSV, TSV, JSON, JSONL or Parquet).")
    format: FileFormat | None = Field(default=None, description="File format; guessed when absent.")
    text_column: str | None = Field(
        default=None, description="Column holding the text (taggers: the tokens field); guessed when absent."
    )
    label_column: str | None = Field(
        default=None,
        description="Column holding the label (taggers: the tags field, or CoNLL's tag column number); guessed.",
    )


class ExportSpec(_Validated):
    """Make a deployable variant of a finished model and measure it against the original on the job's test split."""

    _what: ClassVar[str] = "export spec"

    model: str = Field(min_length=1, description="The model/ folder of a finished training job, or that job's id.")
    to: ExportVariant = Field(
        description="The variant: bf16 (half-size weights), int8 (dynamically quantized Linear layers, TorchScript, "
        "CPU), onnx (ONNX Runtime) or pruned (the smallest weights of the Linear layers set to zero)."
    )
    sparsity: float = Field(
        default=DEFAULT_SPARSITY,
        ge=0.05,
        le=0.9,
        description="Pruned variant: the share of the encoder's Linear weights (or of its attention heads, with prune "
        "'heads') set to zero (0.3 = 30 percent).",
    )
    prune: PruneMethod = Field(
        default="weights",
        description="Pruned variant: 'weights' zeroes the smallest weights of every Linear layer (one threshold for "
        "all); 'heads' removes whole attention heads, those that add least (BERT-style encoders).",
    )

    @model_validator(mode="after")
    def _sparsity_for_pruning(self) -> ExportSpec:
        if self.to != "pruned" and (self.sparsity != DEFAULT_SPARSITY or self.prune != "weights"):
            raise ValueError(f"sparsity and prune apply to the pruned variant only, not to {self.to!r}")
        return self


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted in an error message, cut short: a 30 MB field is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the dotted field, what was given, and what is allowed."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = f" (got {shown(err['input'])})" if "input" in err and not isinstance(err["input"], dict) else ""
        lines.append(f"  - {field}: {err['msg']}{given}")
    return "\n".join(lines)
