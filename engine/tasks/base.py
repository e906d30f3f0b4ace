"""The task interface: what a task tells the edges (columns, metric, defaults, views) and what `train` drives.

A `Task` is cheap to import: the web app and the CLI read its fields (columns, headline metric, default base model)
without loading torch. Its heavy parts (the training recipe, prediction, evaluation, views) load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from engine.files import atomic_dir
from engine.heads import export_code

if TYPE_CHECKING:
    import datasets
    import pandas as pd
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from engine.predict import Predictor
    from engine.spec import DataSpec, JobSpec

# The interactions the playground, share pages and REST know how to offer; a task picks the one that fits it.
Playground = Literal["classify", "tag", "chat"]
# What kind of pretrained model a task fine-tunes: a bidirectional encoder or a causal language model.
Architecture = Literal["encoder", "causal-lm"]


@dataclass(frozen=True)
class Column:
    """A DataSpec column field a task reads, with the question the Data tab asks about it."""

    field: str
    question: str


@dataclass
class ReportView:
    """A report in plain parts for a screen: markdown, tables (DataFrames) and HTML; None where a task has none."""

    headline: str
    how_to_read: str
    per_class: pd.DataFrame | None = None
    confusion: str | None = None  # HTML table
    errors: pd.DataFrame | None = None
    errors_label: str = ""
    details: str | None = None  # markdown below the scores (e.g. entity error kinds)
    generations: pd.DataFrame | None = None


@dataclass
class Prepared:
    """Tokenized splits ready for the Trainer, the label names, the data summary, and the task's raw data."""

    train: datasets.Dataset
    validation: datasets.Dataset
    labels: list[str]
    summary: dict
    raw: Any  # what the task needs again for its report (test texts, gold labels, training split for a baseline)


