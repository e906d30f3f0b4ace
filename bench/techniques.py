"""Each technique against the plain recipe, on one small labeled set with unlabeled text, in one run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.techniques [--only plain,augment] [--per-class 50] [--epochs 10]
[--data FILE --unlabeled FILE --test FILE --text-column COL --label-column COL] [--json]`.

Without --data it makes its own small-data case. `--source hard` (default): tests/fixtures/make_hard_reviews.py
(synthetic English reviews whose label needs more than keywords): `--per-class` labeled rows per label (default 50)
are the training file, the next 2,000 reviews' texts (labels dropped) the unlabeled file, and a separately drawn file
of 600 the test set. `--source reviews`: tests/fixtures/reviews.csv (240 short movie reviews), `--per-class` rows per
label labeled, half of the rest unlabeled and the other half the test set.
The plain recipe is the reference: every technique row prints its test accuracy and macro-F1, the difference to the
plain row, its wall time and that time over the plain row's. Technique rows run with compare_with_plain off (the
plain row is that comparison, trained once). Rows also print what the technique reports: added rows, the best member
and the ensemble, masked-LM loss before and after, pseudo-labels per round, accuracy under the FGM perturbation.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.spec import JobSpec
from engine.train import train

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "tests" / "fixtures" / "reviews.csv"
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "augment": {"augment": {"copies": 3}},
    "adversarial": {"adversarial": {"epsilon": 0.5}},
    "adversarial_pgd": {"adversarial": {"method": "pgd", "epsilon": 0.5, "steps": 3}},
    "ensemble": {"ensemble": {"members": 3}},
    "ensemble_folds": {"ensemble": {"members": 3, "split": "folds"}},
    "domain": {"domain_pretraining": {"epochs": 2}},
    "self_training": {"self_training": {"rounds": 2, "threshold": 0.9}},
    "augment_domain_self": {
        "augment": {"copies": 3},
        "domain_pretraining": {"epochs": 2},
        "self_training": {"rounds": 2, "threshold": 0.9},
    },
}
NEEDS_UNLABELED = ("domain_pretraining", "self_training")


def make_small_data(folder: Path, source: str, per_class: int, seed: int) -> dict[str, Path]:
    """A small-data case: a few labeled rows per label, unlabeled texts, a held-out test file."""
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import make_hard_reviews as hard

    if source == "reviews":
        return _split_reviews(folder, per_class, seed, hard.write)
    pool = hard.rows(per_class * 2 + 4000, seed)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for text, label in pool:
        by_label.setdefault(label, []).append((text, label))
    labeled = [row for rows in by_label.values() for row in rows[:per_class]]
    random.Random(seed).shuffle(labeled)
    taken = {text for text, _ in labeled}
    unlabeled = [text for text, _ in pool if text not in taken][:2000]
    paths = {"train": folder / "train.csv", "test": folder / "test.csv", "unlabeled": folder / "unlabeled.txt"}
    hard.write(paths["train"], labeled)
    hard.write(paths["test"], hard.rows(600, seed + 1000))
    paths["unlabeled"].write_text("\n".join(t.replace("\n", " ") for t in unlabeled) + "\n", encoding="utf-8")
    return paths


def _split_reviews(folder: Path, per_class: int, seed: int, write: Any) -> dict[str, Path]:
    # tests/fixtures/reviews.csv: per_class labeled rows per label, half the rest unlabeled, the other half the test.
    with REVIEWS.open(encoding="utf-8") as handle:
        rows = [(r["review_body"], r["verdict"]) for r in csv.DictReader(handle)]
    random.Random(seed).shuffle(rows)
    labeled = [row for label in ("fresh", "rotten") for row in [r for r in rows if r[1] == label][:per_class]]
    rest = [row for row in rows if row not in labeled]
    paths = {"train": folder / "train.csv", "test": folder / "test.csv", "unlabeled": folder / "unlabeled.txt"}
    write(paths["train"], labeled)
    write(paths["test"], rest[len(rest) // 2 :])
    paths["unlabeled"].write_text("\n".join(text for text, _ in rest[: len(rest) // 2]) + "\n", encoding="utf-8")
    return paths


def job_spec(name: str, args: argparse.Namespace, files: dict[str, Path]) -> JobSpec:
    """A variant's spec: the shared recipe, the variant's techniques, the unlabeled file where they read it."""
    techniques = VARIANTS[name]
    data: dict[str, Any] = {"train": str(files["train"]), "test": str(files["test"])}
    if args.text_column:
        data |= {"text_column": args.text_column, "label_column": args.label_column}
    if any(key in techniques for key in NEEDS_UNLABELED):
        data["unlabeled"] = str(files["unlabeled"])
    params = {"epochs": args.epochs, "seed": args.seed, "max_length": args.max_length, "batch_size": 16}
    raw: dict[str, Any] = {"base_model": args.base_model, "data": data, "params": params}
    if techniques:
        raw["techniques"] = {**techniques, "compare_with_plain": False}
    return JobSpec.from_dict(raw)


def details(report: dict[str, Any]) -> str:
    """What the technique itself reported, in a few words."""
    info = report.get("techniques") or {}
    parts = []
    if "augment" in info:
        parts.append(f"+{info['augment']['added']} augmented rows")
    if "ensemble" in info:
        scores = ", ".join(f"{m['score']:.3f}" for m in info["ensemble"]["members"])
        parts.append(f"members {scores}; best {info['ensemble']['best_member_score']:.3f}")
    if "domain_pretraining" in info:
        domain = info["domain_pretraining"]
        parts.append(f"MLM loss {domain['mlm_loss_before']:.2f} -> {domain['mlm_loss_after']:.2f}")
    if "self_training" in info:
        rounds = info["self_training"]["rounds"]
        added = "/".join(str(r["added_total"]) for r in rounds[1:])
        parts.append(f"pseudo-labels {added}, kept round {info['self_training']['kept_round']}")
    robust = (info.get("adversarial") or {}).get("robustness")
    if robust:
        parts.append(f"accuracy under FGM {robust['perturbed_accuracy']:.3f}")
    return "; ".join(parts)


def run(name: str, args: argparse.Namespace, files: dict[str, Path], scratch: Path) -> dict[str, Any]:
    """Train one variant; its scores, time and details."""
    started = time.monotonic()
    result = train(job_spec(name, args, files), scratch / name)
    seconds = time.monotonic() - started
    report = result.report
    row = {
        "variant": name,
        "accuracy": report["metrics"]["accuracy"],
        "macro_f1": report["metrics"]["macro_f1"],
        "seconds": round(seconds, 1),
        "details": details(report),
        "techniques": report.get("techniques"),
    }
    shutil.rmtree(scratch / name, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated variants (default: all): " + ", ".join(VARIANTS))
    parser.add_argument(
        "--source", choices=("hard", "reviews"), default="hard", help="the small-data case made without --data"
    )
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--base-model", default="minilm-l6")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--unlabeled", type=Path)
    parser.add_argument("--test", type=Path)
    parser.add_argument("--text-column")
    parser.add_argument("--label-column")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.data:
            files = {"train": args.data.resolve(), "test": args.test.resolve(), "unlabeled": args.unlabeled.resolve()}
        else:
            files = make_small_data(scratch, args.source, args.per_class, args.seed)
        with files["train"].open(encoding="utf-8") as handle:
            n_train = sum(1 for _ in csv.reader(handle)) - 1
        print(f"training rows {n_train}, epochs {args.epochs:g}, seed {args.seed}, base model {args.base_model}")
        rows = [run(name, args, files, scratch) for name in names]
    plain = next((r for r in rows if r["variant"] == "plain"), None)
    print(f"{'variant':<22}{'accuracy':>9}{'macro F1':>9}{'Δ acc':>8}{'Δ F1':>8}{'seconds':>9}{'× plain':>9}  details")
    for row in rows:
        gap = (
            (f"{row['accuracy'] - plain['accuracy']:+.3f}", f"{row['macro_f1'] - plain['macro_f1']:+.3f}")
            if plain
            else ("-", "-")
        )
        ratio = f"{row['seconds'] / plain['seconds']:.2f}" if plain else "-"
        print(
            f"{row['variant']:<22}{row['accuracy']:>9.3f}{row['macro_f1']:>9.3f}{gap[0]:>8}{gap[1]:>8}"
            f"{row['seconds']:>9.1f}{ratio:>9}  {row['details']}"
        )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
