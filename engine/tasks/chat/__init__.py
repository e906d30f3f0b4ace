"""Chat: supervised fine-tuning of a causal LM on conversations (LoRA or full), held-out perplexity vs the base."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import DataError
from engine.tasks.base import METHOD_PARAMS, Column, ReportView, Task

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel

    from engine.predict import Predictor
    from engine.spec import DataSpec

NAME = "chat"
# A reply may not repeat any run of this many of its own tokens: small fine-tuned models otherwise loop ("I'm not
# sure I'm sure I'm not sure ...") until the token limit (engine.tasks.chat.generation.NoRepeatInReply).
NO_REPEAT_NGRAM = 4
# Tokens the reply already used score this much lower (the prompt's do not): a mild nudge away from saying the same
# thing twice, which the hard n-gram ban above leaves open with different words in between.
REPETITION_PENALTY = 1.1
# The training loss runs the LM head over at most this many logits at a time (engine.tasks.chat.loss): 1024
# positions of SmolLM2's 49k vocabulary, 256 of Gemma 3's 262k; 256 MB in fp32 either way.
LOSS_CHUNK_LOGITS = 2**26
LOSS_CHUNK_POSITIONS = (256, 1024)  # the fewest and the most positions per chunk


def loss_chunk_positions(vocab: int) -> int:
    """How many positions go through the LM head at a time: about LOSS_CHUNK_LOGITS logits, within bounds."""
    fewest, most = LOSS_CHUNK_POSITIONS
    return max(fewest, min(most, LOSS_CHUNK_LOGITS // max(vocab, 1)))


HOW_TO_READ = (
    "**How to read this.** *Loss* and *perplexity* measure how well the model predicts the real answers of "
    "held-out conversations (lower is better). Compare the fine-tuned model with the base model it started "
    "from, then read the answers side by side: numbers say little about tone and facts."
)


@dataclass(frozen=True)
class ChatTask(Task):
    """Teach a small instruct model to answer like the user's conversations."""

    def recipe(self):
        from engine.tasks.chat.recipe import Chat

        return Chat()

    def inspect(self, data: DataSpec, *, tokenizer: Any = None, max_length: int = 512, seed: int = 42) -> dict:
        from engine.tasks.chat.data import inspect_chat_data

        return inspect_chat_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed)

    def render_markdown(self, report: dict) -> str:
        from engine.tasks.chat.report import render_chat_markdown

        return render_chat_markdown(report)

    def load_model(self, model_dir: Path, device: str) -> PreTrainedModel:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()

    def labels_of(self, model: PreTrainedModel) -> list[str]:
        return []

    def shown_labels(self, labels: list[str]) -> list[str]:
        return []  # a causal LM's config still carries the default LABEL_0/LABEL_1

    def serve(self, predictor: Predictor, request: dict[str, Any]) -> dict[str, Any]:
        messages = request.get("messages")
        if messages is None:
            raise ValueError("this is a chat model: send 'messages', a list of {role, content}, not texts")
        options = {key: request[key] for key in ("max_new_tokens", "temperature", "top_p") if key in request}
        return {"reply": predictor.chat(list(messages), **options)}

    def request_for_text(self, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}]}

    def predict_file(self, predictor: Predictor, input_path: Path, output_path: Path, **options: Any) -> int:
        """Answer each line of a JSONL file ({"messages": [...]} or {"prompt": "..."}) into answers JSONL."""
        rows = []
        for number, line in enumerate(Path(input_path).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{input_path.name} line {number} is not valid JSON: {exc.msg}") from exc
            if not isinstance(record, dict) or not ("messages" in record or "prompt" in record):
                raise DataError(f'{input_path.name} line {number}: give {{"messages": [...]}} or {{"prompt": "..."}}')
            messages = record.get("messages") or [{"role": "user", "content": str(record["prompt"])}]
            max_new_tokens = options.get("max_new_tokens") or 256
            rows.append({**record, "answer": predictor.chat(messages, max_new_tokens=max_new_tokens)})
        partial = output_path.with_name(f".{output_path.name}.partial")
        partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        partial.replace(output_path)
        return len(rows)

    def summary_view(self, summary: dict, dataset_name: str = "") -> tuple[str, pd.DataFrame]:
        from engine.report_views import counts_frame
        from engine.tasks.chat.views import chat_summary_markdown

        return chat_summary_markdown(summary, dataset_name), counts_frame(summary)

    def report_view(self, report: dict, title: str) -> ReportView:
        from engine.tasks.chat.views import chat_headline_markdown, generations_frame

        return ReportView(
            headline=chat_headline_markdown(report, title),
            how_to_read=self.how_to_read,
            generations=generations_frame(report),
        )

    def about(self, base_model: str, trained_on: str, labels: list[str]) -> str:
        return (
            f"A chat model fine-tuned from <strong>{base_model}</strong>{trained_on}. "
            "It answers one message at a time."
        )

    def detect(self, path: Path, frame: pd.DataFrame | None) -> int:
        if frame is None or frame.empty:
            return 0
        names = {str(c).lower() for c in frame.columns}
        first = frame.iloc[0]
        lists = [c for c in frame.columns if isinstance(first[c], list | tuple)]
        if any(isinstance(first[c][0] if len(first[c]) else None, dict) for c in lists) or "messages" in names:
            return 3
        if "instruction" in names or ("prompt" in names and ({"output", "response", "completion"} & names)):
            return 2
        return 0

    def one_line(self, text: str, result: Any) -> str:
        return f"> {text}\n{result}"


CHAT = ChatTask(
    name=NAME,
    title="Chat: teach an assistant to answer like your conversations",
    columns=(
        Column("messages_column", "Which column holds the conversations (lists of {role, content})?"),
        Column("instruction_column", "…or which column holds the instruction (the prompt)?"),
        Column("input_column", "Which column holds extra input for the instruction (optional)?"),
        Column("output_column", "Which column holds the reference answer?"),
    ),
    formats=("csv", "tsv", "json", "jsonl", "parquet", "text"),
    architecture="causal-lm",
    default_base_model="smollm2-135m-instruct",
    # LoRA adapters start at zero and need a larger step than full fine-tuning to move in a few epochs.
    default_params={"max_length": 512, "batch_size": 8, "learning_rate": 2e-4, "method": "lora"},
    own_params=METHOD_PARAMS,
    techniques=("adversarial",),
    headline_metric="perplexity",
    headline_name="perplexity",
    greater_is_better=False,
    playground="chat",
    how_to_read=HOW_TO_READ,
    curve_metrics=(),  # a language model has no validation score beyond its loss
    model_architectures=("ForCausalLM", "LMHeadModel"),
    demo_prompt=("Your message:", "Send", "send"),
)
