"""The sections of a model card's body, each a list of markdown lines made from the report and the job's spec."""

from __future__ import annotations

from typing import Any

from engine.card_facts import Facts, count_of, flat, metric_title, number_of, own_metric_keys, short
from engine.markdown import LOW_F1_MARGIN, cell, num, table
from engine.masking import masked_sentence

# Below this many test examples one more or less right moves a score by a point or more: the card says so.
SMALL_TEST = 100
# A class this far below the macro F1, or under this F1 outright, is named among the limitations.
LOW_F1 = 0.5
# Labels this many times rarer than the commonest are named as imbalanced.
IMBALANCE = 5
LISTED_LABELS = 12
EXAMPLE_CHARS = 300
_PURPOSE = {
    "classify": "give a text one of its labels",
    "tag": "find the entities it was trained on in a text",
    "chat": "answer like the assistant in its training conversations",
}
_CLOSED_SET = {
    "classify": "It always answers with one of its {n} labels, even for a text that fits none of them.",
    "tag": "It only finds the {n} entity types it was trained on; other kinds of name go unmarked.",
    "chat": "Like every language model it can state wrong or made-up things fluently; check its answers before "
    "relying on them, and keep a person in the loop where mistakes matter.",
}
_PER_LABEL_COUNTS = ("rows_per_label", "entities_per_type")
_REPORT_HOLDS = {
    "classify": "the confusion matrix, the most confident errors, scores by epoch",
    "tag": "the confusion matrix of entity types, kinds of error, example mistakes",
    "chat": "ten held-out prompts answered by the base and the fine-tuned model, beside the reference answers",
}

__all__ = [
    "about",
    "evaluation_section",
    "license_section",
    "limitations_section",
    "results_section",
    "variant_section",
]


