"""The CPU's cheap dropout (engine/dropout.py) against torch's own, in alternating rounds of the same training steps.

Run by hand: `HF_HUB_OFFLINE=1 python -m bench.dropout [--rounds 5] [--steps 30] [--precision bf16|fp32]`.

Whole training steps (forward, backward, clipping, fused AdamW) of the product's MiniLM classifier with its frozen
token embeddings, on batches of 16 review snippets grouped by length as the Trainer's length-grouped sampler makes
them. The reference is the same model with torch's `nn.Dropout` and SDPA's dropout; the product is the same weights
after `cheapen_dropout`. The sides alternate round by round, so a machine that slows down slows both; each round's
figure is its median step, and the table gives the median over rounds and their ratio. Whole-job figures move by up
to 15% between runs of the same code on a shared 2-core machine (bench.train_speed), too much to see this alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.train_speed import ROOT


def batches(rows: int, seed: int, tokenizer, batch_size: int = 16) -> list[dict[str, torch.Tensor]]:
    """Length-grouped batches of review snippets drawn by the fixture generator, in a shuffled order."""
    import importlib.util
    import random

    loader = importlib.util.spec_from_file_location("make_hard_reviews", ROOT / "tests/fixtures/make_hard_reviews.py")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    texts = sorted((row[0] for row in module.rows(rows, seed, snippets=True)), key=len)
    out = [
        tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt")
        for i in range(0, len(texts), batch_size)
    ]
    random.Random(seed).shuffle(out)
    return out


def build(path: str, state: dict[str, torch.Tensor] | None, cheap: bool):
    from transformers import AutoModelForSequenceClassification

    from engine.dropout import cheapen_dropout

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if state is not None:
        model.load_state_dict(state)
    if cheap:
        cheapen_dropout(model)
    model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    return model.train(), params, torch.optim.AdamW(params, lr=5e-5, fused=True)


def round_ms(side, data: list, start: int, steps: int, bf16: bool) -> float:
    """The median milliseconds of `steps` training steps of one side, from batch `start` on."""
    model, params, optimizer = side
    times = []
    for i in range(start, start + steps):
        batch = data[i % len(data)]
        labels = torch.arange(batch["input_ids"].shape[0]) % 2
        began = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    from transformers import AutoTokenizer

    from engine.catalog import resolve_model
    from engine.hardware import limit_threads_to_cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="training steps per side and round")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="bf16: autocast, the default")
    parser.add_argument("--rows", type=int, default=1600)
    args = parser.parse_args()
    threads = limit_threads_to_cores()
    path = resolve_model("minilm-l6")
    data = batches(args.rows, 0, AutoTokenizer.from_pretrained(path))
    torch.manual_seed(0)
    reference = build(path, None, cheap=False)
    product = build(path, reference[0].state_dict(), cheap=True)
    bf16 = args.precision == "bf16"
    for side in (reference, product):  # warm-up: the first steps allocate
        round_ms(side, data, 0, 3, bf16)
    rounds: dict[str, list[float]] = {"reference": [], "product": []}
    for r in range(args.rounds):
        for name, side in (("reference", reference), ("product", product)):
            rounds[name].append(round_ms(side, data, r * args.steps, args.steps, bf16))
    lengths = sorted(b["input_ids"].shape[1] for b in data)
    print(f"MiniLM-L6 training steps, batch 16, median length {lengths[len(lengths) // 2]}, {args.precision}, "
          f"{threads} threads, {args.rounds} rounds of {args.steps} steps per side")  # fmt: skip
    ref = statistics.median(rounds["reference"])
    for name in ("reference", "product"):
        ms = statistics.median(rounds[name])
        spread = ", ".join(f"{v:.1f}" for v in rounds[name])
        print(f"{name:<10} {ms:8.1f} ms/step  {16000 / ms:7.1f} samples/s  x{ref / ms:5.2f}  rounds: {spread}")


if __name__ == "__main__":
    main()
