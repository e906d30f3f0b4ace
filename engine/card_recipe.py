"""The model card's data and recipe sections: what the model learned from, and how it was trained."""

from __future__ import annotations

from typing import Any

from engine.card_facts import Facts, metric_title, number_of
from engine.card_sections import code
from engine.catalog import CATALOG
from engine.markdown import cell, duration, num, table

_SPLITS = ("train", "validation", "test")
_PER_LABEL_COUNTS = (("rows_per_label", "Label"), ("entities_per_type", "Entity type"))


def data_section(facts: Facts) -> list[str]:
    """Rows per split, counts per label, languages and lengths, as the data summary has them."""
    data = facts.data
    if not data:
        return ["## Training data", "", "No data summary was recorded.", ""]
    many = facts.units[1]
    lines = ["## Training data", ""]
    counts = {split: facts.split_count(split) for split in _SPLITS}
    if all(value is not None for value in counts.values()):
        lines += [
            f"{sum(counts.values()):,} {many} from {code(facts.file_name())}: {counts['train']:,} to train on, "
            f"{counts['validation']:,} for validation (to pick the best checkpoint) and {counts['test']:,} to test "
            f"on (the scores above).{_split_source(data)}",
            "",
        ]
    lines += _counts_table(data)
    lines += _shape_lines(data)
    scripts = (data.get("language") or {}).get("scripts") or {}
    if scripts:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in scripts.items())
        named = ", ".join(name for _, name in facts.languages) or "not recognised"
        unknown = number_of((data.get("language") or {}).get("unknown_token_rate"))
        lines += [f"- Language: {named} (letters by script: {shares})."]
        if unknown is not None:
            lines += [f"- Tokens the base model's vocabulary does not know: {unknown:.1%}."]
    lengths = data.get("length_tokens")
    if isinstance(lengths, dict) and lengths.get("p50") is not None:
        unit = lengths.get("unit", "tokens")
        lines += [
            f"- Length in {unit}: median {lengths['p50']}, 90th percentile {lengths.get('p90')}, longest "
            f"{lengths.get('max')}; the model reads at most {facts.spec.params.max_length} tokens."
        ]
    return [*lines, ""]


def _split_source(data: dict[str, Any]) -> str:
    splits = data.get("splits") or {}
    sources = {s: (splits.get(s) or {}).get("source") for s in ("validation", "test")}
    derived = {split: source for split, source in sources.items() if source not in (None, "file")}
    if not derived:
        return ""
    seed = f" (seed {data['seed']})" if data.get("seed") is not None else ""
    if len(set(derived.values())) == 1:
        return f" {' and '.join(derived).capitalize()}: {next(iter(derived.values()))}{seed}."
    return "".join(f" {split.capitalize()}: {source}{seed}." for split, source in derived.items())


def _counts_table(data: dict[str, Any]) -> list[str]:
    splits = data.get("splits") or {}
    for key, column in _PER_LABEL_COUNTS:
        total = data.get(key)
        if not isinstance(total, dict) or not total:
            continue
        per_split = {s: (splits.get(s) or {}).get(key) or {} for s in _SPLITS}
        rows = [[cell(name), *(num(per_split[s].get(name, 0)) for s in _SPLITS), num(n)] for name, n in total.items()]
        noun = "rows" if key == "rows_per_label" else "entities"
        return [f"{column} counts ({noun}):", "", *table([column, "Train", "Validation", "Test", "All"], rows), ""]
    return []


def _shape_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    if number_of(data.get("tokens")) is not None and number_of(data.get("entities")) is not None:
        lines.append(
            f"- {data['tokens']:,} tokens, {data['entities']:,} entities, tagged {data.get('token_level', 'word')}"
            f" by {data.get('token_level', 'word')}."
        )
    turns = data.get("turns")
    if isinstance(turns, dict) and turns.get("assistant") is not None:
        lines.append(
            f"- {turns['assistant']:,} assistant answers to learn from; {data.get('multi_turn', 0):,} "
            f"conversations have several turns, {data.get('with_system_prompt', 0):,} a system prompt."
        )
    duplicates = data.get("duplicates")
    repeated = duplicates.get("across_splits") if isinstance(duplicates, dict) else None
    if repeated:
        also = "example also appears" if repeated == 1 else "examples also appear"
        lines.append(
            f"- {repeated:,} validation or test {also} in the training split: the scores above flatter the model a "
            "little."
        )
    return lines


