"""Inference speed of the product's Predictor against transformers' pipeline, and each precision's accuracy cost.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.inference [--model DIR] [--data FILE --text-column COL
--label-column COL] [--texts 1000] [--rounds 3] [--calls 200] [--epochs 4] [--no-ner] [--json]`.

Model: `--model` (a fine-tuned classifier's model/ folder), or else one trained here with `engine.train.train` on
tests/fixtures/reviews.csv (minilm-l6, review_body -> verdict, the job's defaults but `--epochs`, 4 by default: after
1 epoch it still answers one class for every text, which makes precision comparisons meaningless).
Texts: `--data` (a labeled file), or else the fixture's 240 English movie reviews followed by each of their sentences
as a text of its own, labeled with its review's verdict, cycled to `--texts` (so most texts appear about twice,
and the model was trained on many of them: the accuracy below compares precisions, it is not a test score).

The reference is `transformers.pipeline("text-classification", model=<the same folder>, batch_size=32)` with its
defaults (fp32, texts batched in the order given, each batch padded to its longest; `truncation=True` is passed so a
long text cannot fail it). The product is `engine.predict.Predictor(folder)` with its defaults (precision "auto":
bf16 where the CPU multiplies bf16 natively, else fp32), plus explicit fp32, bf16 and int8 predictors. Every contender
is loaded once; each round times each contender on all the texts in turn, and each latency call gives every
contender the same one text in turn, so load from other processes falls on all of them alike. Throughput is the
median over rounds, latency the p50 / p95 over `--calls` single-text calls (cut to 200 characters, a typed query).

Prints: (a) batch texts/s, product against pipeline, and their ratio; (b) one-text latency p50 / p95 and the ratio
of the pipeline's p50 to the product's; (c) accuracy and macro-F1 of every precision against the labels, their
agreement with the pipeline's labels and with fp32's, and the largest probability change from fp32; (d) texts/s of
each precision over the pipeline's. With NER (unless `--no-ner`): a tagger trained here on tests/fixtures/ner/en.conll
(6 epochs, learning rate 3e-4, max length 64), `Predictor.tag` against `pipeline("token-classification",
aggregation_strategy="simple", batch_size=32)` on the fixture's sentences joined into raw text and cycled to
`--texts`: texts/s, and the share of texts whose entity spans (start, end, type) both find alike.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from sklearn.metrics import f1_score

from engine.hardware import cpu_has_amx, cpu_has_fast_bf16, physical_cores
from engine.predict import Predictor
from engine.spec import JobSpec
from engine.tasks.token_classification.files import read_conll
from engine.train import train

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "reviews.csv"
NER_FIXTURE = ROOT / "tests" / "fixtures" / "ner" / "en.conll"
PRECISIONS = ("fp32", "bf16", "int8")
PIPELINE_BATCH = 32
TYPED_QUERY_CHARS = 200


def fixture_texts(count: int) -> tuple[list[str], list[str]]:
    """The fixture's reviews, then each review's sentences on their own (the review's verdict), cycled to `count`."""
    with FIXTURE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pool = [(row["review_body"], row["verdict"]) for row in rows]
    for row in rows:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", row["review_body"]) if s.strip()]
        if len(sentences) > 1:
            pool += [(sentence, row["verdict"]) for sentence in sentences]
    picked = [pool[i % len(pool)] for i in range(count)]
    return [text for text, _ in picked], [label for _, label in picked]


def file_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Texts and labels of `--data`, read the way the engine reads a training file, cycled or cut to `--texts`."""
    from engine.tabular import read_table

    frame = read_table(args.data).frame
    for column in (args.text_column, args.label_column):
        if column not in frame.columns:
            raise SystemExit(f"column {column!r} not found in {args.data}; columns are {list(frame.columns)}")
    texts = ["" if v is None else str(v) for v in frame[args.text_column].tolist()]
    labels = [str(v) for v in frame[args.label_column].tolist()]
    return [texts[i % len(texts)] for i in range(args.texts)], [labels[i % len(labels)] for i in range(args.texts)]


def train_model(workdir: Path, raw: dict[str, Any], name: str) -> Path:
    """Fine-tune with the engine and return the model folder (the run's log goes to stderr)."""
    started = time.perf_counter()
    result = train(JobSpec.from_dict(raw), workdir / name)
    print(f"trained {name} in {time.perf_counter() - started:.0f} s: {result.model_dir}", file=sys.stderr)
    return Path(result.model_dir)


def classifier_spec(epochs: float) -> dict[str, Any]:
    data = {"train": str(FIXTURE), "text_column": "review_body", "label_column": "verdict"}
    return {"base_model": "minilm-l6", "data": data, "params": {"epochs": epochs}}


def tagger_spec() -> dict[str, Any]:
    params = {"epochs": 6, "learning_rate": 3e-4, "batch_size": 8, "max_length": 64, "seed": 3}
    return {"task": "token-classification", "data": {"train": str(NER_FIXTURE)}, "params": params}


def timed_rounds(contenders: dict[str, Callable[[list[str]], Any]], texts: list[str], rounds: int) -> dict:
    """Median texts/s of each contender over `rounds`, taking turns within a round; and each one's last answers."""
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    answers: dict[str, Any] = {}
    for run in contenders.values():  # warm-up: first calls pay one-off allocations and kernel choices
        run(texts[:64])
    for _ in range(rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            answers[name] = run(texts)
            speeds[name].append(len(texts) / (time.perf_counter() - started))
    return {"texts_per_s": {name: statistics.median(v) for name, v in speeds.items()}, "answers": answers}


def latencies(contenders: dict[str, Callable[[str], Any]], texts: list[str], calls: int) -> dict[str, dict]:
    """p50 and p95 milliseconds of one-text calls, every contender given the same text in turn."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for k in range(calls + 10):
        text = texts[k % len(texts)][:TYPED_QUERY_CHARS]
        for name, run in contenders.items():
            started = time.perf_counter()
            run(text)
            if k >= 10:  # the first calls warm up
                times[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))} for name, v in times.items()
    }


def classifier_contenders(model_dir: Path) -> tuple[dict[str, Predictor], Any]:
    """The product's predictors (its default, then each precision) and the reference pipeline."""
    predictors = {"product": Predictor(model_dir)}
    predictors |= {precision: Predictor(model_dir, precision=precision) for precision in PRECISIONS}
    pipe = transformers.pipeline("text-classification", model=str(model_dir), batch_size=PIPELINE_BATCH, device="cpu")
    return predictors, pipe


def accuracy_rows(predictors: dict[str, Predictor], answers: dict, labels: list[str]) -> dict[str, dict]:
    """Each precision's accuracy, macro-F1, agreement with the pipeline and with fp32, largest probability change."""
    pipe_labels = [row["label"] for row in answers["pipeline"]]
    fp32 = answers["fp32"]
    out = {}
    for name in ("product", *PRECISIONS):
        probs = answers[name]
        predicted = [predictors[name].labels[i] for i in probs.argmax(1)]
        out[name] = {
            "accuracy": float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)])),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
            "agrees_with_pipeline": float(np.mean([p == q for p, q in zip(predicted, pipe_labels, strict=True)])),
            "agrees_with_fp32": float(np.mean(probs.argmax(1) == fp32.argmax(1))),
            "max_prob_change": float(np.abs(probs - fp32).max()),
        }
    pipe_acc = float(np.mean([p == t for p, t in zip(pipe_labels, labels, strict=True)]))
    out["pipeline"] = {"accuracy": pipe_acc, "macro_f1": float(f1_score(labels, pipe_labels, average="macro"))}
    return out


