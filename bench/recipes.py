"""Each training-recipe knob against the defaults: test scores, time and memory on one fixture, in the same run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.recipes [--only defaults,lora] [--epochs 2] [--seeds 42,1,2]
[--base-model minilm-l6] [--data FILE [--test FILE] --text-column COL --label-column COL] [--json]`.
A harder set with a held-out test file: `python tests/fixtures/make_hard_reviews.py --rows 1200 --out
/tmp/hard_train.csv --test-out /tmp/hard_test.csv`, then `--data /tmp/hard_train.csv --test /tmp/hard_test.csv`.
Data: tests/fixtures/reviews.csv (240 English movie reviews, fresh/rotten, as balanced as can be, so class weights
barely move anything there), used as it is: it is not repeated, since near-copies would land in every split and
inflate the scores. Variants, one row each: `defaults`; the `quick` preset; `adafactor`; `cosine`;
`cosine_with_restarts`; `accumulation` (batch 4 x 4 accumulated steps, the defaults' effective batch of 16);
`checkpointing`; `epochs_8` and `early_stopping` (the same 8 epochs, then with patience 2: the time it saves);
`dropout_0.3`; `label_smoothing_0.1`;
`class_weights_balanced`; `freeze_layers_3`; `lora` at learning rate 1e-3 and `ia3` at 3e-3 (adapters need a higher
rate than the default 1e-4 of full fine-tuning); and the `best` preset (a pruned learning-rate search of 8-epoch
trials with early stopping: by far the slowest row). `--epochs` (default: the spec's) and `--seeds` apply to every
variant, except that `quick`, `epochs_8`, `early_stopping` and `best` keep the epochs their recipe is about.

Prints per variant: test accuracy and macro-F1, the wall time of the whole train() call (loading, training, test
evaluation, saving), that time over the defaults' and the macro-F1 minus the defaults' (both '-' when `defaults` is
not among the variants run; the first row also pays one-off start-up costs of a second or two, which flatters
the rows after it), optimizer steps, the step early stopping ended at, the share of weights trained, and
memory: the engine's estimate (engine.memory.estimate) beside the process's peak RSS (ru_maxrss) read after the run.
ru_maxrss is a process-wide high-water mark, so it only tells something when it rises above the earlier rows; run a
memory-heavy variant alone in a fresh process (`--only checkpointing`) to read its own peak. On a GPU the run's peak
of allocated GPU memory is printed too. For `best`, the learning rate the search chose and its trials (pruned).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine.memory import estimate, model_shape
from engine.presets import PRESETS
from engine.spec import JobSpec
from engine.train import train

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reviews.csv"
MB = 1024**2
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "quick": {"preset": "quick"},
    "adafactor": {"params": {"optimizer": "adafactor"}},
    "cosine": {"params": {"schedule": "cosine"}},
    "cosine_with_restarts": {"params": {"schedule": "cosine_with_restarts"}},
    "accumulation": {"params": {"batch_size": 4, "gradient_accumulation_steps": 4}},
    "checkpointing": {"params": {"gradient_checkpointing": True}},
    "epochs_8": {"params": {"epochs": 8}},  # the reference early stopping saves its time against
    "early_stopping": {"params": {"epochs": 8, "early_stopping_patience": 2}},
    "dropout_0.3": {"params": {"dropout": 0.3}},
    "label_smoothing_0.1": {"params": {"label_smoothing": 0.1}},
    "class_weights_balanced": {"params": {"class_weights": "balanced"}},
    "freeze_layers_3": {"params": {"freeze_layers": 3}},
    "lora": {"params": {"method": "lora", "learning_rate": 1e-3}},
    "ia3": {"params": {"method": "ia3", "learning_rate": 3e-3}},
    "best": {"preset": "best"},
}


def job_spec(name: str, args: argparse.Namespace, seed: int) -> JobSpec:
    """The variant's spec: the shared knobs, then the variant's own (a preset's epochs included) over them."""
    variant = VARIANTS[name]
    shared: dict[str, Any] = {"seed": seed} | ({"epochs": args.epochs} if args.epochs is not None else {})
    preset = PRESETS[variant["preset"]].params if "preset" in variant else {}
    params = {k: v for k, v in shared.items() if k not in preset} | variant.get("params", {})
    text_column = args.text_column or ("review_body" if args.data == FIXTURE else None)
    label_column = args.label_column or ("verdict" if args.data == FIXTURE else None)
    data = {"train": str(args.data), "text_column": text_column, "label_column": label_column}
    if args.test is not None:  # a held-out file drawn apart from the training file, instead of a split of it
        data["test"] = str(args.test.resolve())
    raw = {"base_model": args.base_model, "data": data, "params": params}
    return JobSpec.from_dict(raw | ({"preset": variant["preset"]} if "preset" in variant else {}))


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (ru_maxrss: kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def run(name: str, args: argparse.Namespace, workdir: Path, seed: int) -> dict[str, Any]:
    spec = job_spec(name, args, seed)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    report = train(spec, workdir / name).report
    seconds = time.perf_counter() - started
    shutil.rmtree(workdir / name, ignore_errors=True)  # a saved model per variant adds up
    info, metrics = report["train"], report["metrics"]
    shape = model_shape(spec.base_model)
    half = info.get("precision") not in (None, "fp32")
    memory = estimate(shape, spec.params, causal_lm=False, half_precision=half) if shape else None
    search = info.get("search")
    trials = (search or {}).get("trials") or []
    return {
        "variant": name,
        "seed": seed,
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "seconds": round(seconds, 2),
        "train_seconds": info["wall_seconds"],
        "steps": info["steps"],
        "epochs": info["epochs"],
        "best_epoch": info.get("best_epoch"),
        "stopped_at_step": (info.get("stopped_early") or {}).get("step"),
        "trainable_share": info["trainable_share"],
        "effective_batch_size": info["effective_batch_size"],
        "learning_rate": info.get("learning_rate"),
        "precision": info.get("precision"),
        "estimate_mb": round(memory.peak / MB, 1) if memory else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / MB, 1) if torch.cuda.is_available() else None,
        "trials": len(trials) if search else None,
        "pruned": sum(t.get("state") == "pruned" for t in trials) if search else None,
        "trial_rows": [{k: t.get(k) for k in ("number", "learning_rate", "state", "score", "steps")} for t in trials],
        "ensemble_of": [m["trial"] for m in search["ensemble"]["members"] if m["kept"]]
        if search and search.get("ensemble")
        else None,
    }


def compare(rows: list[dict[str, Any]]) -> None:
    """Add each row's time over the defaults' and its macro-F1 minus the defaults' of the same seed (None without a
    defaults row)."""
    for row in rows:
        base = next((r for r in rows if r["variant"] == "defaults" and r["seed"] == row["seed"]), None)
        row["time_x_defaults"] = round(row["seconds"] / base["seconds"], 2) if base else None
        row["macro_f1_minus_defaults"] = round(row["macro_f1"] - base["macro_f1"], 4) if base else None


def cell(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    epochs = "the spec's" if args.epochs is None else f"{args.epochs:g}"
    print(f"\n{args.base_model} on {args.data.name}, epochs {epochs}, seeds {', '.join(map(str, args.seeds))}")
    gpu = any(row["gpu_peak_mb"] is not None for row in rows)
    print(
        f"{'variant':<23} {'seed':>5} {'acc':>6} {'mF1':>6} {'secs':>7} {'time x def':>10} {'mF1 - def':>9} "
        f"{'steps':>5} {'stop@':>5} {'train %':>7} {'est MB':>7} {'RSS MB':>7}"
        + (f" {'GPU MB':>7}" if gpu else "")
        + "  notes"
    )
    for row in rows:
        notes = ""
        if row["trials"] is not None:
            notes = f"lr {row['learning_rate']:.2e}, {row['trials']} trials ({row['pruned']} pruned): " + "; ".join(
                f"{t['learning_rate']:.1e} {t['state']} {cell(t['score'])}" for t in row["trial_rows"]
            )
            if row["ensemble_of"]:
                notes += f"; trials {', '.join(map(str, row['ensemble_of']))} answer together"
        print(
            f"{row['variant']:<23} {row['seed']:>5} {row['accuracy']:>6.3f} {row['macro_f1']:>6.3f} "
            f"{row['seconds']:>7.1f} {cell(row['time_x_defaults'], '.2f'):>10} "
            f"{cell(row['macro_f1_minus_defaults'], '+.3f'):>9} "
            f"{row['steps']:>5} {cell(row['stopped_at_step']):>5} {row['trainable_share'] * 100:>7.1f} "
            f"{cell(row['estimate_mb'], '.0f'):>7} {row['peak_rss_mb']:>7.0f}"
            + (f" {cell(row['gpu_peak_mb'], '.0f'):>7}" if gpu else "")
            + f"  {notes}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated variants (default: all): {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=float, default=None, help="default: the spec's")
    parser.add_argument(
        "--seeds", default="42", help="comma-separated training seeds: every variant runs once per seed (default 42)"
    )
    parser.add_argument("--base-model", default="minilm-l6")
    parser.add_argument("--data", type=Path, default=FIXTURE, help="another text-classification file")
    parser.add_argument("--test", type=Path, default=None, help="a separate held-out test file (else split)")
    parser.add_argument("--text-column", default=None, help="default: review_body for the fixture, else guessed")
    parser.add_argument("--label-column", default=None, help="default: verdict for the fixture, else guessed")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        parser.error(f"unknown variant(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    args.data = args.data.resolve()
    args.seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name in names:
                rows.append(run(name, args, Path(tmp), seed))
                row = rows[-1]
                print(
                    f"{name} seed {seed}: {row['seconds']:.1f} s, test accuracy {row['accuracy']:.4f}", file=sys.stderr
                )
    compare(rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args)
        if len(args.seeds) > 1:
            print_spread(rows, names)


def print_spread(rows: list[dict[str, Any]], names: list[str]) -> None:
    """Per variant over the seeds: mean and standard deviation of test accuracy, and (against the defaults of the
    same seed) on how many seeds it scored higher: one seed's draw of a head and a data order moves a small
    model's score by several points, so one seed says little about a recipe."""
    print(f"\n{'variant':<23} {'seeds':>5} {'mean acc':>8} {'sd':>6} {'min':>6} {'max':>6}  above defaults")
    for name in names:
        mine = [row for row in rows if row["variant"] == name]
        scores = [row["accuracy"] for row in mine]
        above = [row for row in mine if row["macro_f1_minus_defaults"] is not None and row["variant"] != "defaults"]
        wins = sum(row["accuracy"] > _defaults_accuracy(rows, row["seed"]) for row in above)
        print(
            f"{name:<23} {len(scores):>5} {statistics.mean(scores):>8.4f} {statistics.pstdev(scores):>6.4f} "
            f"{min(scores):>6.4f} {max(scores):>6.4f}  " + (f"{wins} of {len(above)} seeds" if above else "-")
        )


def _defaults_accuracy(rows: list[dict[str, Any]], seed: int) -> float:
    return next(row["accuracy"] for row in rows if row["variant"] == "defaults" and row["seed"] == seed)


if __name__ == "__main__":
    main()