def training_section(facts: Facts) -> list[str]:
    """The recipe: base model, method, epochs, learning rate, batch, schedule, precision, techniques, search."""
    params, train = facts.spec.params, facts.train
    rows = [["Base model", cell(_base_model(facts))], ["Method", cell(_method(facts))]]
    # The training info holds what the kept run used (a search's best trial); the spec what was asked for.
    rows.append(["Epochs", f"{float(train.get('epochs', params.epochs)):g}"])
    rows.append(["Learning rate (peak)", f"{float(train.get('learning_rate', params.learning_rate)):g}"])
    batch = f"{params.batch_size}"
    if params.gradient_accumulation_steps > 1:
        effective = train.get("effective_batch_size", params.batch_size * params.gradient_accumulation_steps)
        batch += f" x {params.gradient_accumulation_steps} accumulated = {effective} per update"
    warmup = f"{params.warmup_steps} steps" if params.warmup_steps is not None else f"{params.warmup_ratio:.0%}"
    rows += [
        ["Batch size", batch],
        ["Schedule", f"{params.schedule.replace('_', ' ')}, warm-up {warmup}, weight decay {params.weight_decay:g}"],
        ["Optimizer", params.optimizer],
        ["Max length", f"{params.max_length} tokens"],
        ["Precision", cell(f"{train.get('precision', params.precision)} on {train.get('device', 'n/a')}")],
        ["Seed", str(params.seed)],
    ]
    rows += _regularisation_rows(params)
    if number_of(train.get("steps")) is not None:
        took = f" in {duration(float(train['wall_seconds']))}" if number_of(train.get("wall_seconds")) else ""
        rows.append(["Steps", f"{int(train['steps']):,}{took}"])
    rows += _checkpoint_rows(train)
    titles = (facts.report.get("techniques") or {}).get("titles")
    if titles:
        rows.append(["Techniques", cell(", ".join(titles) + " (report.md compares them with the plain recipe)")])
    return ["## Training procedure", "", *table(["Setting", "Value"], rows), "", *_search_lines(train)]


def _base_model(facts: Facts) -> str:
    entry = CATALOG.get(facts.spec.base_model)
    # The catalog says what the weights are and where they came from (a GGUF file, dequantized, for some).
    return f"{facts.base_description}: {entry.description}" if entry else facts.base_description


def _method(facts: Facts) -> str:
    params, train = facts.spec.params, facts.train
    targets = ", ".join(params.lora_target_modules or ()) or "the attention and MLP projections"
    text = {
        "full": "full fine-tuning",
        "lora": f"LoRA (rank {params.lora_rank}, alpha {params.lora_alpha}, dropout {params.lora_dropout:g}, "
        f"on {targets}), merged into the saved weights",
        "ia3": f"IA3 (learned rescaling of {targets if params.lora_target_modules else 'keys, values and MLP'}), "
        "merged into the saved weights",
    }.get(params.method, params.method)
    trainable, total = train.get("trainable_parameters"), train.get("total_parameters")
    if isinstance(trainable, int) and isinstance(total, int) and total:
        text += f"; {trainable:,} of {total:,} weights trained ({trainable / total:.1%})"
    if train.get("frozen_embeddings"):
        text += ", token embeddings kept as pretrained"
    return text


def _regularisation_rows(params: Any) -> list[list[str]]:
    rows = []
    if params.label_smoothing:
        rows.append(["Label smoothing", f"{params.label_smoothing:g}"])
    if params.dropout is not None:
        rows.append(["Dropout", f"{params.dropout:g}"])
    if params.class_weights:
        weights = params.class_weights
        text = weights if isinstance(weights, str) else ", ".join(f"{k}={v:g}" for k, v in weights.items())
        rows.append(["Class weights", cell(text)])
    if params.freeze_layers:
        rows.append(["Frozen layers", f"the lowest {params.freeze_layers}"])
    return rows


def _checkpoint_rows(train: dict[str, Any]) -> list[list[str]]:
    rows = []
    metric = next((key for key in train if key.startswith("best_validation_")), None)
    if metric and number_of(train.get(metric)) is not None:
        title = metric_title(metric.removeprefix("best_validation_"))
        name = title[:1].lower() + title[1:]  # 'macro F1' inside a sentence
        where = (
            f"epoch {float(train['best_epoch']):g}, step {train.get('best_step')}" if train.get("best_epoch") else ""
        )
        rows.append(["Kept checkpoint", f"{where}: validation {name} {float(train[metric]):.3f}".lstrip(": ")])
    stopped = train.get("stopped_early")
    if isinstance(stopped, dict):
        text = f"at step {stopped.get('step')} of {stopped.get('of_steps')}: {stopped.get('reason', '')}"
        rows.append(["Stopped early", cell(text.rstrip(": "))])
    return rows


def _search_lines(train: dict[str, Any]) -> list[str]:
    search = train.get("search")
    if not isinstance(search, dict) or not search.get("trials"):
        return []
    trials = search["trials"]
    best = next((t for t in trials if t.get("number") == search.get("best_trial")), None)
    pruned = sum(1 for t in trials if t.get("state") == "pruned")
    text = f"A learning-rate search ran {len(trials)} trials ({pruned} stopped early below the median)"
    if best is None:
        return [text + ".", ""]
    knobs = [
        f"{k.replace('_', ' ')} {best[k]:.3g}"
        for k in ("learning_rate", "batch_size", "epochs", "warmup_ratio")
        if number_of(best.get(k)) is not None
    ]
    score = (
        f", validation {search.get('metric', 'score').replace('_', ' ')} {best['score']:.3f}"
        if best.get("score") is not None
        else ""
    )
    together = [m["trial"] for m in (search.get("ensemble") or {}).get("members", []) if m.get("kept")]
    if len(together) > 1:
        named = ", ".join(str(t) for t in together)
        return [
            f"{text}; this model is an ensemble of trials {named} (the mean of their probabilities), the best of "
            f"them trial {best['number']}: {', '.join(knobs)}{score}.",
            "",
        ]
    return [f"{text}; this model is trial {best['number']}'s: {', '.join(knobs)}{score}.", ""]