class TrainingRecipe(Protocol):
    """The heavy half of a task, loaded by `Task.recipe()`; `engine.train.train` calls these in order."""

    metric_for_best_model: str  # a key of compute_metrics' result, without the "eval_" prefix
    greater_is_better: bool

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        """Load, validate, split and tokenize the data; raise DataError for unusable input."""
        ...

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        """The pretrained model with a fresh head for `labels`, label names stored in its config."""
        ...

    def collator(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None) -> Any:
        """Pads each batch to its own longest example."""
        ...

    def compute_metrics(self, labels: list[str]) -> Any:
        """Trainer `compute_metrics` for the validation split."""
        ...

    def report(
        self,
        spec: JobSpec,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prepared: Prepared,
        train_info: dict,
    ) -> dict:
        """The test-split report (report.json schema) of the trained model."""
        ...

    def save(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
        """Write the trained model (Hugging Face format) into output_dir; return the folder to load it from."""
        ...

    # ---- what the techniques (engine.techniques) ask of a recipe; a task answers for those it offers ----------

    def training_texts(self, prepared: Prepared) -> list[str]:
        """The training split's texts as plain text (domain pre-training reads them)."""
        ...

    def training_labels(self, prepared: Prepared) -> list[int]:
        """The label id of each row of the training split as given (self-training keeps their proportions)."""
        ...

    def test_texts(self, prepared: Prepared) -> list[str]:
        """The test split's texts as plain text (an ensemble's latency is timed on them)."""
        ...

    def test_examples(self, prepared: Prepared) -> tuple[list[str], list[int]] | None:
        """The test texts and their label ids, for a task with one label per text; None for other tasks."""
        ...

    def with_pseudo_labels(
        self,
        prepared: Prepared,
        texts: list[str],
        label_ids: list[int],
        tokenizer: PreTrainedTokenizerBase,
        spec: JobSpec,
    ) -> Prepared:
        """`prepared` with pseudo-labeled texts added to its training split (self-training)."""
        ...

    # ---- what an export (engine.export) asks: the same test split, scored through any Predictor ----------------

    def test_scores(self, prepared: Prepared, predictor: Predictor) -> dict[str, float]:
        """The headline test metrics of `predictor` (any variant of the model) on the test split."""
        ...


# The TrainingParams fields of the fine-tuning method (full, or LoRA with its settings), read by every task.
METHOD_PARAMS = ("method", "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules")


@dataclass(frozen=True)
class Task:
    """One fine-tuning task as every edge sees it. Subclasses fill the fields and the hooks below."""

    name: str
    title: str  # "Text classification: one label per text"; the part before ':' is the short name
    columns: tuple[Column, ...]  # the DataSpec column fields this task reads, in the order the Data tab asks
    formats: tuple[str, ...]  # the DataSpec formats this task reads
    architecture: Architecture
    default_base_model: str
    headline_metric: str  # the report metric runs of this task are compared by
    headline_name: str  # how people call it: "macro F1"
    greater_is_better: bool
    playground: Playground
    how_to_read: str  # the Report tab's explanation of the numbers
    default_params: Mapping[str, Any] = field(default_factory=dict)  # TrainingParams defaults that differ here
    own_params: tuple[str, ...] = ()  # TrainingParams fields only this task reads (others never see them)
    techniques: tuple[str, ...] = ()  # the Techniques fields (engine.techniques) this task's recipe applies
    exports: tuple[str, ...] = ()  # the variants engine.export can make of its models (bf16, int8, ...)
    curve_metrics: tuple[str, ...] = ()  # eval scores drawn in the training curves; none: the loss only
    model_architectures: tuple[str, ...] = ()  # config.json architecture suffixes of a model fine-tuned for it
    demo_prompt: tuple[str, str, str] = (
        "Type or paste a text:",
        "Submit",
        "submit",
    )  # share page: question, button, id
    file_suffixes: tuple[str, ...] = ()  # suffixes of files in a format of this task's own (CoNLL)
    file_format: str | None = None  # the DataSpec format those files are

    default_task: ClassVar[bool] = False  # the task a file matches when no task claims it

    @property
    def short_title(self) -> str:
        """'Text classification'."""
        return self.title.split(":")[0]

    @property
    def column_fields(self) -> tuple[str, ...]:
        """The names of the DataSpec fields in `columns`."""
        return tuple(column.field for column in self.columns)

    # ---- heavy parts, loaded on first use ------------------------------------------------------------------------

    def recipe(self) -> TrainingRecipe:
        """The training recipe (data, head, collator, metrics, report) that `engine.train.train` drives."""
        raise NotImplementedError

    def inspect(self, data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42) -> dict:
        """The validation summary of a data mapping; without a tokenizer lengths are counted in words."""
        raise NotImplementedError

    def render_markdown(self, report: dict) -> str:
        """report.md for this task's report.json."""
        raise NotImplementedError

    def load_model(self, model_dir: Path, device: str) -> PreTrainedModel:
        """The fine-tuned model of a folder, in eval mode on `device`."""
        raise NotImplementedError

    def labels_of(self, model: PreTrainedModel) -> list[str]:
        """The label names a loaded model predicts (empty for tasks without labels)."""
        config = model.config
        return [config.id2label[i] for i in range(config.num_labels)]

    def shown_labels(self, labels: list[str]) -> list[str]:
        """The labels as a person reads them (entity types rather than IOB tags)."""
        return labels

    def serve(self, predictor: Predictor, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one REST / share-page request ({text | texts | messages, options}); ValueError for a wrong shape."""
        raise NotImplementedError

    def request_for_text(self, text: str) -> dict[str, Any]:
        """The `serve` request for one typed text (a share page's form): a text, or a one-message conversation."""
        return {"text": text}

    def predict_file(self, predictor: Predictor, input_path: Path, output_path: Path, **options: Any) -> int:
        """Predict every row of a file into a .csv or .jsonl beside it; returns the number of rows."""
        raise NotImplementedError

    def evaluate(self, predictor: Predictor, data_file: str, columns: dict[str, Any], spec: JobSpec | None) -> dict:
        """The report of a finished model on a labeled file (columns: text/label or tokens/tags, and format)."""
        raise ValueError(f"{self.name} models are not evaluated on a file; their report comes from training")

    def summary_view(self, summary: dict, dataset_name: str = "") -> tuple[str, pd.DataFrame]:
        """The Data tab's view of a validation summary: sentences in markdown, and the counts to chart."""
        raise NotImplementedError

    def report_view(self, report: dict, title: str) -> ReportView:
        """The Report tab's view of a report.json."""
        raise NotImplementedError

    def about(self, base_model: str, trained_on: str, labels: list[str]) -> str:
        """One sentence (HTML-safe input expected) saying what a shared model does."""
        return f"A {self.short_title.lower()} model fine-tuned from {base_model}{trained_on}."

    def detect(self, path: Path, frame: pd.DataFrame | None) -> int:
        """How sure this task is that a file is its data (0: not at all); the most sure task wins."""
        return 0

    def preview(self, path: Path, frame: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, int, str]:
        """The file's first records as a person reads them, how many records it holds, and what they are called."""
        from engine.report_views import readable_frame

        return readable_frame(frame.head(rows)), len(frame), "rows"

    def one_line(self, text: str, result: Any) -> str:
        """A prediction for the terminal."""
        return f"{result}\t{text}"


def model_with_head(auto_class: Any, model_path: str, labels: list[str]) -> PreTrainedModel:
    """The pretrained model with a fresh classification head for `labels`, their names stored in its config."""
    return auto_class.from_pretrained(
        model_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a base model that already has a head of another size gets a fresh one
    )


def save_model_folder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
    """model/ with weights (safetensors), config with label names, and tokenizer, written atomically.

    A LoRA model is saved merged, with its adapter alone beside it in adapter/.
    """
    from engine.adapters import merged
    from engine.precision import to_storage_dtype

    model = merged(to_storage_dtype(model), tokenizer, output_dir)
    final = output_dir / "model"
    with atomic_dir(final) as partial:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        export_code(model, partial)  # a head of our own travels with the folder, for plain transformers users
    return final
