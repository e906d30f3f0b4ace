"""Token classification (named entities): a tag per word, entity-level seqeval scores, a most-frequent-tag baseline."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tasks.base import METHOD_PARAMS, Column, ReportView, Task
from engine.tasks.text_classification import texts_of

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel

    from engine.predict import Predictor
    from engine.spec import DataSpec, JobSpec

NAME = "token-classification"
# Files with one token and its tag per line; read as CoNLL, never as a table.
CONLL_EXTENSIONS = (".conll", ".conll03", ".conll2003", ".bio", ".iob", ".iob2", ".bioes", ".ner")
_TAG = re.compile(r"^(O|[BIES]-.+|[BIES]|-X-)$")
HOW_TO_READ = (
    "**How to read this.** Scores are per *entity*: a name counts as found only with exactly its words and its "
    "type. *Micro F1* pools all entities; *macro F1* averages the types, so rare types weigh as much as common "
    "ones. *Token accuracy* counts single words (easy to get high: most words are no entity). *Support*: test "
    "entities of that type. In the matrix, column O is a missed entity and row O a spurious one. The *baseline* "
    "tags each word with the tag it had most often in training."
)


@dataclass(frozen=True)
class TokenClassificationTask(Task):
    """Find the entities (people, places, ...) in a text, word by word."""

    def recipe(self):
        from engine.tasks.token_classification.recipe import TokenClassification

        return TokenClassification()

    def inspect(self, data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42) -> dict:
        from engine.tasks.token_classification.data import inspect_token_data

        return inspect_token_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed)

    def render_markdown(self, report: dict) -> str:
        from engine.tasks.token_classification.report import render_ner_markdown

        return render_ner_markdown(report)

    def load_model(self, model_dir: Path, device: str) -> PreTrainedModel:
        from transformers import AutoModelForTokenClassification

        import engine.heads.gemma3_token_classification  # noqa: F401  (registers the Gemma 3 tagging head)

        return AutoModelForTokenClassification.from_pretrained(model_dir).to(device).eval()

    def shown_labels(self, labels: list[str]) -> list[str]:
        return sorted({label.split("-", 1)[1] for label in labels if "-" in label})

    def serve(self, predictor: Predictor, request: dict[str, Any]) -> dict[str, Any]:
        return {"labels": predictor.labels, "entities": predictor.tag(texts_of(request, self.name))}

    def predict_file(self, predictor: Predictor, input_path: Path, output_path: Path, **options: Any) -> int:
        from engine.predict import predict_table

        def columns(texts: list[str], as_json: bool) -> dict[str, list]:
            # CSV cells hold the spans as JSON text; JSONL keeps them as lists.
            spans = predictor.tag(texts)
            return {"entities": [json.dumps(s, ensure_ascii=False) if as_json else s for s in spans]}

        return predict_table(input_path, output_path, columns, text_column=options.get("text_column"))

    def evaluate(self, predictor: Predictor, data_file: str, columns: dict[str, Any], spec: JobSpec | None) -> dict:
        from engine.tasks.token_classification.evaluate import evaluate_tagger

        return evaluate_tagger(predictor, data_file, columns, spec)

    def summary_view(self, summary: dict, dataset_name: str = "") -> tuple[str, pd.DataFrame]:
        from engine.report_views import counts_frame
        from engine.tasks.token_classification.views import ner_summary_markdown

        return ner_summary_markdown(summary, dataset_name), counts_frame(summary)

    def report_view(self, report: dict, title: str) -> ReportView:
        from engine.report_views import confusion_html, per_class_frame
        from engine.tasks.token_classification.views import (
            error_kinds_markdown,
            ner_errors_frame,
            ner_headline_markdown,
        )

        return ReportView(
            headline=ner_headline_markdown(report, title),
            how_to_read=self.how_to_read,
            per_class=per_class_frame(report),
            confusion=confusion_html(report),
            errors=ner_errors_frame(report),
            errors_label="Entity errors on the test split, with the sentence they come from",
            details=error_kinds_markdown(report),
        )

    def about(self, base_model: str, trained_on: str, labels: list[str]) -> str:
        return (
            f"An entity tagger fine-tuned from <strong>{base_model}</strong>{trained_on}. "
            f"It finds: {', '.join(labels)}."
        )

    def preview(self, path: Path, frame: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, int, str]:
        """Sentences with their tags (a CoNLL file has one token a line: as a table it reads as noise)."""
        import pandas as pd

        from engine.errors import DataError
        from engine.spec import DataSpec
        from engine.tasks.token_classification.files import read_tagged_file
        from engine.tasks.token_classification.metrics import join_tokens

        try:
            tagged = read_tagged_file(str(path), DataSpec(train=str(path)), path.stat().st_size + 1)
        except (DataError, OSError):
            return super().preview(path, frame, rows)
        shown = [
            {"sentence": join_tokens(tokens), "tags": " ".join(tags)}
            for tokens, tags in zip(tagged.tokens[:rows], tagged.tags[:rows], strict=True)
        ]
        return pd.DataFrame(shown, columns=["sentence", "tags"]), len(tagged.tokens), "sentences"

    def detect(self, path: Path, frame: pd.DataFrame | None) -> int:
        if path.suffix.lower() in CONLL_EXTENSIONS:
            return 3
        if frame is None or frame.empty:
            return 0
        names = {str(c).lower() for c in frame.columns}
        first = frame.iloc[0]
        lists = [c for c in frame.columns if isinstance(first[c], list | tuple)]
        if len(lists) >= 2 or {"tokens", "tags"} <= names or {"tokens", "ner_tags"} <= names:
            return 2
        # A headerless two-column file whose last column is all tags reads as CoNLL.
        last = frame.columns[-1]
        if len(frame.columns) <= 4 and (_TAG.match(str(last)) or str(last).startswith("-DOCSTART-")):
            values = frame[last].dropna().astype(str).head(200)
            if len(values) and all(_TAG.match(v) for v in values):
                return 2
        return 0

    def one_line(self, text: str, result: Any) -> str:
        spans = ", ".join(f"{s['text']} [{s['type']}]" for s in result) or "(no entities)"
        return f"{text}\n  -> {spans}"


TOKEN_CLASSIFICATION = TokenClassificationTask(
    name=NAME,
    title="Token classification (NER): find names, places, … inside a text",
    columns=(
        Column("tokens_column", "Which field holds the list of tokens?"),
        Column(
            "tags_column", "Which field holds the list of tags? (CoNLL: the tag column's number, default the last)"
        ),
    ),
    formats=("conll", "csv", "tsv", "json", "jsonl", "parquet"),
    architecture="encoder",
    default_base_model="minilm-l6",
    headline_metric="micro_f1",
    headline_name="micro F1",
    greater_is_better=True,
    playground="tag",
    own_params=(*METHOD_PARAMS, "class_weights"),
    techniques=("adversarial", "ensemble", "domain_pretraining"),
    exports=("bf16", "int8", "onnx", "pruned"),
    how_to_read=HOW_TO_READ,
    curve_metrics=("macro_f1", "micro_f1"),  # not token accuracy: high from the first step, most tokens are O
    model_architectures=("ForTokenClassification",),
    demo_prompt=("Type or paste a text to find its entities:", "Find entities", "tag"),
    file_suffixes=CONLL_EXTENSIONS,
    file_format="conll",
)