def bench_classifier(model_dir: Path, texts: list[str], labels: list[str], args: argparse.Namespace) -> dict:
    """Throughput, latency and accuracy of the product's predictors and the pipeline on one classifier."""
    predictors, pipe = classifier_contenders(model_dir)
    batch: dict[str, Callable[[list[str]], Any]] = {"pipeline": lambda t: pipe(t, truncation=True)}
    batch |= {name: predictor.predict_proba for name, predictor in predictors.items()}
    speed = timed_rounds(batch, texts, args.rounds)
    one: dict[str, Callable[[str], Any]] = {"pipeline": lambda t: pipe(t, truncation=True)}
    one |= {name: predictors[name].classify for name in ("product", "int8")}
    return {
        "model": str(model_dir),
        "auto_precision": predictors["product"].precision,
        "threads": predictors["product"].threads,
        "texts_per_s": speed["texts_per_s"],
        "latency_ms": latencies(one, texts, args.calls),
        "accuracy": accuracy_rows(predictors, speed["answers"], labels),
    }


def ner_texts(count: int) -> list[str]:
    """The NER fixture's sentences as raw text (tokens joined by spaces), cycled to `count`."""
    tokens, _, _ = read_conll(NER_FIXTURE)
    sentences = [" ".join(words) for words in tokens]
    return [sentences[i % len(sentences)] for i in range(count)]


def span_keys(spans: list[dict[str, Any]]) -> set[tuple[int, int, str]]:
    """Entity spans as comparable keys; the pipeline calls the type entity_group, the product type."""
    return {(int(s["start"]), int(s["end"]), s.get("type") or s["entity_group"]) for s in spans}


