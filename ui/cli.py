"""`playground` command line: train, evaluate, predict, inspect data and list models."""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any

from engine.errors import DataError, ModelNotFoundError
from engine.masking import masked_sentence
from engine.spec import DATA_FILES, DataSpec, EvaluateSpec, JobSpec, absolute_path
from engine.tasks import all_tasks, get_task, task_names
from ui.cli_datasets import add_dataset_commands
from ui.cli_export import add_export_command
from ui.cli_jobs import add_job_commands
from ui.cli_params import (
    add_recipe_flags,
    add_technique_flags,
    params_from_args,
    search_from_args,
    techniques_from_args,
)
from ui.cli_tensorboard import add_tensorboard_command
from ui.cli_tokens import add_token_commands
from ui.cli_users import add_user_commands
from ui.serve import add_serve_command

# engine.hardware.INFERENCE_PRECISIONS, spelled out so that `playground --help` does not import torch.
PREDICT_PRECISIONS = ("auto", "fp32", "bf16", "int8")

# Errors a user can fix: printed as one readable line, never as a traceback.
USER_ERRORS = (DataError, ModelNotFoundError, FileExistsError, FileNotFoundError, ValueError)

# Every choice, flag and help text below comes from the spec: a new task, format or knob needs no edit here.
FORMATS = list(typing.get_args(typing.get_args(DataSpec.model_fields["format"].annotation)[0]))
DATA_COLUMNS = tuple(name for name in DataSpec.model_fields if name.endswith("_column"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `playground` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    _quiet_libraries()
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="playground", description="Fine-tune, evaluate and try language models.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    train = sub.add_parser("train", help="fine-tune a model on a labeled file and write model, report and spec")
    train.add_argument("--config", type=Path, help="YAML or JSON job spec; flags below override its values")
    train.add_argument("--task", choices=task_names(), help=_task_help("what the model learns"))
    train.add_argument("--base-model", help=_base_model_help())
    _add_data_flags(train, with_splits=True)
    train.add_argument("--unlabeled", help=DataSpec.model_fields["unlabeled"].description)
    add_recipe_flags(train)
    add_technique_flags(train)
    train.add_argument("--output", type=Path, required=True, help="folder for spec.json, model/, report.json/.md")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    train.set_defaults(handler=_cmd_train)

    inspect = sub.add_parser("inspect", help="validate a data file and print its summary without training")
    inspect.add_argument("--config", type=Path, help="YAML or JSON job spec; flags below override its values")
    inspect.add_argument("--task", choices=task_names(), help=_task_help("what the data is for"))
    _add_data_flags(inspect, with_splits=True)
    inspect.add_argument("--base-model", help="its tokenizer counts lengths in tokens (default: the task's)")
    inspect.add_argument("--max-length", type=int)
    inspect.add_argument("--seed", type=int)
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.set_defaults(handler=_cmd_inspect)

    evaluate = sub.add_parser("evaluate", help="evaluate a finished model on a labeled file")
    evaluate.add_argument("--model", type=Path, required=True, help="the model/ folder of a training output")
    evaluate.add_argument("--data", type=Path, required=True, help="labeled file (CSV, TSV, JSON, JSONL, Parquet)")
    evaluate.add_argument("--format", choices=FORMATS, help=EvaluateSpec.model_fields["format"].description)
    evaluate.add_argument("--text-column", help=EvaluateSpec.model_fields["text_column"].description)
    evaluate.add_argument("--label-column", help=EvaluateSpec.model_fields["label_column"].description)
    evaluate.add_argument("--output", type=Path, required=True, help="REPORT.json to write (a .md is written beside)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    evaluate.set_defaults(handler=_cmd_evaluate)

    predict = sub.add_parser("predict", help="run a finished model on a text or a file: labels, entities or answers")
    predict.add_argument("--model", type=Path, required=True, help="the model/ folder of a training output")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a text to classify or tag, or a prompt (repeatable)")
    source.add_argument("--input", type=Path, help="file of texts (CSV, TSV, JSON, JSONL, Parquet) or prompts (JSONL)")
    predict.add_argument("--text-column", help="column of --input holding the texts (guessed when absent)")
    predict.add_argument("--output", type=Path, help="where to write the results for --input (.csv or .jsonl)")
    predict.add_argument("--max-new-tokens", type=int, default=256, help="chat: longest answer in tokens")
    predict.add_argument(
        "--precision",
        choices=PREDICT_PRECISIONS,
        default="auto",
        help="classifiers and taggers: auto (bf16 where the CPU or GPU runs it fast, else fp32), fp32, bf16, "
        "or int8 (dynamically quantized Linear layers, CPU only: faster, may change a few predictions)",
    )
    predict.add_argument("--json", action="store_true", help="print predictions as JSON")
    predict.set_defaults(handler=_cmd_predict)

    chat = sub.add_parser("chat", help="talk to a chat model in the terminal (answers stream as they are generated)")
    chat.add_argument("--model", type=Path, required=True, help="the model/ folder of a chat training output")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--top-p", type=float, default=0.9)
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.set_defaults(handler=_cmd_chat)

    add_job_commands(sub)
    add_dataset_commands(sub)
    add_export_command(sub)
    add_serve_command(sub)
    add_tensorboard_command(sub)
    add_token_commands(sub)
    add_user_commands(sub)

    models = sub.add_parser("models", help="list the model catalog and what is available offline")
    models.add_argument("--json", action="store_true", help="print the catalog as JSON")
    models.set_defaults(handler=_cmd_models)
    return parser


def _add_data_flags(parser: argparse.ArgumentParser, *, with_splits: bool) -> None:
    parser.add_argument("--train", help="labeled training file (CSV, TSV, JSON, JSONL, Parquet)")
    if with_splits:
        parser.add_argument("--validation", help="optional validation file (else split from --train)")
        parser.add_argument("--test", help="optional test file (else split from --train)")
    parser.add_argument("--format", choices=FORMATS, help=DataSpec.model_fields["format"].description)
    parser.add_argument("--encoding", help=DataSpec.model_fields["encoding"].description)
    for name in DATA_COLUMNS:
        parser.add_argument(f"--{name.replace('_', '-')}", help=DataSpec.model_fields[name].description)
    # Comma-separated kinds as typed; the spec field's own validator reads them and names the allowed ones.
    parser.add_argument(
        "--mask-personal-data", metavar="KINDS", help=DataSpec.model_fields["mask_personal_data"].description
    )


def _task_help(what: str) -> str:
    return f"{what}: " + "; ".join(f"{task.name} ({task.short_title.lower()})" for task in all_tasks())


def _base_model_help() -> str:
    defaults = ", ".join(f"{task.default_base_model} for {task.name}" for task in all_tasks())
    return f"{JobSpec.model_fields['base_model'].description} Default: {defaults}."


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """Build the job spec from --config (if any) with command-line flags layered on top."""
    config = JobSpec.load(args.config) if args.config else None
    # Only what the config sets differently from the defaults, so that a --preset is not undone by them.
    raw: dict[str, Any] = config.model_dump(exclude_defaults=True) if config else {}
    # spec.json must work from any folder: paths in a config are relative to it, on the command line to the cwd.
    data = config.data.with_absolute_paths(args.config.resolve().parent).model_dump() if config else {}
    for key in (*DATA_FILES, "format", "encoding", *DATA_COLUMNS, "mask_personal_data"):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = absolute_path(value) if key in DATA_FILES else value
    if not data.get("train"):
        raise ValueError("no training file: pass --train FILE or a --config whose data.train names one")
    params = {**(raw.get("params") or {}), **params_from_args(args)}
    search = search_from_args(args)
    if search is not None:
        raw["search"] = {**(raw.get("search") or {}), **search}
    techniques = techniques_from_args(args, raw.pop("techniques", None))
    if techniques is not None:
        raw["techniques"] = techniques
    if getattr(args, "preset", None):
        raw["preset"] = args.preset
    for key in ("task", "base_model"):
        value = getattr(args, key, None)
        if value is not None:
            raw[key] = value
    raw.update(data=data, params=params)
    spec = JobSpec.from_dict(raw, source="command line")
    if not raw.get("base_model"):  # none chosen: the model that fits the data
        from engine.language import fitting_base_model

        base_model, why = fitting_base_model(spec.task, spec.data)
        if why:
            print(why, file=sys.stderr)
            spec = spec.model_copy(update={"base_model": base_model})
    return spec


def _cmd_train(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)  # argument errors first, before torch takes seconds to import
    from engine.tasks import inspect_job_data
    from engine.train import TrainingStopped, train

    if not args.json:
        print(format_summary(inspect_job_data(spec)))
    with _ProgressBar(enabled=not args.json, task=spec.task) as bar:
        try:
            result = train(spec, args.output, on_event=bar.update, resume=args.resume)
        except TrainingStopped as exc:
            print(f"stopped: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result.report, indent=2, ensure_ascii=False))
    else:
        print(format_report_summary(result.report))
        print(f"\nwrote {result.output_dir}/{{spec.json, report.json, report.md, model/}}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    from engine.tasks import inspect_job_data

    summary = inspect_job_data(spec)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else format_summary(summary))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate

    report = evaluate(
        args.model,
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        format=args.format,
        output=args.output,
    )
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report_summary(report))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from engine.predict import Predictor

    predictor = Predictor(args.model, precision=args.precision)
    if args.text:
        results = _predict_texts(predictor, args.text, args.max_new_tokens)
        if args.json:
            print(json.dumps(results, indent=2, ensure_ascii=False))
        else:
            for text, res in zip(args.text, results, strict=True):
                print(predictor.task_info.one_line(text, res))
        return 0
    if not args.output:
        raise ValueError("--input needs --output FILE for the results (.csv or .jsonl)")
    count = predictor.task_info.predict_file(
        predictor, args.input, args.output, text_column=args.text_column, max_new_tokens=args.max_new_tokens
    )
    message = {"input": str(args.input), "output": str(args.output), "rows": count}
    print(json.dumps(message) if args.json else f"wrote {count} results to {args.output}")
    return 0


def _predict_texts(predictor, texts: list[str], max_new_tokens: int) -> list[Any]:
    if predictor.task_info.playground == predictor.chat.__name__:
        return [predictor.chat([{"role": "user", "content": t}], max_new_tokens=max_new_tokens) for t in texts]
    answer = predictor.serve({"texts": texts})
    return answer.get("predictions") or answer.get("entities") or []


def _cmd_chat(args: argparse.Namespace) -> int:
    from engine.predict import Predictor

    predictor = Predictor(args.model)
    if predictor.task_info.playground != predictor.chat.__name__:
        raise ValueError(f"{args.model} is a {predictor.task} model; `playground predict` runs it")
    messages = [{"role": "system", "content": args.system}] if args.system else []
    print("Type a message and press Enter; an empty line or Ctrl-D ends the chat.", file=sys.stderr)
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            break
        if not text:
            break
        messages.append({"role": "user", "content": text})
        print("model> ", end="", flush=True)
        pieces = []
        for piece in predictor.stream_chat(
            messages, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p
        ):
            pieces.append(piece)
            print(piece, end="", flush=True)
        print()
        messages.append({"role": "assistant", "content": "".join(pieces).strip()})
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from engine.catalog import format_models_table, list_models

    rows = list_models()
    print(json.dumps(rows, indent=2) if args.json else format_models_table(rows))
    return 0


def format_summary(summary: dict) -> str:
    """A few readable lines about the data, shown before training starts (any task's summary)."""
    counts = [
        f"{summary[key]} {key}"
        for key in ("rows", "sentences", "conversations", "examples", "tokens")
        if key in summary
    ]
    lines = ["data: " + ", ".join(dict.fromkeys(counts))]
    columns = summary.get("columns") or {
        k: summary[k] for k in ("text_column", "label_column", "tokens_column", "tags_column") if summary.get(k)
    }
    if columns:
        lines.append("columns: " + ", ".join(f"{k} = '{v}'" for k, v in columns.items()))
    per_label = summary.get("rows_per_label") or summary.get("entities_per_type") or {}
    if per_label:
        lines.append("labels: " + ", ".join(f"{label} ({n})" for label, n in per_label.items()))
    for split, info in (summary.get("splits") or {}).items():
        size = next((info[k] for k in ("rows", "sentences", "examples") if k in info), "?")
        lines.append(f"  {split}: {size}")
    lengths = summary.get("length_tokens") or {}
    if lengths:
        lines.append(
            f"length in {lengths.get('unit', 'tokens')}: median {lengths.get('p50')}, p95 {lengths.get('p95')}, "
            f"max {lengths.get('max')}"
        )
    masked = masked_sentence(summary)
    if masked:
        lines.append(masked)
    lines.extend(f"note: {notice}" for notice in summary.get("notices") or [])
    return "\n".join(lines)


def format_report_summary(report: dict) -> str:
    """Headline numbers of a report for the terminal, after its warnings; the full version is report.md."""
    warnings = "".join(f"WARNING: {warning}\n" for warning in report.get("warnings") or [])
    comparison = report.get("comparison") if isinstance(report.get("comparison"), dict) else {}
    bought = f"what the techniques bought: {comparison['verdict']}\n" if comparison.get("verdict") else ""
    return warnings + bought + _report_numbers(report)


def _report_numbers(report: dict) -> str:
    m = report["metrics"]
    if "per_class" not in report:  # a language model: held-out perplexity against the base model it started from
        return (
            f"held-out perplexity {m['base_perplexity']:.2f} (base) -> {m['perplexity']:.2f} (fine-tuned); "
            f"loss {m['base_loss']:.4f} -> {m['loss']:.4f}"
        )
    main = get_task(report.get("task")).headline_metric
    lines = [
        f"test accuracy {m['accuracy']:.3f}   macro-F1 {m['macro_f1']:.3f}   "
        + (f"weighted-F1 {m['weighted_f1']:.3f}" if "weighted_f1" in m else f"micro-F1 {m.get('micro_f1', 0):.3f}")
    ]
    base = report.get("baseline")
    if base and main in base:
        delta = m[main] - base[main]
        lines.append(f"baseline ({base['name']}): {main} {base[main]:.3f}  ({delta:+.3f} for fine-tuning)")
    lines.append(f"{'label':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for label, row in report["per_class"].items():
        lines.append(
            f"{label[:20]:<20} {row['precision']:>9.3f} {row['recall']:>9.3f} {row['f1']:>9.3f} {row['support']:>8}"
        )
    return "\n".join(lines)


class _ProgressBar:
    """Training progress fed by the engine's events: a tqdm bar on a terminal, one plain line per logged step in a
    log file or pipe (where a bar's carriage returns would pile up), and each evaluation in the task's metrics."""

    def __init__(self, *, enabled: bool, task: str, stream: Any = None):
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.metrics = get_task(task).curve_metrics  # macro-F1 for a classifier, entity F1 for a tagger, none for chat
        self.bar = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, event) -> None:
        if not self.enabled:
            return
        if event.kind == "phase":  # no steps; each stage (a trial, a member, the plain recipe) gets a line and a bar
            if event.phase and ": " in event.phase:
                if self.bar is not None:
                    self.bar.close()
                    self.bar = None
                stage = event.phase.split(": ", 1)[1].strip()
                print(stage[:1].upper() + stage[1:], file=self.stream)  # as written after it: 'MLM' stays 'MLM'
            return
        if not self.stream.isatty():
            self._line(event)
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=event.total_steps, initial=event.step, unit="step", dynamic_ncols=True)
        self.bar.n = event.step
        if event.kind == "log" and event.loss is not None:
            self.bar.set_postfix(loss=f"{event.loss:.4f}", epoch=f"{event.epoch:.2f}")
        elif event.kind == "eval":
            self.bar.write(self.evaluation(event))
        self.bar.refresh()

    def evaluation(self, event) -> str:
        """'epoch 2: validation macro_f1 0.912, accuracy 0.930, loss 0.2412' with the task's own scores."""
        scores = [f"{name} {event.metrics[name]:.3f}" for name in self.metrics if name in event.metrics]
        loss = event.metrics.get("loss", event.loss)
        scores.append(f"loss {loss:.4f}" if loss is not None else "loss n/a")
        return f"epoch {event.epoch:.0f}: validation " + ", ".join(scores)

    def _line(self, event) -> None:
        if event.kind == "log" and event.loss is not None:
            print(
                f"step {event.step}/{event.total_steps}  epoch {event.epoch:.2f}  loss {event.loss:.4f}",
                file=self.stream,
            )
        elif event.kind == "eval":
            print(self.evaluation(event), file=self.stream)


def _quiet_libraries() -> None:
    # Library chatter (weight-loading reports, deprecation notes) buries what the user needs to see.
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "datasets", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    except ImportError:  # engine deps are required anyway; keep --help working without them
        pass


if __name__ == "__main__":
    raise SystemExit(main())
