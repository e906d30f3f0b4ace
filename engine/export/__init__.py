"""Export a fine-tuned model as a deployable variant, and measure it against the original on the job's test split.

    report = export_model("runs/reviews/model", "int8", "runs/reviews-int8")

writes `runs/reviews-int8/model/` (the variant, loadable with its own runtime alone) and report.json / report.md: size
on disk, one-text latency p50, batch throughput and test metrics of the original (fp32) and the variant, measured in
the same process one after the other, with the variant's changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from engine.files import atomic_dir

if TYPE_CHECKING:  # the spec imports this module: it must stay light (no transformers) for the worker's parent
    from engine.progress import OnEvent

ExportVariant = Literal["bf16", "int8", "onnx", "pruned"]
VARIANTS: tuple[str, ...] = get_args(ExportVariant)
PruneMethod = Literal["weights", "heads"]
DEFAULT_SPARSITY = 0.3


@dataclass(frozen=True)
class Timing:
    """How long to time each model: the defaults give stable figures in about half a minute per MiniLM model."""

    rounds: int = 3  # the models take turns, round after round, so a busy spell on the machine slows both alike
    latency_texts: int = 20  # texts timed one at a time per round: 60 calls per model for the median
    batch_texts: int = 256  # texts per throughput pass (the test texts, repeated when fewer), several full batches


__all__ = ["DEFAULT_SPARSITY", "VARIANTS", "ExportVariant", "PruneMethod", "Timing", "export_model", "render_markdown"]


def export_model(
    model_dir: str | Path,
    to: str,
    output_dir: str | Path,
    *,
    sparsity: float = DEFAULT_SPARSITY,
    prune: PruneMethod = "weights",
    on_event: OnEvent | None = None,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """Write the `to` variant of the model in `model_dir` into output_dir/model and measure it; return the report.

    `prune` (pruned variant): 'weights' zeroes the smallest Linear weights, 'heads' whole attention heads.
    `timing` sets how many rounds and texts are timed (engine.export.measure.Timing; the default suits reports).
    """
    from transformers import AutoTokenizer

    from engine.evaluation import training_spec
    from engine.export.measure import compared, measure_side_by_side
    from engine.predict import Predictor
    from engine.progress import announce
    from engine.report import write_report
    from engine.tasks import task_of_model

    model_dir, output_dir = Path(model_dir).resolve(), Path(output_dir).resolve()
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} is not a model folder (no config.json); pass a finished job or its model/")
    task = task_of_model(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
    if to not in task.exports:
        offered = ", ".join(task.exports) or "none yet"
        raise ValueError(f"a {task.name} model cannot be exported to {to!r}; its variants are: {offered}")
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be between 0 and 1 (the share of weights set to zero), got {sparsity}")
    spec = training_spec(model_dir)
    if spec is None:
        raise ValueError(
            f"{model_dir} has no spec.json beside it, so its test split is unknown; export the model/ folder of a "
            "job trained here"
        )

    announce(on_event, "loading")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    recipe = task.recipe()
    prepared = recipe.prepare(spec, tokenizer)  # the same split as training: the spec's seed and fractions
    texts = recipe.test_texts(prepared)

    announce(on_event, "exporting")
    how = {"sparsity": sparsity, "prune": prune, "max_length": spec.params.max_length}
    info = _write(task, model_dir, tokenizer, to, output_dir, **how)

    announce(on_event, "evaluating")

    def score(predictor: Predictor) -> dict[str, float]:
        return recipe.test_scores(prepared, predictor)

    predictors = [Predictor(model_dir, precision="fp32", device="cpu"), Predictor(output_dir / "model")]
    original, exported = measure_side_by_side(predictors, texts, score, timing or Timing())

    announce(on_event, "reporting")
    report = {
        "kind": "export",
        "task": task.name,
        "base_model": spec.base_model,
        "source_model": str(model_dir),
        "variant": info,
        "test_rows": len(texts),
        "headline_metric": task.headline_metric,
        "metrics": exported["metrics"],  # the variant's own scores, as job lists read them from any report
        "original": original,
        "exported": compared(original, exported),
    }
    write_report(report, output_dir, renderer=render_markdown)
    _write_card(output_dir / "model", spec, model_dir, report)
    return report


def _write_card(folder: Path, spec: Any, model_dir: Path, report: dict[str, Any]) -> None:
    # The variant's card is the source's, with the variant's own scores and the code its runtime needs.
    from engine.model_card import write_model_card

    source_report = model_dir.parent / "report.json"
    if not source_report.is_file():
        return  # a source without its training report: the variant's own report.md says what it is
    exported = report["exported"]
    variant = {**report["variant"], "size_mb": exported["size_mb"], "metrics": exported["metrics"]}
    write_model_card(folder, spec, json.loads(source_report.read_text(encoding="utf-8")), variant=variant)


def _write(
    task: Any,
    model_dir: Path,
    tokenizer: Any,
    to: str,
    output_dir: Path,
    *,
    sparsity: float,
    prune: str,
    max_length: int,
) -> dict[str, Any]:
    from engine.export import writers
    from engine.heads import export_code

    model = task.load_model(model_dir, "cpu")
    info: dict[str, Any] = {
        "name": to,
        "runtime": writers.RUNTIMES[to],
        "precision": writers.PRECISIONS[to],
        "source": str(model_dir),
        "max_length": max_length,
    }
    with atomic_dir(output_dir / "model") as folder:
        if to == "bf16":
            writers.write_bf16(model, folder)
        elif to == "pruned" and prune == "heads":
            info.update(writers.write_head_pruned(model, folder, sparsity))
        elif to == "pruned":
            info.update(writers.write_pruned(model, folder, sparsity))
        elif to == "int8":
            writers.write_int8(model, tokenizer, folder)
        else:
            writers.write_onnx(model, tokenizer, folder)
        if info["runtime"] == "transformers":
            export_code(model, folder)  # a head of our own travels with the folder, as in the trained model/
        else:
            model.config.save_pretrained(folder)  # label names and sizes, read by tokenizer and runtime users
        tokenizer.save_pretrained(folder)
        writers.write_variant_file(folder, info)
    return info


def render_markdown(report: dict[str, Any]) -> str:
    """The export report as a person reads it: what was made and what it costs and saves, against the original."""
    from engine.export.report import render

    return render(report)
