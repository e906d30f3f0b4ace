"""Offline augmentation of a training split: edited copies of each labeled text, made without network or model.

A text written mostly in Chinese, Japanese or Korean is edited character by character (it has no spaces to cut words
on), any other text word by word. Words and characters that an edit brings in come from texts of the same label, so a
copy keeps saying what its label says instead of borrowing the other labels' words.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import Any

from engine.techniques import AugmentSpec

# Han, kana and Hangul letters; their punctuation (、。「」・) is left out so that it does not count as writing.
_CJK_LETTER = re.compile(
    "[\u1100-\u11ff\u3005\u3007\u3041-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f]"
)
_KANA = re.compile("[\u3041-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
WORD = "word"
# Above this share of CJK letters among the non-space characters a text is cut into characters.
CJK_SHARE = 0.3
# Texts in the summary are cut to this many characters, the last being "…".
EXAMPLE_CHARS = 300
# Draws before giving up on a replacement that differs from the unit it replaces.
_DRAWS = 8


@dataclass
class Augmented:
    """The augmented copies of a split's texts: new texts, their labels, the edit that made each, its source row."""

    texts: list[str]
    labels: list[int]
    methods: list[str]
    sources: list[int]  # index into the original texts
    unit: str  # "word", "character" or "mixed": how the texts were cut into units


@dataclass
class _Vocabulary:
    """The units one label's texts use, to draw from in proportion to how often they occur."""

    units: list[str]
    cum_weights: list[int]

    def draw(self, rng: random.Random, avoid: str | None = None) -> str | None:
        """A unit other than `avoid` where the label has one; None where it has none."""
        if not self.units:
            return None
        for _ in range(_DRAWS):
            unit = rng.choices(self.units, cum_weights=self.cum_weights)[0]
            if unit != avoid:
                return unit
        # Only a label whose texts nearly all repeat one unit lands here; look at the others directly.
        others = [unit for unit in self.units if unit != avoid]
        return rng.choice(others) if others else None


_NO_VOCABULARY = _Vocabulary([], [])


@dataclass
class _Row:
    """One text cut into units, where edits may land in it, and what its label's vocabulary offers."""

    units: list[str]
    editable: list[int]
    script: str  # WORD, or the writing whose characters the units are
    vocabulary: _Vocabulary


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _is_editable(unit: str) -> bool:
    # Spaces and punctuation carry the text's shape, not its meaning: moving "," or "。" only makes noise.
    return not unit.isspace() and not all(map(_is_punctuation, unit))


def _cut(text: str) -> tuple[list[str], str]:
    """The text's units and what they are: 'word', or the characters of 'zh', 'ja' or 'ko' writing."""
    cjk = _CJK_LETTER.findall(text)
    if not cjk or len(cjk) <= CJK_SHARE * (len(text) - sum(map(str.isspace, text))):
        return text.split(), WORD
    kana = sum(1 for char in cjk if _KANA.match(char))
    hangul = sum(1 for char in cjk if _HANGUL.match(char))
    # Japanese writes Han between its kana, so any kana tells it; Korean writes mostly Hangul.
    script = "ko" if hangul > len(cjk) / 2 else "ja" if kana else "zh"
    return list(text), script


def _edges(word: str) -> tuple[str, str, str]:
    """A word split into its leading punctuation, its core and its trailing punctuation: '(très' -> '(', 'très', ''."""
    start, end = 0, len(word)
    while start < end and _is_punctuation(word[start]):
        start += 1
    while end > start and _is_punctuation(word[end - 1]):
        end -= 1
    return word[:start], word[start:end], word[end:]


def _vocabularies(cuts: Sequence[tuple[list[str], str]], labels: Sequence[int]) -> dict[tuple[int, str], _Vocabulary]:
    """Per label and writing, the units its texts use: word cores with a letter, or CJK letters."""
    counts: dict[tuple[int, str], Counter[str]] = {}
    cores: dict[str, str | None] = {}  # the same words recur across texts: strip each once
    for (units, script), label in zip(cuts, labels, strict=True):
        # Kept apart per writing: a Hangul syllable dropped into a Chinese sentence is noise, not a paraphrase.
        counter = counts.setdefault((label, script), Counter())
        if script != WORD:
            # Only CJK letters: a Latin letter or a digit dropped between Chinese characters is noise too.
            counter.update(unit for unit in units if unit.isalpha() and _CJK_LETTER.match(unit))
            continue
        for unit in units:
            if unit not in cores:
                core = _edges(unit)[1]
                cores[unit] = core if any(map(str.isalpha, core)) else None
            if (core := cores[unit]) is not None:
                counter[core] += 1
    return {key: _Vocabulary(list(counter), list(accumulate(counter.values()))) for key, counter in counts.items()}


def _how_many(rate: float, row: _Row) -> int:
    return max(1, round(rate * len(row.editable)))


