"""What a report must say first: a model that collapsed to one answer, or that lost to its baseline, with the
likely cause and what to try. Every task's report, the Jobs tab and the Playground show these sentences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

# A model that gives one answer to this share of the test items, when far fewer really have it, has collapsed.
COLLAPSE_SHARE = 0.9
# ...unless that answer really is this common: then predicting it is no collapse.
TRUE_SHARE_LIMIT = 0.75
# A tagger that finds under this share of the gold entities has collapsed to tagging (nearly) everything O.
FOUND_ENTITY_SHARE = 0.1
# A score this far below the baseline's is a loss, not a tie.
TIE = 0.005


def likely_cause(data_summary: dict | None) -> str:
    """The likely reason a model learned little: a base model that cannot read the texts, or the training knobs."""
    summary = data_summary or {}
    language = summary.get("language") or {}
    unknown = language.get("unknown_token_rate")
    suggestion = summary.get("suggested_base_model")
    if suggestion or (unknown is not None and unknown > 0.05):
        unread = f"{unknown:.0%} of the tokens are unknown to the base model" if unknown else "an English base model"
        return f"Likely cause: {unread}; fine-tune {suggestion or 'a multilingual model'} instead."
    return (
        "Likely causes: too few epochs, a learning rate too high or too low, or too few examples of the other "
        "labels; try more epochs or a learning rate 2-5 times lower (the Best quality preset searches the rate "
        "and stops early), and check the label counts."
    )


def one_answer_warning(predicted: Sequence[str], true: Sequence[str], cause: str, *, unit: str) -> str | None:
    """A warning when (nearly) every prediction is the same answer though far fewer test items have it."""
    n = len(predicted)
    if n < 10:
        return None
    top, count = Counter(predicted).most_common(1)[0]
    really = sum(1 for answer in true if answer == top) / n
    if count / n < COLLAPSE_SHARE or really >= TRUE_SHARE_LIMIT:
        return None
    return (
        f"The model predicts '{top}' for {count / n:.0%} of the test {unit}, though only {really:.0%} really are: "
        f"it has collapsed to (nearly) one class. {cause}"
    )


def no_entities_warning(found: int, gold: int, cause: str) -> str | None:
    """A warning when a tagger finds (nearly) none of the entities in the test sentences."""
    if gold < 5 or found >= FOUND_ENTITY_SHARE * gold:
        return None
    return (
        f"The model marks {found} entities in the test sentences, which hold {gold}: it has collapsed to tagging "
        f"(nearly) every token O. {cause}"
    )


def below_baseline_warning(
    ours: float | None, baseline: dict | None, metric: str, title: str, cause: str
) -> str | None:
    """A warning when the fine-tuned model scores below the baseline fitted on the same split."""
    theirs = (baseline or {}).get(metric)
    if ours is None or theirs is None or ours >= theirs - TIE:
        return None
    return (
        f"The fine-tuned model scores below the {baseline.get('name', 'baseline')} baseline on this split "
        f"({title} {ours:.3f} vs {theirs:.3f}). {cause}"
    )


def present(*warnings: str | None) -> list[str]:
    """The warnings that apply, in order."""
    return [warning for warning in warnings if warning]
