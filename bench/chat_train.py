"""Speed and memory of chat fine-tuning (issue 14): the product against a plain transformers Trainer recipe.

Run by hand, on one core as the issue measured it:
`HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 1 python -m bench.chat_train [--data FILE] [--conversations N]`.

For LoRA and for full fine-tuning, each of these trains in its own process, so its peak resident memory (ru_maxrss)
is its own:
- product: `engine.train` with the chat defaults (batch 8, max length 512, precision auto), report and save included;
- reference: the plain recipe on the same model and the same tokenized split (the engine's tokenization): fp32, the
  model's own forward loss over full logits, dynamic padding (DataCollatorForSeq2Seq), group_by_length, batch 8,
  lr 2e-4 with peft LoRA on engine/adapters.py's target modules (5e-5 full), no evaluation.
Speeds count the assistant tokens trained on (the report's train_tokens_per_second) over training's wall time; the
product's report phase (held-out loss of tuned and base model, sample generations) is timed on its own.
Then the product's fine-tuned LoRA model answers prompts through the Predictor's paths (whole reply, stream for the
first token) against plain `model.generate` on the same model and prompts, both greedy.
Targets: product LoRA peak RSS at most 6 GB, and at least 2x the reference's training tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chat" / "support.jsonl"
LEARNING_RATE = {"lora": 2e-4, "full": 5e-5}
BATCH_SIZE = 8
GENERATION_PROMPTS = 8
GENERATION_TOKENS = 64
TARGET_PEAK_MB = 6 * 1024


def _spec(method: str, data: str, epochs: float):
    from engine.spec import JobSpec

    params = {"method": method, "epochs": epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE[method]}
    return JobSpec.from_dict({"task": "chat", "data": {"train": data}, "params": params})


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _label_tokens(rows) -> int:
    return sum(sum(label != -100 for label in labels) for labels in rows["labels"])


def product(method: str, data: str, epochs: float, out: str) -> dict:
    """engine.train as a user runs it; the phases' times from its progress events."""
    from engine.train import train

    phases: dict[str, float] = {}

    def on_event(event) -> None:
        if event.kind == "phase":
            phases.setdefault(event.phase, time.perf_counter())

    started = time.perf_counter()
    result = train(_spec(method, data, epochs), out, on_event=on_event)
    ended = time.perf_counter()
    info = result.report["train"]
    metrics = result.report["metrics"]
    return {
        "train_seconds": info["wall_seconds"],
        "conversations_per_second": info["train_samples"] * epochs / info["wall_seconds"],
        "tokens_per_second": info["train_tokens_per_second"],
        "report_seconds": phases.get("reporting", ended) - phases.get("evaluating", ended),
        "job_seconds": ended - started,
        "perplexity": (metrics["base_perplexity"], metrics["perplexity"]),
        "precision": info["precision"],
        "model_dir": str(result.model_dir),
    }


def reference(method: str, data: str, epochs: float, out: str) -> dict:
    """The plain transformers recipe on the engine's tokenized training split."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer

    from bench.reference import plain_trainer_args, seed_everything
    from engine.adapters import lora_targets
    from engine.catalog import resolve_model
    from engine.tasks.chat.recipe import Chat

    spec = _spec(method, data, epochs)
    path = resolve_model(spec.base_model, task="chat")
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_rows = Chat().prepare(spec, tokenizer).train
    seed_everything(spec.params.seed)  # LoRA's matrices are drawn before the Trainer seeds anything
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        p = spec.params
        targets = lora_targets(model.config.model_type, p.lora_target_modules)
        config = LoraConfig(
            task_type="CAUSAL_LM", r=p.lora_rank, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout,
            target_modules=targets,
        )  # fmt: skip
        model = get_peft_model(model, config)
    args = plain_trainer_args(
        out, epochs=epochs, learning_rate=LEARNING_RATE[method], batch_size=BATCH_SIZE, seed=spec.params.seed
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=train_rows, data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return {
        "train_seconds": seconds,
        "conversations_per_second": len(train_rows) * epochs / seconds,
        "tokens_per_second": _label_tokens(train_rows) * epochs / seconds,
        "precision": "fp32",
    }


def generation(model_dir: str, data: str) -> dict:
    """Tokens/s and time to first token of the Predictor's chat paths against plain generate, same model."""
    from engine.predict import Predictor
    from engine.tasks.chat.generation import generate_reply
    from engine.tasks.chat.tokens import prompt_messages

    predictor = Predictor(model_dir, device="cpu")
    model, tokenizer = predictor.model, predictor.tokenizer
    lines = Path(data).read_text(encoding="utf-8").splitlines()[-GENERATION_PROMPTS:]
    prompts = [prompt_messages(json.loads(line)["messages"])[0] for line in lines]
    generate_reply(model, tokenizer, prompts[0], max_new_tokens=4)  # warm-up, outside the clock
    ours = {"tokens": 0, "seconds": 0.0, "first": 0.0}
    plain = {"tokens": 0, "seconds": 0.0, "first": 0.0}
    for messages in prompts:
        reply = generate_reply(model, tokenizer, messages, max_new_tokens=GENERATION_TOKENS)  # Predictor.chat's path
        ours["tokens"] += reply.new_tokens
        ours["seconds"] += reply.seconds
        started = time.perf_counter()
        stream = predictor.stream_chat(messages, max_new_tokens=GENERATION_TOKENS, temperature=0.0)
        ours["first"] += _first_piece(stream) - started
        tokens, seconds, first = _plain(model, tokenizer, messages)
        plain["tokens"] += tokens
        plain["seconds"] += seconds
        plain["first"] += first
    n = len(prompts)
    return {
        "tokens_per_second": (ours["tokens"] / ours["seconds"], plain["tokens"] / plain["seconds"]),
        "first_token_seconds": (ours["first"] / n, plain["first"] / n),
        "prompts": n,
    }