def _swap(row: _Row, rate: float, rng: random.Random) -> list[str]:
    if len(row.editable) < 2:
        return row.units
    units = row.units.copy()
    # Distinct units for every pair, so that a later swap cannot undo an earlier one.
    picked = rng.sample(row.editable, 2 * min(_how_many(rate, row), len(row.editable) // 2))
    for i, j in zip(picked[::2], picked[1::2], strict=True):
        units[i], units[j] = units[j], units[i]
    return units


def _delete(row: _Row, rate: float, rng: random.Random) -> list[str]:
    if not row.editable:
        return row.units
    gone = {i for i in row.editable if rng.random() < rate}
    if len(gone) == len(row.editable):
        gone.discard(rng.choice(row.editable))  # a copy with nothing left to read teaches nothing
    elif not gone and len(row.editable) >= 2:
        gone.add(rng.choice(row.editable))
    return [unit for i, unit in enumerate(row.units) if i not in gone]


def _insert(row: _Row, rate: float, rng: random.Random) -> list[str]:
    units = row.units.copy()
    for _ in range(_how_many(rate, row)):
        unit = row.vocabulary.draw(rng)
        if unit is None:
            return row.units
        units.insert(rng.randint(0, len(units)), unit)
    return units


def _substitute(row: _Row, rate: float, rng: random.Random) -> list[str]:
    units = row.units.copy()
    for i in rng.sample(row.editable, min(_how_many(rate, row), len(row.editable))):
        # A word keeps its punctuation ("bon," -> "lent,") so that the sentence keeps its shape.
        head, core, tail = _edges(units[i]) if row.script == WORD else ("", units[i], "")
        new = row.vocabulary.draw(rng, avoid=core)
        if new is not None:
            units[i] = head + new + tail
    return units


_EDITS: dict[str, Callable[[_Row, float, random.Random], list[str]]] = {
    "swap": _swap,
    "delete": _delete,
    "insert": _insert,
    "substitute": _substitute,
}


def _unit_name(cuts: Sequence[tuple[list[str], str]]) -> str:
    words = {script == WORD for _, script in cuts}
    if words == {False}:
        return "character"
    return "mixed" if False in words else "word"


def augment_texts(texts: list[str], labels: list[int], spec: AugmentSpec, *, seed: int) -> Augmented:
    """`spec.copies` edited copies of each text, labels kept; never the original itself, never an empty text."""
    if len(texts) != len(labels):
        raise ValueError(f"augment: {len(texts)} texts but {len(labels)} labels; give one label per text")
    rng = random.Random(seed)
    cuts = [_cut(str(text)) for text in texts]
    vocabularies = _vocabularies(cuts, labels)
    methods = spec.methods
    augmented = Augmented(texts=[], labels=[], methods=[], sources=[], unit=_unit_name(cuts))
    for index, ((units, script), label) in enumerate(zip(cuts, labels, strict=True)):
        editable = [i for i, unit in enumerate(units) if _is_editable(unit)]
        if not editable:
            continue  # empty or only punctuation: no copy of it would say anything
        row = _Row(units, editable, script, vocabularies.get((label, script), _NO_VOCABULARY))
        seen = {tuple(units)}  # a copy repeating the source or an earlier copy only weighs that text more
        for copy in range(spec.copies):
            # Cycling with row and copy uses every method as often, even with one copy per row.
            first = (index + copy) % len(methods)
            for step in range(len(methods)):
                method = methods[(first + step) % len(methods)]
                edited = _EDITS[method](row, spec.rate, rng)
                text = (" " if script == WORD else "").join(edited)
                if tuple(edited) not in seen and text.strip():
                    seen.add(tuple(edited))
                    augmented.texts.append(text)
                    augmented.labels.append(label)
                    augmented.methods.append(method)
                    augmented.sources.append(index)
                    break
    return augmented


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def _example_rows(augmented: Augmented, methods: Sequence[str], examples: int) -> list[int]:
    """Which copies to show: the first of each method used, in the spec's order, then the next ones in order."""
    first: dict[str, int] = {}
    for i, method in enumerate(augmented.methods):
        first.setdefault(method, i)
    chosen = [first[method] for method in dict.fromkeys(methods) if method in first][:examples]
    taken = set(chosen)
    rest = (i for i in range(len(augmented.texts)) if i not in taken)
    chosen.extend(islice(rest, max(examples - len(chosen), 0)))
    return chosen


def augmentation_summary(
    texts: list[str], augmented: Augmented, spec: AugmentSpec, label_names: list[str], examples: int = 5
) -> dict[str, Any]:
    """What the data summary shows: counts (original, added, per label added) and a few before/after pairs."""

    def name(label: int) -> str:
        if not 0 <= label < len(label_names):
            raise ValueError(f"augment: label {label} has no name; label names are {label_names}")
        return label_names[label]

    per_label = dict.fromkeys(label_names, 0)
    for label in augmented.labels:
        per_label[name(label)] += 1
    pairs = [
        {
            "method": augmented.methods[i],
            "label": name(augmented.labels[i]),
            "before": _clip(texts[augmented.sources[i]]),
            "after": _clip(augmented.texts[i]),
        }
        for i in _example_rows(augmented, spec.methods, max(examples, 0))
    ]
    return {
        "methods": list(spec.methods),
        "copies": spec.copies,
        "rate": spec.rate,
        "unit": augmented.unit,
        "original": len(texts),
        "added": len(augmented.texts),
        "added_per_label": per_label,
        "examples": pairs,
    }
