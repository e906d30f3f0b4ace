"""Encoder fine-tuning speed of the product's defaults against a plain, tuned Trainer recipe, in one run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.train_speed [--task classification,ner] [--epochs 2] [--rows 3000]
[--data FILE --test FILE --text-column COL --label-column COL] [--variant compile=on] [--json]`.

The reference is what a practitioner writes with transformers alone: `Trainer`, fp32, dynamic padding
(`DataCollatorWithPadding` / `DataCollatorForTokenClassification`), `train_sampling_strategy="group_by_length"`,
batch 16, learning rate 5e-5, no evaluation during training, on the same tokenized rows, the same base model and
the same number of epochs. The product is `engine.train.train` with the job's defaults (it also evaluates and keeps
the best checkpoint each epoch, which the reference does not do). Each side runs in a fresh child process, one after
the other, so neither inherits the other's threads, caches or memory; samples/s is training samples times epochs
over the wall time of the training loop (the Trainer's own `train_samples_per_second` for the reference; the
product's `train.samples_per_second`, evaluation and checkpoints included). Both are scored on the same held-out
test rows: accuracy and macro-F1 (classification), micro-F1 of entity spans (NER).

Data. Classification: 3,000 synthetic English review snippets (tests/fixtures/make_hard_reviews.py --snippets:
claims and a verdict with negations, hedges and contrasts, 6% flipped labels; median ~40 word pieces) and 600
held-out ones, drawn in the run; or `--data/--test` for real files. NER: tests/fixtures/ner/en.conll, its sentences
repeated `--ner-repeat` times for the training split (copies carry a numbered suffix word tagged O) and the original
sentences as the test set, so its F1 shows only that both sides learn alike, not how good either is.
`--variant compile=on` (repeatable) adds a product row with those params changed (`precision=fp32`: the product's
recipe without bf16).
Prints, per task and side: samples/s, its ratio to the reference's, the training seconds, precision, threads, and
the test scores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NER_FIXTURE = ROOT / "tests" / "fixtures" / "ner" / "en.conll"
REFERENCE = {"batch_size": 16, "learning_rate": 5e-5, "max_length": 128}


def snippets(rows: int, seed: int, out: Path) -> None:
    """Write `rows` review snippets to out (review, sentiment), drawn by the fixture generator."""
    path = ROOT / "tests" / "fixtures" / "make_hard_reviews.py"
    loader = importlib.util.spec_from_file_location("make_hard_reviews", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    module.write(out, module.rows(rows, seed, snippets=True))


def conll_sentences(path: Path) -> list[list[tuple[str, str]]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split()
        current.append((parts[0], parts[-1]))
    return sentences + ([current] if current else [])


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")


def ner_data(repeat: int, workdir: Path) -> tuple[Path, Path]:
    sentences = conll_sentences(NER_FIXTURE)
    train = [[*s, (f"#{i}", "O")] for i in range(repeat) for s in sentences]
    write_conll(workdir / "ner_train.conll", train)
    write_conll(workdir / "ner_test.conll", sentences)
    return workdir / "ner_train.conll", workdir / "ner_test.conll"


# --- the two sides, each run in a child process ---------------------------------------------------------------------


def product(task: str, data: dict[str, Any], epochs: float, out: Path, extra: dict[str, str]) -> dict[str, Any]:
    from engine.spec import JobSpec
    from engine.train import train

    name = "text-classification" if task == "classification" else "token-classification"
    spec = JobSpec.from_dict({"task": name, "data": data, "params": {"epochs": epochs, **extra}})
    started = time.perf_counter()
    report = train(spec, out).report
    info = report["train"]
    return {
        "samples_per_second": info["samples_per_second"],
        "train_seconds": info["wall_seconds"],
        "job_seconds": round(time.perf_counter() - started, 2),
        "precision": info.get("precision"),
        "threads": info.get("threads"),
        "scores": _product_scores(task, report["metrics"]),
    }


def _product_scores(task: str, metrics: dict[str, Any]) -> dict[str, float]:
    if task == "classification":
        return {"accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4)}
    return {"micro_f1": round(metrics["micro_f1"], 4)}


def reference(task: str, data: dict[str, Any], epochs: float, out: Path) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import Trainer

    from bench.reference import plain_trainer_args, seed_everything
    from engine.catalog import resolve_model

    model_path = resolve_model("minilm-l6")
    seed_everything()  # the new head is drawn in build, before the Trainer seeds anything
    build = _reference_classification if task == "classification" else _reference_ner
    model, tokenizer, train_set, test_set, collator, score = build(data, model_path)
    args = plain_trainer_args(
        out, epochs=epochs, learning_rate=REFERENCE["learning_rate"], batch_size=REFERENCE["batch_size"]
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator)
    outcome = trainer.train()
    predictions = trainer.predict(test_set)  # its own label_ids: the row order is the one predictions came in
    return {
        "samples_per_second": round(outcome.metrics["train_samples_per_second"], 2),
        "train_seconds": round(outcome.metrics["train_runtime"], 2),
        "precision": "fp32",
        "threads": torch.get_num_threads(),
        "scores": score(np.asarray(predictions.predictions), np.asarray(predictions.label_ids)),
    }


def _reference_classification(data: dict[str, Any], model_path: str):
    import datasets
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    train_frame, test_frame = pd.read_csv(data["train"]), pd.read_csv(data["test"])
    labels = sorted(train_frame[data["label_column"]].astype(str).unique())
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def encode(frame):
        rows = datasets.Dataset.from_dict(
            {
                "text": list(frame[data["text_column"]].astype(str)),
                "label": [index[str(v)] for v in frame[data["label_column"]]],
            }
        )
        return rows.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=REFERENCE["max_length"]), batched=True
        )

    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index
    )

    def score(logits, label_ids):
        predicted = logits.argmax(-1)
        return {
            "accuracy": round(float(accuracy_score(label_ids, predicted)), 4),
            "macro_f1": round(float(f1_score(label_ids, predicted, average="macro")), 4),
        }

    return model, tokenizer, encode(train_frame), encode(test_frame), DataCollatorWithPadding(tokenizer), score


def _reference_ner(data: dict[str, Any], model_path: str):
    import datasets
    from seqeval.metrics import f1_score
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    train_sentences, test_sentences = conll_sentences(Path(data["train"])), conll_sentences(Path(data["test"]))
    labels = sorted({tag for s in train_sentences for _, tag in s})
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def encode(sentences):
        enc = tokenizer(
            [[w for w, _ in s] for s in sentences],
            is_split_into_words=True,
            truncation=True,
            max_length=REFERENCE["max_length"],
        )
        rows = []
        for i, s in enumerate(sentences):
            previous, tags = None, []
            for word in enc.word_ids(i):  # the first piece of each word carries its tag
                tags.append(-100 if word is None or word == previous else index[s[word][1]])
                previous = word
            rows.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": tags})
        return datasets.Dataset.from_list(rows)

    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index
    )

    def score(logits, label_ids):
        predicted = logits.argmax(-1)
        truth = [[labels[t] for t in row if t != -100] for row in label_ids]
        guess = [
            [labels[p] for p, t in zip(prow, row, strict=True) if t != -100]
            for prow, row in zip(predicted, label_ids, strict=True)
        ]
        return {"micro_f1": round(float(f1_score(truth, guess)), 4)}

    return (
        model,
        tokenizer,
        encode(train_sentences),
        encode(test_sentences),
        DataCollatorForTokenClassification(tokenizer),
        score,
    )


# --- the parent ------------------------------------------------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    side, task, data, epochs, out, extra = argv
    if side == "reference":
        result = reference(task, json.loads(data), float(epochs), Path(out))
    else:
        result = product(task, json.loads(data), float(epochs), Path(out), json.loads(extra))
    print("RESULT " + json.dumps(result))


def in_child(side: str, task: str, data: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One side's run in a fresh process: `reference`, `product`, or `product k=v,...` with those params changed."""
    changes = side.removeprefix("product").strip().split(",") if side.startswith("product") else []
    extra = dict(pair.split("=", 1) for pair in changes if pair)
    out = workdir / f"{len(list(workdir.iterdir()))}_{task}"
    command = [sys.executable, "-m", "bench.train_speed", "--child", side, task, json.dumps(data), str(args.epochs)]
    done = subprocess.run([*command, str(out), json.dumps(extra)], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{side} {task} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def task_data(task: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if task == "ner":
        train_file, test_file = ner_data(args.ner_repeat, workdir)
        return {"train": str(train_file), "test": str(test_file)}
    if args.data:
        return {
            "train": str(args.data.resolve()),
            "test": str(args.test.resolve()),
            "text_column": args.text_column,
            "label_column": args.label_column,
        }
    snippets(args.rows, args.seed, workdir / "train.csv")
    snippets(args.test_rows, args.seed + 1000, workdir / "test.csv")
    return {
        "train": str(workdir / "train.csv"),
        "test": str(workdir / "test.csv"),
        "text_column": "review",
        "label_column": "sentiment",
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    from engine.hardware import cpu_has_fast_bf16, device_name

    print(f"device {device_name()}, fast bf16 on this CPU: {cpu_has_fast_bf16()}")
    print(f"{'task':<15}{'side':<28}{'samples/s':>10}{'x ref':>7}{'train s':>9}{'prec':>10}{'thr':>4}  test scores")
    for row in rows:
        reference_speed = row["sides"]["reference"]["samples_per_second"]
        for side, r in row["sides"].items():
            scores = "  ".join(f"{k} {v:.3f}" for k, v in r["scores"].items())
            ratio = r["samples_per_second"] / reference_speed
            print(
                f"{row['task']:<15}{side:<28}{r['samples_per_second']:>10.1f}{ratio:>6.2f}x{r['train_seconds']:>9.1f}"
                f"{r['precision']:>10}{r['threads']:>4}  {scores}"
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="classification,ner", help="comma-separated: classification, ner")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--rows", type=int, default=3000, help="training snippets drawn (classification)")
    parser.add_argument("--test-rows", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ner-repeat", type=int, default=10, help="copies of en.conll's sentences for NER training")
    parser.add_argument("--data", type=Path, help="a real classification training file (CSV) instead of snippets")
    parser.add_argument("--test", type=Path, help="its held-out test file (CSV), needed with --data")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="another product row with these params changed, e.g. compile=on or precision=fp32 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    args = parser.parse_args()
    if args.data and not args.test:
        parser.error("--data needs --test: both sides are scored on the same held-out file")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for task in args.task.split(","):
            data = task_data(task, args, workdir)
            names = ["product", "reference", *(f"product {variant}" for variant in args.variant)]
            sides = {side: in_child(side, task, data, args, workdir) for side in names}
            ratio = sides["product"]["samples_per_second"] / sides["reference"]["samples_per_second"]
            rows.append({"task": task, "sides": sides, "ratio": round(ratio, 2)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows(rows)


if __name__ == "__main__":
    main()
