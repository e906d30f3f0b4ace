"""Text classification: one label per text, a sequence-classification head, macro-F1 and a TF-IDF baseline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tasks.base import METHOD_PARAMS, Column, ReportView, Task

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel

    from engine.predict import Predictor
    from engine.spec import DataSpec, JobSpec

NAME = "text-classification"
HOW_TO_READ = (
    "**How to read this.** *Precision*: when the model says a label, how often it is right. *Recall*: of the "
    "test rows that really have the label, how many it finds. *F1* combines both (1.0 is perfect). *Support*: "
    "test rows with that label. The *baseline* is a simple word-counting model (TF-IDF + logistic regression) "
    "trained on the same rows: a fine-tuned model should beat it."
)


@dataclass(frozen=True)
class TextClassificationTask(Task):
    """Label each text with one of the labels seen in training."""

    def recipe(self):
        from engine.tasks.text_classification.recipe import TextClassification

        return TextClassification()

    def inspect(self, data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42) -> dict:
        from engine.tasks.text_classification.data import inspect_data

        return inspect_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed)

    def render_markdown(self, report: dict) -> str:
        from engine.tasks.text_classification.report import render_markdown

        return render_markdown(report)

    def load_model(self, model_dir: Path, device: str) -> PreTrainedModel:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()

    def serve(self, predictor: Predictor, request: dict[str, Any]) -> dict[str, Any]:
        return {"labels": predictor.labels, "predictions": predictor.classify(texts_of(request, self.name))}

    def predict_file(self, predictor: Predictor, input_path: Path, output_path: Path, **options: Any) -> int:
        from engine.predict import predict_table

        def columns(texts: list[str], as_json: bool) -> dict[str, list]:
            probs = predictor.predict_proba(texts)
            out: dict[str, list] = {
                "predicted": [predictor.labels[i] for i in probs.argmax(axis=1)],
                "confidence": list(probs.max(axis=1).round(6)),
            }
            out.update({f"p_{label}": list(probs[:, j].round(6)) for j, label in enumerate(predictor.labels)})
            return out

        return predict_table(input_path, output_path, columns, text_column=options.get("text_column"))

    def evaluate(self, predictor: Predictor, data_file: str, columns: dict[str, Any], spec: JobSpec | None) -> dict:
        from engine.tasks.text_classification.evaluate import evaluate_classifier

        return evaluate_classifier(predictor, data_file, columns, spec)

    def summary_view(self, summary: dict, dataset_name: str = "") -> tuple[str, pd.DataFrame]:
        from engine.report_views import label_frame
        from engine.tasks.text_classification.views import summary_markdown

        return summary_markdown(summary, dataset_name), label_frame(summary)

    def report_view(self, report: dict, title: str) -> ReportView:
        from engine.report_views import confusion_html, per_class_frame
        from engine.tasks.text_classification.views import errors_frame, headline_markdown

        return ReportView(
            headline=headline_markdown(report, title),
            how_to_read=self.how_to_read,
            per_class=per_class_frame(report),
            confusion=confusion_html(report),
            errors=errors_frame(report),
            errors_label="Most confident mistakes (what the model got wrong while being sure)",
        )

    def about(self, base_model: str, trained_on: str, labels: list[str]) -> str:
        return (
            f"A text classifier fine-tuned from <strong>{base_model}</strong>{trained_on}. "
            f"It answers one of: {', '.join(labels)}."
        )

    def detect(self, path: Path, frame: pd.DataFrame | None) -> int:
        return 1 if frame is not None and len(frame.columns) >= 2 else 0

    def one_line(self, text: str, result: Any) -> str:
        return f"{result['label']}\t{result['score']:.3f}\t{text}"


def texts_of(request: dict[str, Any], task: str) -> list[str]:
    """The texts of a predict request: 'text' or 'texts'; a conversation is refused with what to send instead."""
    if request.get("messages") is not None:
        raise ValueError(f"this is a {task} model: send 'text' or 'texts', not messages")
    if request.get("text") is not None:
        return [str(request["text"])]
    texts = request.get("texts")
    if texts is None:
        raise ValueError("send 'text' (one string) or 'texts' (a list of strings)")
    return [str(t) for t in texts]


TEXT_CLASSIFICATION = TextClassificationTask(
    name=NAME,
    title="Text classification: one label per text",
    columns=(
        Column("text_column", "Which column holds the text?"),
        Column("label_column", "Which column holds the label?"),
    ),
    formats=("csv", "tsv", "json", "jsonl", "parquet"),
    architecture="encoder",
    default_base_model="minilm-l6",
    headline_metric="macro_f1",
    headline_name="macro F1",
    greater_is_better=True,
    playground="classify",
    how_to_read=HOW_TO_READ,
    curve_metrics=("macro_f1", "accuracy"),
    own_params=(*METHOD_PARAMS, "class_weights"),
    techniques=("augment", "adversarial", "ensemble", "domain_pretraining", "self_training"),
    exports=("bf16", "int8", "onnx", "pruned"),
    model_architectures=("ForSequenceClassification",),
    demo_prompt=("Type or paste a text:", "Classify", "classify"),
)
