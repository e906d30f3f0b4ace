"""Chinese data on each base model: test scores against the baseline fitted on the same split, in one run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.chinese [--task text-classification] [--models minilm-l6 gemma3-270m]
[--epochs 2]`. Data: the project's own tests/fixtures/zh/reviews.csv (GB18030, 正面/负面) or, with
`--task token-classification`, tests/fixtures/ner/zh.jsonl (PER/LOC/ORG per character). For each model it prints
the headline score, the baseline's on the same test split (TF-IDF + logistic regression for texts, the most
frequent tag per character for entities), their difference, the training time and the unknown-token rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.spec import JobSpec
from engine.tasks import get_task
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
DATA = {"text-classification": FIXTURES / "zh" / "reviews.csv", "token-classification": FIXTURES / "ner" / "zh.jsonl"}


def run(task: str, model: str, args: argparse.Namespace, workdir: Path) -> dict:
    params = {"epochs": args.epochs, "batch_size": args.batch_size, "max_length": args.max_length}
    if args.learning_rate:
        params["learning_rate"] = args.learning_rate
    spec = JobSpec.from_dict({"task": task, "base_model": model, "data": {"train": str(DATA[task])}, "params": params})
    started = time.perf_counter()
    report = train(spec, workdir / model).report
    metric = get_task(task).headline_metric
    return {
        "model": model,
        "score": report["metrics"][metric],
        "baseline": (report.get("baseline") or {}).get(metric),
        "accuracy": report["metrics"].get("accuracy"),
        "seconds": time.perf_counter() - started,
        "samples_per_second": report["train"].get("samples_per_second"),
        "unknown": (report["data"].get("language") or {}).get("unknown_token_rate"),
        "metric": metric,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text-classification", choices=sorted(DATA))
    parser.add_argument("--models", nargs="+", default=["minilm-l6", "gemma3-270m"])
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.task, model, args, Path(tmp)) for model in args.models]
    metric = rows[0]["metric"]
    print(f"\n{args.task} on {DATA[args.task].name}, {args.epochs:g} epochs")
    print(f"{'model':<16} {metric:>9} {'baseline':>9} {'delta':>7} {'unk':>6} {'samples/s':>9} {'time':>8}")
    for row in rows:
        base = row["baseline"]
        delta = f"{row['score'] - base:+.3f}" if base is not None else "n/a"
        unknown = f"{row['unknown']:.0%}" if row["unknown"] is not None else "n/a"
        print(
            f"{row['model']:<16} {row['score']:>9.3f} {base if base is None else format(base, '.3f'):>9} {delta:>7} "
            f"{unknown:>6} {row['samples_per_second'] or 0:>9.1f} {row['seconds']:>7.0f}s"
        )


if __name__ == "__main__":
    main()