def _first_piece(stream) -> float:
    """When the first non-empty piece of a stream came (perf_counter); the rest is drained."""
    when = None
    for piece in stream:
        if piece and when is None:
            when = time.perf_counter()
    return when if when is not None else time.perf_counter()


def _plain(model, tokenizer, messages: list[dict]) -> tuple[int, float, float]:
    """Plain greedy `model.generate` on the prompt: new tokens, seconds, and the first streamed piece's delay."""
    import torch
    from transformers import TextIteratorStreamer

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    options = {"max_new_tokens": GENERATION_TOKENS, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        started = time.perf_counter()
        output = model.generate(**inputs, **options)
        seconds = time.perf_counter() - started
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

    def run() -> None:
        with torch.inference_mode():
            model.generate(**inputs, streamer=streamer, **options)

    thread = threading.Thread(target=run, daemon=True)
    started = time.perf_counter()
    thread.start()
    first = _first_piece(streamer) - started
    thread.join()
    return int(output.shape[1] - inputs["input_ids"].shape[1]), seconds, first


def child(role: str, method: str, data: str, epochs: float, out: str) -> None:
    """One measurement in this process; its figures and peak RSS as the last line of stdout."""
    if role == "product":
        row = product(method, data, epochs, out)
    elif role == "reference":
        row = reference(method, data, epochs, out)
    else:
        row = generation(out, data)
    print(json.dumps({"role": role, "method": method, "peak_rss_mb": _peak_mb(), **row}))


def _run_child(role: str, method: str, data: Path, epochs: float, out: str) -> dict:
    command = [sys.executable, "-m", "bench.chat_train", "--child", role, method, str(data), str(epochs), out]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"{role} {method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _data_file(source: Path, conversations: int | None, folder: Path) -> Path:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
    data = folder / "chat.jsonl"
    data.write_text("".join(lines[:conversations] if conversations else lines), encoding="utf-8")
    return data


def _line(name: str, ours: float, theirs: float | None, unit: str, *, lower_is_better: bool = False) -> str:
    if theirs is None:
        return f"  {name:<26} product {ours:10.2f} {unit}"
    ratio = ours / theirs if theirs else float("nan")
    better = "lower is better" if lower_is_better else "higher is better"
    return f"  {name:<26} product {ours:10.2f}  reference {theirs:10.2f} {unit:<6}  ratio {ratio:5.2f}x ({better})"


def _print_training(method: str, ours: dict, theirs: dict) -> None:
    base, tuned = ours["perplexity"]
    print(f"{method}: product {ours['precision']}, reference {theirs['precision']}")
    print(_line("conversations/s", ours["conversations_per_second"], theirs["conversations_per_second"], "/s"))
    print(_line("training tokens/s", ours["tokens_per_second"], theirs["tokens_per_second"], "/s"))
    print(_line("training seconds", ours["train_seconds"], theirs["train_seconds"], "s", lower_is_better=True))
    print(_line("peak RSS", ours["peak_rss_mb"], theirs["peak_rss_mb"], "MB", lower_is_better=True))
    print(_line("report (eval + generations)", ours["report_seconds"], None, "s"))
    print(_line("whole job", ours["job_seconds"], None, "s"))
    print(f"  held-out perplexity, base -> fine-tuned: {base:.2f} -> {tuned:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FIXTURE, help="a chat JSONL file (default: the support chats)")
    parser.add_argument("--conversations", type=int, default=None, help="use only the first N conversations")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--methods", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    parser.add_argument(
        "--child", nargs=5, metavar=("ROLE", "METHOD", "DATA", "EPOCHS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        role, method, data, epochs, out = args.child
        child(role, method, data, float(epochs), out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = _data_file(args.data, args.conversations, Path(tmp))
        count = len(data.read_text(encoding="utf-8").splitlines())
        threads = os.environ.get("OMP_NUM_THREADS", "all")
        print(
            f"data: {args.data} ({count} conversations), {args.epochs:g} epoch(s), batch {BATCH_SIZE}, "
            f"threads {threads}"
        )
        lora_model = None
        for method in args.methods:
            ours = _run_child("product", method, data, args.epochs, f"{tmp}/product-{method}")
            theirs = _run_child("reference", method, data, args.epochs, f"{tmp}/reference-{method}")
            _print_training(method, ours, theirs)
            lora_model = ours["model_dir"] if method == "lora" else lora_model
        if lora_model:
            found = _run_child("generation", "lora", data, args.epochs, lora_model)
            print(
                f"generation, fine-tuned LoRA model, {found['prompts']} prompts, greedy, {GENERATION_TOKENS} tokens:"
            )
            print(_line("tokens/s", *found["tokens_per_second"], "/s"))
            print(_line("time to first token", *found["first_token_seconds"], "s", lower_is_better=True))
    print(f"targets: product LoRA peak RSS <= {TARGET_PEAK_MB} MB; product training tokens/s >= 2x the reference")


if __name__ == "__main__":
    main()