def bench_tagger(model_dir: Path, texts: list[str], args: argparse.Namespace) -> dict:
    """Predictor.tag (its default and fp32) against the token-classification pipeline: texts/s and span agreement."""
    product, fp32 = Predictor(model_dir), Predictor(model_dir, precision="fp32")
    pipe = transformers.pipeline(
        "token-classification",
        model=str(model_dir),
        aggregation_strategy="simple",
        batch_size=PIPELINE_BATCH,
        device="cpu",
    )
    contenders = {"pipeline": pipe, "product": product.tag, "fp32": fp32.tag}
    speed = timed_rounds(contenders, texts, args.rounds)
    answers = speed["answers"]
    same = {
        name: float(
            np.mean([span_keys(a) == span_keys(b) for a, b in zip(answers[name], answers["pipeline"], strict=True)])
        )
        for name in ("product", "fp32")
    }
    return {
        "model": str(model_dir),
        "auto_precision": product.precision,
        "texts_per_s": speed["texts_per_s"],
        "same_spans": same,
    }


def print_report(result: dict[str, Any], args: argparse.Namespace, described: str) -> None:
    """The four sections of the module docstring, then the NER row."""
    cls = result["classification"]
    speed, lat, acc = cls["texts_per_s"], cls["latency_ms"], cls["accuracy"]
    print(f"\n{described}; model {cls['model']}")
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {cls['threads']} thread(s), "
        f"{physical_cores()} physical core(s) allowed, fast bf16 {cpu_has_fast_bf16()}, AMX {cpu_has_amx()}; "
        f"product precision 'auto' -> {cls['auto_precision']}; median of {args.rounds} rounds"
    )
    print(f"\n(a) batch classification of {args.texts} texts")
    print(f"  pipeline (fp32, batch {PIPELINE_BATCH}) {speed['pipeline']:8.1f} texts/s")
    print(
        f"  product  (default)          {speed['product']:8.1f} texts/s   x{speed['product'] / speed['pipeline']:.2f}"
    )
    print(f"\n(b) one-text latency over {args.calls} calls (ms)      p50      p95   pipeline p50 / this p50")
    for name in ("pipeline", "product", "int8"):
        ratio = lat["pipeline"]["p50"] / lat[name]["p50"]
        print(f"  {name:<40} {lat[name]['p50']:7.2f}  {lat[name]['p95']:7.2f}   x{ratio:.2f}")
    print("\n(c) accuracy against the labels     acc    macro-F1  = pipeline  = fp32  max |dp| vs fp32")
    print(f"  {'pipeline (fp32)':<32} {acc['pipeline']['accuracy']:6.3f}  {acc['pipeline']['macro_f1']:8.3f}")
    for name in ("product", *PRECISIONS):
        row = acc[name]
        print(
            f"  {name:<32} {row['accuracy']:6.3f}  {row['macro_f1']:8.3f}  {row['agrees_with_pipeline']:9.3f}  "
            f"{row['agrees_with_fp32']:6.3f}  {row['max_prob_change']:10.4f}"
        )
    print("\n(d) batch speed by precision       texts/s   x pipeline")
    for name in ("pipeline", "product", *PRECISIONS):
        print(f"  {name:<32} {speed[name]:8.1f}   x{speed[name] / speed['pipeline']:.2f}")
    if "ner" in result:
        ner = result["ner"]
        print(
            f"\nNER: Predictor.tag vs pipeline('token-classification', aggregation_strategy='simple'), "
            f"{args.texts} texts"
        )
        print(f"  product precision 'auto' -> {ner['auto_precision']}")
        for name in ("pipeline", "product", "fp32"):
            ratio = ner["texts_per_s"][name] / ner["texts_per_s"]["pipeline"]
            same = f"   same spans as pipeline {ner['same_spans'][name]:.3f}" if name in ner["same_spans"] else ""
            print(f"  {name:<32} {ner['texts_per_s'][name]:8.1f} texts/s   x{ratio:.2f}{same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a classifier's model/ folder (default: train one)")
    parser.add_argument("--data", type=Path, default=None, help="a labeled file of texts (default: the fixture's)")
    parser.add_argument("--text-column", default=None, help="text column of --data")
    parser.add_argument("--label-column", default=None, help="label column of --data")
    parser.add_argument("--texts", type=int, default=1000, help="texts per batch run")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (median reported)")
    parser.add_argument("--calls", type=int, default=200, help="one-text calls for the latency percentiles")
    parser.add_argument("--epochs", type=float, default=4, help="epochs of the classifier trained here")
    parser.add_argument("--no-ner", action="store_true", help="skip the token-classification row")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    args = parser.parse_args()
    if args.data is not None and not (args.text_column and args.label_column):
        parser.error("--data needs --text-column and --label-column")
    texts, labels = file_texts(args) if args.data else fixture_texts(args.texts)
    described = f"{args.texts} texts of {args.data}" if args.data else f"{args.texts} fixture reviews and sentences"
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or train_model(Path(tmp), classifier_spec(args.epochs), "classifier")
        result["classification"] = bench_classifier(model_dir, texts, labels, args)
        if not args.no_ner:
            result["ner"] = bench_tagger(train_model(Path(tmp), tagger_spec(), "tagger"), ner_texts(args.texts), args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result, args, described)


if __name__ == "__main__":
    main()
