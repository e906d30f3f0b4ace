"""Which scripts a data set is written in, how much of it a base model's vocabulary cannot read, and what fits better.

An English, uncased vocabulary maps most Chinese characters to [UNK]: a model fine-tuned on such data learns from
noise and predicts one class for everything. The data summary says so before training, with the model that fits.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

# Unicode name prefixes of the scripts worth telling apart; other letters count as "other".
_SCRIPT_PREFIXES = (
    ("CJK", "Han"),
    ("HIRAGANA", "Kana"),
    ("KATAKANA", "Kana"),
    ("HANGUL", "Hangul"),
    ("LATIN", "Latin"),
    ("CYRILLIC", "Cyrillic"),
    ("GREEK", "Greek"),
    ("ARABIC", "Arabic"),
    ("HEBREW", "Hebrew"),
    ("DEVANAGARI", "Devanagari"),
    ("THAI", "Thai"),
)
CJK_SCRIPTS = ("Han", "Kana", "Hangul")
MULTILINGUAL_MODEL = "gemma3-270m"
# Above this share of unknown tokens a model misses too much of the text to learn from it.
UNKNOWN_LIMIT = 0.05
# Texts sampled for the checks: enough for stable shares, few enough to stay instant.
SAMPLE_TEXTS = 500


def script_of(char: str) -> str | None:
    """The script of one letter ('Han', 'Latin', ...), 'other' for a letter of another script, None for no letter."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return next((script for prefix, script in _SCRIPT_PREFIXES if name.startswith(prefix)), "other")


# Without a tokenizer, lengths are estimated in tokens: the unit max_length is in, for every script.
ESTIMATED_TOKENS = "tokens (estimated)"
ESTIMATE_NOTICE = (
    "lengths are estimated in tokens (no tokenizer here: about one per Chinese, Japanese or Korean character and "
    "1.3 per word otherwise); the report counts them exactly"
)
# Subword tokens per space-separated word of English and similar text, as WordPiece and BPE vocabularies split it.
TOKENS_PER_WORD = 1.3
_CJK_CHAR = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u3000-\u303f\uff00-\uffef]"
)


def estimated_tokens(text: str) -> int:
    """About how many tokens a text makes, without a tokenizer: one per CJK character, 1.3 per other word."""
    cjk = len(_CJK_CHAR.findall(text))
    words = len(_CJK_CHAR.sub(" ", text).split())
    return cjk + math.ceil(TOKENS_PER_WORD * words)


def script_shares(texts: Iterable[str], sample: int = SAMPLE_TEXTS) -> dict[str, float]:
    """Share of the letters in each script, largest first (rounded to 3 places); empty when there are no letters."""
    counts: Counter[str] = Counter()
    for text in list(texts)[:sample]:
        counts.update(script for script in map(script_of, str(text)) if script is not None)
    total = sum(counts.values())
    return {script: round(n / total, 3) for script, n in counts.most_common()} if total else {}


def unknown_token_rate(tokenizer: Any, texts: Iterable[str], sample: int = SAMPLE_TEXTS) -> float | None:
    """Share of the tokens of `texts` that the tokenizer maps to its unknown token (None when it has none)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return None
    rows = tokenizer(list(texts)[:sample], add_special_tokens=False, verbose=False)["input_ids"]
    total = sum(len(row) for row in rows)
    return round(sum(row.count(unk) for row in rows) / total, 4) if total else 0.0


def cjk_share(scripts: dict[str, float]) -> float:
    """The share of letters in Chinese, Japanese or Korean script."""
    return sum(scripts.get(script, 0.0) for script in CJK_SCRIPTS)


def language_summary(texts: list[str], tokenizer: Any = None, base_model: str | None = None) -> dict[str, Any]:
    """The data summary's language section: scripts, and the base model's unknown-token rate when known."""
    scripts = script_shares(texts)
    section: dict[str, Any] = {"scripts": scripts, "cjk_share": round(cjk_share(scripts), 3)}
    if tokenizer is not None:
        section["unknown_token_rate"] = unknown_token_rate(tokenizer, texts)
        if base_model:
            section["base_model"] = base_model
    return section


def better_model(section: dict[str, Any], base_model: str, multilingual_tasks: Iterable[str], task: str) -> str | None:
    """The multilingual model when `base_model` reads this data badly (CJK text or many unknown tokens), else None."""
    if base_model == MULTILINGUAL_MODEL or task not in multilingual_tasks:
        return None
    unknown = section.get("unknown_token_rate")
    if (unknown is not None and unknown > UNKNOWN_LIMIT) or section.get("cjk_share", 0.0) >= 0.3:
        return MULTILINGUAL_MODEL
    return None


def advise(summary: dict[str, Any], task: str, base_model: str) -> str | None:
    """Put a 'pick another base model' notice first in a data summary when `base_model` reads the data badly.

    Returns the suggested model (also kept as summary["suggested_base_model"]), or None when the model fits.
    """
    from engine.catalog import CATALOG

    multilingual = CATALOG.get(MULTILINGUAL_MODEL)
    section = summary.get("language") or {}
    suggestion = better_model(section, base_model, multilingual.tasks if multilingual else (), task)
    if suggestion:
        summary["suggested_base_model"] = suggestion
        summary["notices"] = [language_notice(section, base_model, suggestion), *summary.get("notices", [])]
    return suggestion


def fitting_base_model(task: str, data: Any) -> tuple[str, str | None]:
    """The base model for a job that names none: the task's default, or the multilingual model the texts need.

    Returns the model and, when it is not the task's default, the sentence that says why.
    """
    from engine.tasks import get_task

    # No tokenizer: scripts decide, which is what tells CJK text apart.
    return fitting_for_language(task, get_task(task).inspect(data).get("language") or {})


def fitting_for_language(task: str, section: dict[str, Any]) -> tuple[str, str | None]:
    """fitting_base_model for a data summary's language section already at hand."""
    from engine.tasks import get_task

    info = get_task(task)
    summary: dict[str, Any] = {"language": section}
    suggestion = advise(summary, task, info.default_base_model)
    if suggestion is None:
        return info.default_base_model, None
    scripts = ", ".join(f"{s} {share:.0%}" for s, share in list(section.get("scripts", {}).items())[:3])
    return (
        suggestion,
        f"base model {suggestion} chosen for this data ({scripts}); {info.default_base_model} reads English",
    )


def model_warning(task: str, section: dict[str, Any], base_model: str) -> str | None:
    """The warning to show before training when `base_model` reads the texts of this language section badly."""
    summary: dict[str, Any] = {"language": section}
    return summary["notices"][0] if advise(summary, task, base_model) else None


def language_notice(section: dict[str, Any], base_model: str, suggestion: str) -> str:
    """The warning a person reads before training: what the model cannot read, and which model to pick instead."""
    scripts = ", ".join(f"{script} {share:.0%}" for script, share in list(section.get("scripts", {}).items())[:3])
    unknown = section.get("unknown_token_rate")
    missed = f"{unknown:.0%} of the tokens are unknown to {base_model}" if unknown else f"{base_model} is English"
    return (
        f"{missed} (the texts are {scripts}): it cannot read this data well and would learn little from it; "
        f"pick base model {suggestion} (multilingual) instead"
    )
