"""Chinese data on each base model: test scores against the baseline fitted on the same split, in one run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.chinese [--task text-classification] [--models minilm-l6 gemma3-270m]
[--epochs 2]`. Data: the project's own tests/fixtures/zh/reviews.csv (GB18030, 正面/负面) or, with
`--task token-classification`, tests/fixtures/ner/zh.jsonl (PER/LOC/ORG per character), or with `--task chat`
tests/fixtures/chat/zh_support.jsonl (Chinese support chats). For each model it prints the headline score, the
baseline's on the same test split (TF-IDF + logistic regression for texts, the most frequent tag per character for
entities, the base model's held-out perplexity for chat), their difference, the training time and the unknown-token
rate; for chat also the share of answers written in Chinese. `--data FILE` trains on another file of the task.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.language import cjk_share, script_shares
from engine.spec import JobSpec
from engine.tasks import get_task
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
DATA = {
    "text-classification": FIXTURES / "zh" / "reviews.csv",
    "token-classification": FIXTURES / "ner" / "zh.jsonl",
    "chat": FIXTURES / "chat" / "zh_support.jsonl",
}


def run(task: str, model: str, args: argparse.Namespace, workdir: Path) -> dict:
    params = {"epochs": args.epochs}
    for name in ("batch_size", "max_length", "learning_rate", "method"):
        if getattr(args, name) is not None:  # unset: the task's default
            params[name] = getattr(args, name)
    data = {"train": str(args.data or DATA[task])}
    spec = JobSpec.from_dict({"task": task, "base_model": model, "data": data, "params": params})
    started = time.perf_counter()
    report = train(spec, workdir / Path(model).name).report
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
        "chinese_answers": chinese_share([row["fine_tuned"] for row in report.get("generations") or []]),
        "base_chinese_answers": chinese_share([row["base"] for row in report.get("generations") or []]),
    }


def chinese_share(answers: list[str]) -> float | None:
    """The share of generated answers written mostly in Chinese characters."""
    if not answers:
        return None
    return sum(cjk_share(script_shares([answer])) >= 0.5 for answer in answers) / len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text-classification", choices=sorted(DATA))
    parser.add_argument("--models", nargs="+", default=None, help="default: the task's English model and gemma3-270m")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--method", choices=("full", "lora"), default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--data", type=Path, default=None, help="another training file of the task (any size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or [get_task(args.task).default_base_model, "gemma3-270m"]
        rows = [run(args.task, model, args, Path(tmp)) for model in models]
    metric = rows[0]["metric"]
    print(f"\n{args.task} on {(args.data or DATA[args.task]).name}, {args.epochs:g} epochs")
    print(f"{'model':<16} {metric:>9} {'baseline':>9} {'delta':>7} {'unk':>6} {'samples/s':>9} {'time':>8}")
    for row in rows:
        base = row["baseline"]
        delta = f"{row['score'] - base:+.3f}" if base is not None else "n/a"
        unknown = f"{row['unknown']:.0%}" if row["unknown"] is not None else "n/a"
        print(
            f"{row['model']:<16} {row['score']:>9.3f} {base if base is None else format(base, '.3f'):>9} {delta:>7} "
            f"{unknown:>6} {row['samples_per_second'] or 0:>9.1f} {row['seconds']:>7.0f}s"
        )
        if row["chinese_answers"] is not None:
            base, tuned = row["base_chinese_answers"], row["chinese_answers"]
            print(f"  answers mostly in Chinese: base {base:.0%}, fine-tuned {tuned:.0%}")


if __name__ == "__main__":
    main()
