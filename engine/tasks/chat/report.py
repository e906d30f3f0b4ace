"""The chat report: held-out loss and perplexity before and after fine-tuning, and generations side by side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.markdown import cell as escape_cell
from engine.markdown import recipe_lines
from engine.markdown import table as markdown_table
from engine.masking import masked_sentence
from engine.tasks.chat import NAME, NO_REPEAT_NGRAM, REPETITION_PENALTY
from engine.techniques.markdown import technique_sections

_TRAIN_KEYS = (
    "method",
    "epochs",
    "steps",
    "train_samples",
    "trainable_parameters",
    "total_parameters",
    "wall_seconds",
    "train_tokens_per_second",
    "precision",
    "device",
    "gradient_checkpointing",
    "final_train_loss",
)


def build_chat_report(
    *,
    base_model: str,
    loss: float,
    perplexity: float,
    base_loss: float,
    base_perplexity: float,
    n_held_out: int,
    generations: list[dict],
    generation_tokens_per_second: float | None,
    data_summary: dict,
    train_info: dict | None,
    repetition: dict[str, float | None] | None = None,
    decoding: str = "greedy",
) -> dict[str, Any]:
    """report.json for a chat job; `baseline` is the base model on the same held-out conversations."""
    return {
        "task": NAME,
        "base_model": base_model,
        "labels": [],
        "split": "test",
        "n_test": n_held_out,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repetition": repetition,
        "metrics": {
            "loss": round(loss, 4),
            "perplexity": round(perplexity, 3),
            "base_loss": round(base_loss, 4),
            "base_perplexity": round(base_perplexity, 3),
            "perplexity_change": round(perplexity - base_perplexity, 3),
        },
        "baseline": {
            "name": "base model, not fine-tuned",
            "loss": round(base_loss, 4),
            "perplexity": round(base_perplexity, 3),
        },
        "warnings": _warnings(perplexity, base_perplexity),
        "generations": generations,
        "generation": {"tokens_per_second": generation_tokens_per_second, "decoding": decoding},
        "data": data_summary,
        "train": train_info,
    }


def _warnings(perplexity: float, base_perplexity: float) -> list[str]:
    if perplexity < base_perplexity:
        return []
    return [
        f"Fine-tuning did not lower held-out perplexity ({base_perplexity:.2f} before, {perplexity:.2f} after): the "
        "model got no better at these conversations. Try more data or epochs, or a lower learning rate if the "
        "training loss fell while this rose (overfitting)."
    ]


def render_chat_markdown(report: dict) -> str:
    """report.md for a chat job."""
    m = report["metrics"]
    lines = [
        f"# chat report: {report['base_model']}",
        "",
        f"Held-out conversations: {report['n_test']} · created at {report['created_at']}",
        "",
        *technique_sections(report),
        "## Loss on assistant tokens (held-out split)",
        "",
        *markdown_table(
            ["Model", "Loss", "Perplexity"],
            [
                ["base", f"{m['base_loss']:.4f}", f"{m['base_perplexity']:.3f}"],
                ["fine-tuned", f"{m['loss']:.4f}", f"{m['perplexity']:.3f}"],
            ],
        ),
        "",
    ]
    change = m["perplexity_change"]
    if change < 0:
        lines.append(f"Fine-tuning lowered perplexity by **{-change:.3f}** ({-change / m['base_perplexity']:.0%}).")
    else:
        lines.append(
            f"**Fine-tuning did not lower perplexity** (+{change:.3f}): try more data, more epochs, or a lower "
            "learning rate if the training loss fell while this rose (overfitting)."
        )
    train = report.get("train") or {}
    if train:
        keys = [k for k in _TRAIN_KEYS if train.get(k) is not None]
        lines += [
            "",
            "## Training",
            "",
            *markdown_table(["Setting", "Value"], [[k.replace("_", " "), str(train[k])] for k in keys]),
            "",
            *recipe_lines(train),
        ]
    generation = report.get("generation") or {}
    if generation.get("tokens_per_second"):
        decoding = generation.get("decoding") or "greedy"
        lines += ["", f"Generation speed (fine-tuned, {decoding}): {generation['tokens_per_second']} tokens/s."]
    if report.get("generations"):
        lines += ["", "## Generations on held-out prompts", ""]
        repetition = report.get("repetition") or {}
        if any(v is not None for v in repetition.values()):
            shown = ", ".join(
                f"{name} {repetition[key]:.3f}"
                for key, name in (("base", "base"), ("fine_tuned", "fine-tuned"), ("reference", "reference"))
                if repetition.get(key) is not None
            )
            lines += [
                f"Distinct-2 (share of token pairs that are new; a looping answer scores low): {shown}. Replies "
                f"never repeat a run of {NO_REPEAT_NGRAM} of their own tokens, and tokens they already used are "
                f"penalised ({REPETITION_PENALTY}x).",
                "",
            ]
        for i, row in enumerate(report["generations"], 1):
            last_user = next((t["content"] for t in reversed(row["prompt"]) if t["role"] == "user"), "")
            lines += [
                f"### {i}. {escape_cell(last_user)[:200]}",
                "",
                *markdown_table(
                    ["reference", "base", "fine-tuned"],
                    [[escape_cell(row["reference"]), escape_cell(row["base"]), escape_cell(row["fine_tuned"])]],
                ),
                "",
            ]
    masked = masked_sentence(report.get("data") or {})
    if masked:
        lines += ["", "## Data", "", masked]
    notices = (report.get("data") or {}).get("notices") or []
    if notices:
        lines += ["", "## Data notices", "", *[f"- {escape_cell(n)}" for n in notices]]
    return "\n".join(lines) + "\n"
