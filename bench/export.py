"""Export variants of a classifier against the original: size, speed and accuracy, and a check in bare environments.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.export [--model DIR] [--rows 1500] [--test-rows 300]
[--sparsity 0.3] [--prune weights|heads] [--only int8,pruned] [--venvs DIR] [--json]`.

Model: `--model` (the model/ folder of a job trained here), or else one trained with the product's defaults on
`--rows` synthetic review snippets (`tests/fixtures/make_hard_reviews.py --snippets`, seed 11), with a separately
drawn test file of `--test-rows` snippets as the job's test split (texts it never saw).

Each variant is made by `engine.export.export_model`, as an export job does: it times the original (fp32, the model
as saved) and the variant in alternating rounds in one process, on the job's own test split, so a busy machine slows
both alike. The reference of every ratio is therefore the original measured in the same run.

With `--venvs DIR`, each runtime gets a virtual environment of its own holding only that runtime (transformers +
torch; torch + tokenizers; onnxruntime + tokenizers, all from the package registry), and each variant folder is loaded
there by tests/engine/load_variant.py, which imports nothing of this project: its test accuracy must equal the one the
export report gives.

Prints the compression table (size, p50 latency, texts/s, speed-up over fp32, accuracy and macro-F1 with their
change) and the issue's targets: int8 at least 1.5x fp32's batch throughput within 1 accuracy point; pruning at 30%
losing at most 2 points.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADER = ROOT / "tests" / "engine" / "load_variant.py"
# What each runtime's bare environment holds: the runtime, a tokenizer library, numpy.
RUNTIME_PACKAGES = {
    "transformers": ["torch==2.13.0", "transformers", "numpy"],
    "torchscript": ["torch==2.13.0", "tokenizers", "numpy"],
    "onnxruntime": ["onnxruntime", "tokenizers", "numpy"],
}


def _train(rows: int, test_rows: int, folder: Path) -> Path:
    from engine.spec import JobSpec
    from engine.train import train

    data = folder / "data"
    data.mkdir(parents=True)
    subprocess.run(
        [sys.executable, str(ROOT / "tests/fixtures/make_hard_reviews.py"), "--snippets", "--seed", "11",
         "--rows", str(rows), "--out", str(data / "train.csv"), "--test-out", str(data / "test.csv"),
         "--test-rows", str(test_rows)],
        check=True,
    )  # fmt: skip
    spec = JobSpec.from_dict({"data": {"train": str(data / "train.csv"), "test": str(data / "test.csv")}})
    started = time.perf_counter()
    result = train(spec, folder / "job")
    print(f"trained the defaults on {rows} snippets in {time.perf_counter() - started:.0f} s", flush=True)
    return result.model_dir


def _venv(root: Path, runtime: str) -> Path:
    python = root / runtime / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root / runtime)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *RUNTIME_PACKAGES[runtime]], check=True)
    return python


def _bare_accuracy(python: Path, folder: Path, texts: list[str], labels: list[str], scratch: Path) -> float:
    texts_file = scratch / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [str(python), str(LOADER), str(folder), str(texts_file)],
        capture_output=True, text=True, cwd=scratch, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{folder} did not load in its bare environment:\n{done.stderr[-2000:]}")
    predicted = json.loads(done.stdout.strip().splitlines()[-1])
    return sum(p == g for p, g in zip(predicted, labels, strict=True)) / len(labels)


def _test_split(model_dir: Path) -> tuple[list[str], list[str]]:
    from transformers import AutoTokenizer

    from engine.spec import JobSpec

    spec = JobSpec.load(model_dir.parent / "spec.json")
    recipe = spec.task_info().recipe()
    prepared = recipe.prepare(spec, AutoTokenizer.from_pretrained(model_dir))
    texts, gold = recipe.test_examples(prepared)
    return texts, [prepared.labels[i] for i in gold]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a trained model/ folder (default: train one here)")
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--test-rows", type=int, default=300)
    parser.add_argument("--sparsity", type=float, default=0.3)
    parser.add_argument("--prune", choices=["weights", "heads"], default="weights", help="what `pruned` removes")
    parser.add_argument("--only", help="comma-separated variants to export (default: all)")
    parser.add_argument("--venvs", type=Path, help="check each variant in a bare environment made here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from engine.export import VARIANTS, export_model
    from engine.export.report import compression_table

    scratch = Path(tempfile.mkdtemp(prefix="bench-export-"))
    model_dir = args.model or _train(args.rows, args.test_rows, scratch)
    reports = {}
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    for to in chosen:
        if to not in VARIANTS:
            raise SystemExit(f"--only: unknown variant {to!r}; choose from {', '.join(VARIANTS)}")
        started = time.perf_counter()
        reports[to] = export_model(model_dir, to, scratch / to, sparsity=args.sparsity, prune=args.prune)
        print(f"exported {to} in {time.perf_counter() - started:.0f} s", flush=True)
    table = compression_table(list(reports.values()))
    if args.venvs:
        texts, labels = _test_split(model_dir)
        for row, (to, report) in zip(table[1:], reports.items(), strict=True):
            python = _venv(args.venvs, report["variant"]["runtime"])
            row["bare_accuracy"] = round(_bare_accuracy(python, scratch / to / "model", texts, labels, scratch), 4)
    if args.json:
        print(json.dumps({"table": table, "reports": reports}, indent=2))
        return 0
    _print(table, reports)
    return 0


def _print(table: list[dict], reports: dict[str, dict]) -> None:
    header = f"{'variant':<12}{'runtime':<14}{'runs in':<8}{'MB':>8}{'p50 ms':>9}{'texts/s':>9}{'x fp32':>8}"
    print(f"\n{header}{'accuracy':>16}{'macro-F1':>16}{'bare env':>10}")
    for row in table:
        change = row["metric_change"]
        scores = "".join(
            f"{row['metrics'][m]:>9.4f}{'' if m not in change else f' {change[m] * 100:+.1f}':>7}"
            for m in ("accuracy", "macro_f1")
        )
        bare = f"{row['bare_accuracy']:>10.4f}" if "bare_accuracy" in row else ""
        print(
            f"{row['variant']:<12}{row['runtime']:<14}{row['runs in']:<8}{row['size_mb']:>8.1f}"
            f"{row['latency_p50_ms']:>9.2f}{row['texts_per_second']:>9.1f}{row['speedup']:>8.2f}{scores}{bare}"
        )
    if "int8" in reports:
        int8 = reports["int8"]["exported"]
        print(
            f"\nint8: {int8['speedup']:.2f}x fp32's throughput (target >= 1.5x), accuracy "
            f"{int8['metric_change']['accuracy'] * 100:+.1f} points (target within 1)"
        )
    if "pruned" in reports:
        pruned, variant = reports["pruned"]["exported"], reports["pruned"]["variant"]
        print(
            f"pruned {variant['sparsity']:.0%} ({variant.get('prune', 'weights')}): accuracy "
            f"{pruned['metric_change']['accuracy'] * 100:+.1f} points (target: at most 2 lost)"
        )
    print(f"test rows: {next(iter(reports.values()))['test_rows']}")


if __name__ == "__main__":
    sys.exit(main())
