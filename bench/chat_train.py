"""Peak memory and speed of chat fine-tuning with the default settings: LoRA against full, in one run.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.chat_train [--conversations 40] [--epochs 1]`.
Each method trains in its own process so its peak resident memory (ru_maxrss) is its own.
The target (issue 6): the default settings fine-tune the packaged SmolLM2-135M within 8 GB of RAM.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chat" / "support.jsonl"


def child(method: str, data: str, epochs: float, out: str) -> None:
    from engine.spec import JobSpec
    from engine.train import train

    spec = JobSpec.from_dict({"task": "chat", "data": {"train": data}, "params": {"method": method, "epochs": epochs}})
    report = train(spec, out).report
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, "peak_rss_mb": round(peak_mb), "report": report}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "DATA", "EPOCHS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]), args.child[3])
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "chat.jsonl"
        lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)[: args.conversations]
        data.write_text("".join(lines), encoding="utf-8")
        rows = []
        for method in ("lora", "full"):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.chat_train",
                    "--child",
                    method,
                    str(data),
                    str(args.epochs),
                    f"{tmp}/{method}",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:
        train, m = row["report"]["train"], row["report"]["metrics"]
        print(
            f"{row['method']:>4}: peak RSS {row['peak_rss_mb']:6d} MB  train {train['wall_seconds']:7.1f} s  "
            f"{train['train_tokens_per_second']:7.1f} tokens/s  "
            f"trainable {train['trainable_parameters'] / 1e6:6.2f}M  "
            f"held-out perplexity {m['base_perplexity']:.2f} -> {m['perplexity']:.2f}"
        )
    lora, full = rows
    print(f"LoRA / full peak memory: {lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}x; target: LoRA under 8192 MB")


if __name__ == "__main__":
    main()