def code(name: Any) -> str:
    """A label as inline code, whatever characters it holds (backticks included)."""
    text = " ".join(str(name).split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def label_list(names: list[Any]) -> str:
    """'`a`, `b` and `c`', the first dozen of a long list and how many more."""
    shown = [code(name) for name in names[:LISTED_LABELS]]
    if len(names) > LISTED_LABELS:
        return f"{', '.join(shown)} and {len(names) - LISTED_LABELS} more"
    return " and ".join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else "".join(shown)


def about(facts: Facts) -> str:
    """The first paragraph: what the model is, what it learned from, what it does, how it was tested."""
    one, many = facts.units
    n_train = facts.split_count("train")
    language = f"{facts.language_names} " if facts.language_names else ""
    labeled = "labeled " if facts.task.playground != "chat" else ""
    learned = f"{n_train:,} {labeled}{language}{many}" if n_train is not None else f"{language}{many}"
    source = code(facts.file_name())
    text = f"A {facts.task_kind} model fine-tuned from {facts.base_description} on {learned} from {source}."
    labels = list(facts.report.get("labels") or [])
    if facts.task.playground == "classify" and labels:
        text += f" It gives each text one of {len(labels)} labels: {label_list(labels)}."
    elif facts.task.playground == "tag" and labels:
        text += f" It marks {len(labels)} kinds of entity in a text: {label_list(labels)}."
    elif facts.task.playground == "chat":
        text += " It learned to answer as the assistant in those conversations does."
    n_test = facts.report.get("n_test")
    if number_of(n_test) is not None:
        text += f" It was tested on {int(n_test):,} held-out {many if n_test != 1 else one} it never trained on."
    return text + " Made and evaluated with Finetune Playground."


def variant_section(facts: Facts) -> list[str]:
    """For an exported variant: what it is and what it runs with."""
    variant = facts.variant
    if not variant:
        return []
    name = variant.get("name", "exported")
    details = [f"runs with {variant['runtime']}" if variant.get("runtime") else None]
    details.append(f"computes in {variant['precision']}" if variant.get("precision") else None)
    if number_of(variant.get("size_mb")) is not None:
        details.append(f"takes {variant['size_mb']:.1f} MB on disk")
    said = ", ".join(d for d in details if d)
    lines = [
        "## This variant",
        "",
        f"This is the {code(name)} variant of {facts.spec.base_model} fine-tuned for {facts.task_kind}, exported "
        f"from the trained model{': it ' + said if said else ''}.",
    ]
    if variant.get("metrics"):
        lines[-1] += " The scores below are this variant's own, on the same test split as the original's."
    return [*lines, ""]


def results_section(facts: Facts) -> list[str]:
    """Headline scores on the test split beside the baseline, the comparison, per-class scores, warnings."""
    report, task = facts.report, facts.task
    scores, baseline = facts.scores, report.get("baseline") or {}
    original = report.get("metrics") or {}
    lines = ["## Results on the test split", ""]
    for warning in report.get("warnings") or []:  # first, where no reader can miss them
        lines += [f"> **Warning:** {flat(warning)}", ""]
    header = ["Metric", "This model"]
    header += ["Original model"] if facts.variant else []
    header += [f"Baseline: {cell(baseline.get('name', 'baseline'))}"] if baseline else []
    rows = []
    for key in own_metric_keys(scores):
        row = [metric_title(key), num(scores[key])]
        row += [_score(original.get(key))] if facts.variant else []
        row += [_score(baseline.get(key))] if baseline else []
        rows.append(row)
    lines += [*table(header, rows), ""] if rows else ["No test scores were recorded.", ""]
    lines += _comparison(facts, scores, baseline)
    if task.playground == "chat":
        lines += _chat_lines(report)
    return lines + per_class_table(facts)


def _score(value: Any) -> str:
    # A dash, not "n/a", where the other model has no such score: the table stays readable at a glance.
    return num(value) if number_of(value) is not None else "–"


def _comparison(facts: Facts, scores: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    task = facts.task
    metric, name = task.headline_metric, task.headline_name
    ours, theirs = number_of(scores.get(metric)), number_of(baseline.get(metric))
    direction = "higher" if task.greater_is_better else "lower"
    if ours is None or theirs is None:
        return [f"The headline metric is {name} ({direction} is better); no baseline was scored to compare with.", ""]
    gain = (ours - theirs) if task.greater_is_better else (theirs - ours)
    verdict = (
        f"{abs(gain):.3f} better"
        if round(gain, 3) > 0
        else "no better: fine-tuning bought nothing here"
        if round(gain, 3) == 0
        else f"{abs(gain):.3f} worse: prefer the baseline, or train again with another recipe"
    )
    return [
        f"Headline metric: {name} ({direction} is better). The baseline to beat "
        f"({baseline.get('name', 'baseline')}) scores {theirs:.3f} on the same test split; this model scores "
        f"{ours:.3f}, {verdict}.",
        "",
    ]


def _chat_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        "Perplexity measures how surprised the model is by the reference answers of held-out conversations (the loss "
        "is its logarithm, on the assistant's tokens only): lower means it answers more like them.",
        "",
    ]
    generations = [g for g in report.get("generations") or [] if isinstance(g, dict) and g.get("prompt")]
    if not generations:
        return lines
    first = generations[0]
    asked = next((m.get("content", "") for m in reversed(first["prompt"]) if m.get("role") == "user"), "")
    decoding = (report.get("generation") or {}).get("decoding")
    return [
        *lines,
        f"One held-out prompt and this model's answer{f' ({decoding})' if decoding else ''}; report.md shows "
        f"{len(generations)} beside the base model's and the reference answers:",
        "",
        f"> **User:** {short(asked, EXAMPLE_CHARS)}",
        ">",
        f"> **Model:** {short(first.get('fine_tuned', ''), EXAMPLE_CHARS)}",
        "",
    ]


def per_class_table(facts: Facts) -> list[str]:
    """Precision, recall, F1 and support per label (per entity type for a tagger), as the report has them."""
    per_class = facts.report.get("per_class") or {}
    if not per_class or (facts.variant and facts.variant.get("metrics")):
        return []  # a variant's card shows its own scores; per-class ones are the original's, in its card
    column = "Entity type" if facts.task.playground == "tag" else "Label"
    baseline_f1 = (facts.report.get("baseline") or {}).get("per_class_f1") or {}
    header = [column, "Precision", "Recall", "F1", "Support", *(["Baseline F1"] if baseline_f1 else [])]
    rows = []
    for name, row in per_class.items():
        cells = [cell(name), *(num(row.get(key)) for key in ("precision", "recall", "f1", "support"))]
        rows.append(cells + ([num(baseline_f1.get(name))] if baseline_f1 else []))
    support = "test texts" if facts.task.playground == "classify" else "entities in the test split"
    return [f"### Per {column.lower()}", "", *table(header, rows), "", f"Support: {support} of that kind.", ""]


def weak_classes(facts: Facts) -> list[str]:
    """Labels whose test F1 is well below the macro average or under 0.5; those with no test examples aside."""
    per_class = facts.report.get("per_class") or {}
    macro = number_of((facts.report.get("metrics") or {}).get("macro_f1"))
    weak = []
    for name, row in per_class.items():
        f1 = number_of(row.get("f1"))
        if f1 is None or not row.get("support"):
            continue
        if f1 < LOW_F1 or (macro is not None and f1 < macro - LOW_F1_MARGIN):
            weak.append(f"{code(name)} (F1 {f1:.2f})")
    return weak


def limitations_section(facts: Facts) -> list[str]:
    """Intended use, then what the data and the scores say it cannot be trusted with."""
    one, many = facts.units
    language = f"{facts.language_names} " if facts.language_names else ""
    n_train = facts.split_count("train")
    lines = [
        "## Intended use and limitations",
        "",
        f"Use it to {_PURPOSE.get(facts.task.playground, 'do what it was trained for')}, on {language}{many} like "
        "those it was trained on. Check it on your own data before relying on it.",
        "",
    ]
    trained = f"{n_train:,} {language}{many}" if n_train is not None else f"the {language}{many}"
    notes = [
        f"It learned from {trained} in {code(facts.file_name())} only; it has not been tested on other domains, "
        "sources or styles of text, where it may do much worse."
    ]
    notes += _language_notes(facts)
    notes += _test_size_notes(facts, one, many)
    weak = weak_classes(facts)
    if weak:
        notes.append(
            f"Weak {'entity types' if facts.task.playground == 'tag' else 'labels'} on the test split: "
            f"{', '.join(weak)}. More or cleaner training examples of these usually help."
        )
    untested = [code(name) for name, row in (facts.report.get("per_class") or {}).items() if not row.get("support")]
    if untested:
        notes.append(f"Not tested at all (no test examples): {', '.join(untested)}.")
    notes += _imbalance_notes(facts)
    notes += _truncation_notes(facts, many)
    closed = _CLOSED_SET.get(facts.task.playground)
    if closed:
        notes.append(closed.format(n=len(facts.report.get("labels") or [])))
    masked = masked_sentence(facts.data)
    if masked:  # the model learned placeholders where the texts had personal data; raw inputs are not masked
        notes.append(
            f"{masked} The model saw placeholders such as [EMAIL] there, not the originals; mask inputs the same way "
            "before predicting if they carry such data."
        )
    return [*lines, *(f"- {flat(note)}" for note in notes), ""]


def _language_notes(facts: Facts) -> list[str]:
    notes = []
    named = [name for _, name in facts.languages]
    if named:
        notes.append(
            f"The training data was in {' and '.join(named)}; text in other languages was never seen and "
            "will get unreliable results."
        )
    if facts.data.get("suggested_base_model"):
        notices = facts.data.get("notices") or []
        notes.append(f"The base model reads this data badly: {notices[0] if notices else 'see report.md'}.")
    return notes


def _test_size_notes(facts: Facts, one: str, many: str) -> list[str]:
    n_test = number_of(facts.report.get("n_test"))
    if n_test is None or n_test >= SMALL_TEST:
        return []
    if not n_test:
        return ["The test split is empty: the scores above measure nothing."]
    entities = ((facts.data.get("splits") or {}).get("test") or {}).get("entities")
    within = f", {entities:,} entities" if isinstance(entities, int) else ""
    if facts.task.playground == "chat":
        return [f"The test split is small ({int(n_test)} {many}): its perplexity is a rough estimate."]
    return [
        f"The test split is small ({int(n_test)} {many if n_test != 1 else one}{within}): a single {one} more or less "
        f"right moves a score by about {100 / n_test:.0f} points, so read the scores as rough."
    ]


def _imbalance_notes(facts: Facts) -> list[str]:
    split = (facts.data.get("splits") or {}).get("train") or {}
    counts = next((split[key] for key in _PER_LABEL_COUNTS if split.get(key)), None)
    if not isinstance(counts, dict) or len(counts) < 2:
        return []
    common = max(counts, key=counts.get)
    rare = [name for name, n in counts.items() if n and counts[common] >= IMBALANCE * n]
    if not rare:
        return []
    return [
        f"The training data is imbalanced: {code(common)} has {counts[common]:,} examples, "
        f"{', '.join(f'{code(name)} {counts[name]:,}' for name in rare)}; rarer ones are predicted less reliably."
    ]


def _truncation_notes(facts: Facts, many: str) -> list[str]:
    truncated = facts.data.get("truncated")
    if not isinstance(truncated, dict) or not truncated.get("count"):
        return []
    total = count_of(facts.data) or facts.data.get("conversations")
    of = f" of {total:,}" if isinstance(total, int) else ""
    limit = f"{truncated.get('max_length', facts.spec.params.max_length)} {truncated.get('unit', 'tokens')}"
    return [
        f"{truncated['count']:,}{of} {many} were longer than {limit} and lost their end in training; longer inputs "
        "are cut the same way when the model is used."
    ]


def evaluation_section(facts: Facts) -> list[str]:
    """Who measured the scores, on what, and where the full report is."""
    report = facts.report
    where = facts.model_dir.resolve().parent / "report.md"
    when = f" on {report['created_at']}" if report.get("created_at") else ""
    found = f"`{where}`, next to this folder" if where.is_file() else "report.md in the training job's output folder"
    holds = _REPORT_HOLDS.get(facts.task.playground, "every number")
    return [
        "## Evaluation",
        "",
        f"The scores were measured by Finetune Playground{when} on the {report.get('split', 'test')} split, which "
        f"played no part in training or in choosing the checkpoint. The full report ({holds}) is {found}; "
        "report.json beside it holds the same numbers, and spec.json the job that made the model (train it again "
        "from that).",
        "",
    ]


def license_section(facts: Facts) -> list[str]:
    """The base model's licence, which the fine-tuned weights inherit, and where it was read."""
    found = facts.license
    if found.license == "unknown":
        text = (
            f"Unknown: {found.source}. The fine-tuned weights fall under the base model's terms, so find out what "
            f"{facts.spec.base_model}'s licence is before sharing or deploying this model."
        )
    else:
        text = (
            f"`{found.license}`: the licence of the base model, {facts.base_model_id} (from {found.source}). The "
            "fine-tuned weights derive from it and come under the same terms."
        )
        if found.terms:
            text += f" Its use is under the {found.terms}."
    return ["## License", "", text, ""]
