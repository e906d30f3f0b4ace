"""Training throughput of the engine in bf16 autocast against fp32, measured in the same run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.train_speed [--epochs 2] [--repeat 3]`.
Prints samples/s, wall time and test macro-F1 for each precision and the bf16/fp32 speed ratio.
The fixture is repeated to get more steps, so near-copies land in every split: the F1 here only shows
that bf16 learns as well as fp32, not how good the model is.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from engine.hardware import cpu_has_fast_bf16, device_name
from engine.spec import JobSpec
from engine.train import train

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reviews.csv"


def run(precision: str, data: Path, args: argparse.Namespace, workdir: Path) -> dict:
    spec = JobSpec.from_dict(
        {
            "data": {"train": str(data), "text_column": "review_body", "label_column": "verdict"},
            "params": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "precision": precision,
            },
        }
    )
    started = time.perf_counter()
    result = train(spec, workdir / precision)
    return {
        "precision": precision,
        "samples_per_second": result.report["train"]["samples_per_second"],
        "train_seconds": result.report["train"]["wall_seconds"],
        "job_seconds": round(time.perf_counter() - started, 2),
        "macro_f1": round(result.report["metrics"]["macro_f1"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="copies of the 240-row fixture (more steps, steadier)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data = workdir / "reviews.csv"
        frame = pd.read_csv(FIXTURE)
        # Copies get a suffix so they are distinct rows, not duplicates the summary would flag.
        pd.concat([frame.assign(review_body=frame.review_body + f" ({i})") for i in range(args.repeat)]).to_csv(
            data, index=False
        )
        print(f"device {device_name()}, fast bf16 on this CPU: {cpu_has_fast_bf16()}, rows {len(frame) * args.repeat}")
        rows = [run(p, data, args, workdir) for p in ("fp32", "bf16")]
    for row in rows:
        print(
            f"{row['precision']:>5}: {row['samples_per_second']:8.1f} samples/s  train {row['train_seconds']:6.1f} s  "
            f"job {row['job_seconds']:6.1f} s  test macro-F1 {row['macro_f1']:.3f}"
        )
    print(f"bf16 / fp32 training throughput: {rows[1]['samples_per_second'] / rows[0]['samples_per_second']:.2f}x")


if __name__ == "__main__":
    main()
