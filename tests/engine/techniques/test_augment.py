"""Offline augmentation on messy reviews: accents, Chinese, Japanese and Korean, one-word texts, imbalanced labels."""

from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter

import pytest

from engine.techniques import AugmentSpec
from engine.techniques.augment import Augmented, augment_texts, augmentation_summary

ALL = ("swap", "delete", "insert", "substitute")
GOOD, BAD, MIXED = 0, 1, 2
NAMES = ["good", "bad", "mixed"]

# Label 0 outnumbers label 1 three to one; label 2 has no text at all.
WORD_REVIEWS = [
    ("Le café était très bon, mais le service… lent. Nous reviendrons quand même, la terrasse est charmante !", GOOD),
    ("Absolutely delicious crêpes and a wonderful, friendly waiter (José) who recommended the crème brûlée.", GOOD),
    ("Great value for money: the naïve décor is charming and the soufflé arrived warm and fluffy!!", GOOD),
    ("Excellent!", GOOD),
    ("Das Frühstück war großartig und die Bedienung äußerst freundlich — gerne wieder.", GOOD),
    ("Cold soup, rude staff and a forty-minute wait … never again, avoid this place.", BAD),
    ("Terrible: overpriced, greasy fries and the manager shrugged when we complained.", BAD),
]
CHINESE_REVIEWS = [
    ("这家餐厅的菜很好吃，服务也很热情。", GOOD),
    ("环境优雅，价格实惠，我很喜欢这家店的iPhone套餐！", GOOD),
    ("味道鲜美，分量十足，下次还来。", GOOD),
    ("服务员态度恶劣，饭菜又冷又咸。", BAD),
]
PUNCTUATION = set("，。！；：、")


def texts_labels(rows: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [text for text, _ in rows], [label for _, label in rows]


def is_punctuation(unit: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in unit)


def core(word: str) -> str:
    """A word without the punctuation at its ends, as the vocabulary keeps it."""
    return re.sub(r"^\W+|\W+$", "", word) if not is_punctuation(word) else word


def editable_count(units: list[str]) -> int:
    return sum(1 for unit in units if not unit.isspace() and not is_punctuation(unit))


def edits_for(rate: float, units: list[str]) -> int:
    return max(1, round(rate * editable_count(units)))


def word_vocabulary(rows: list[tuple[str, int]], label: int) -> set[str]:
    return {core(word) for text, lab in rows if lab == label for word in text.split() if not is_punctuation(word)}


def han_characters(rows: list[tuple[str, int]], label: int) -> set[str]:
    return {c for text, lab in rows if lab == label for c in text if "\u4e00" <= c <= "\u9fff"}


def copies_of(augmented: Augmented, method: str) -> list[tuple[str, int, int]]:
    return [
        (text, source, label)
        for text, source, label, used in zip(
            augmented.texts, augmented.sources, augmented.labels, augmented.methods, strict=True
        )
        if used == method
    ]


def test_every_row_gets_its_copies_with_its_label_source_and_method_in_turn():
    rows = WORD_REVIEWS + CHINESE_REVIEWS
    texts, labels = texts_labels(rows)
    augmented = augment_texts(texts, labels, AugmentSpec(methods=ALL, copies=3, rate=0.15), seed=7)

    assert len(augmented.texts) == 3 * len(rows)
    assert Counter(augmented.sources) == {i: 3 for i in range(len(rows))}
    assert augmented.labels == [labels[source] for source in augmented.sources]
    assert augmented.unit == "mixed"
    one_word = texts.index("Excellent!")
    seen: Counter[int] = Counter()
    for text, source, method in zip(augmented.texts, augmented.sources, augmented.methods, strict=True):
        assert text.strip() and text != texts[source]
        if source != one_word:  # every edit works on a long text, so the methods take turns exactly
            assert method == ALL[(source + seen[source]) % len(ALL)]
        seen[source] += 1
    # Swap and delete cannot change one word: its copies come from the methods that can.
    assert {m for m, s in zip(augmented.methods, augmented.sources, strict=True) if s == one_word} <= {
        "insert",
        "substitute",
    }


def test_texts_that_no_edit_can_change_are_skipped_and_not_padded():
    texts = ["Excellent!", "", "   ", "!!! …", "a a", "Cold soup and a rude waiter"]
    labels = [GOOD, GOOD, BAD, BAD, BAD, BAD]
    augmented = augment_texts(texts, labels, AugmentSpec(methods=("swap", "delete"), copies=2, rate=0.2), seed=0)

    # One word: neither edit changes it. "a a": a swap changes nothing, a delete gives "a" once, a second "a" is a
    # repeat. Only the five-word review gets both its copies.
    assert Counter(augmented.sources) == {4: 1, 5: 2}
    assert augmented.texts[augmented.sources.index(4)] == "a"
    assert augmented.methods[augmented.sources.index(4)] == "delete"
    assert all(text.strip() for text in augmented.texts)


def test_chinese_is_edited_character_by_character_with_the_same_labels_characters():
    rows = CHINESE_REVIEWS
    texts, labels = texts_labels(rows)
    rate = 0.2
    augmented = augment_texts(texts, labels, AugmentSpec(methods=ALL, copies=4, rate=rate), seed=3)

    assert augmented.unit == "character"
    assert Counter(augmented.methods) == {method: len(rows) for method in ALL}
    assert han_characters(rows, BAD) - han_characters(rows, GOOD)  # the check below could catch a borrowed one
    for text, source in zip(augmented.texts, augmented.sources, strict=True):
        assert " " not in text
        assert [c for c in text if c in PUNCTUATION] == [c for c in texts[source] if c in PUNCTUATION]
    for text, source, _ in copies_of(augmented, "swap"):
        assert Counter(text) == Counter(texts[source])
        assert [i for i, c in enumerate(texts[source]) if c in PUNCTUATION] == [
            i for i, c in enumerate(text) if c in PUNCTUATION
        ]
    for text, source, _ in copies_of(augmented, "delete"):
        assert Counter(text) < Counter(texts[source])
    for text, source, label in copies_of(augmented, "insert"):
        before = texts[source]
        assert len(text) == len(before) + edits_for(rate, list(before))
        assert set((Counter(text) - Counter(before)).elements()) <= han_characters(rows, label)
    for text, source, label in copies_of(augmented, "substitute"):
        before = texts[source]
        assert len(text) == len(before)
        changed = [(old, new) for old, new in zip(before, text, strict=True) if old != new]
        assert 1 <= len(changed) <= edits_for(rate, list(before))
        assert all(old not in PUNCTUATION and new in han_characters(rows, label) for old, new in changed)


def test_a_latin_word_inside_chinese_is_cut_into_letters_but_never_brought_in():
    texts = ["我很喜欢这家店的iPhone套餐", "这家店的套餐很好"]
    augmented = augment_texts(texts, [GOOD, GOOD], AugmentSpec(methods=("insert",), copies=5, rate=0.5), seed=1)

    assert augmented.unit == "character"
    assert len(augmented.texts) == 10
    for text, source in zip(augmented.texts, augmented.sources, strict=True):
        assert " " not in text
        assert set((Counter(text) - Counter(texts[source])).elements()) <= set("我很喜欢这家店的套餐好")


def test_japanese_and_korean_are_cut_into_characters_and_keep_their_own_writing():
    texts = ["このラーメンはとても美味しいです。", "정말 맛있어요 최고", "这家餐厅的菜很好吃，服务也很热情。"]
    augmented = augment_texts(texts, [GOOD] * 3, AugmentSpec(methods=("insert",), copies=3, rate=0.3), seed=5)

    assert augmented.unit == "character"
    assert Counter(augmented.sources) == {0: 3, 1: 3, 2: 3}
    for text, source in zip(augmented.texts, augmented.sources, strict=True):
        added = set((Counter(text) - Counter(texts[source])).elements())
        assert added <= set(texts[source].replace(" ", "")) - set("。，")  # the label's only text in that writing
        assert text.count(" ") == texts[source].count(" ")  # Korean keeps its spaces, nobody gains any


def test_words_brought_in_come_from_texts_of_the_same_label():
    rows = WORD_REVIEWS
    texts, labels = texts_labels(rows)
    rate = 0.2
    augmented = augment_texts(
        texts, labels, AugmentSpec(methods=("insert", "substitute"), copies=4, rate=rate), seed=11
    )

    assert augmented.unit == "word"
    assert len(augmented.texts) == 4 * len(rows)
    good, bad = word_vocabulary(rows, GOOD), word_vocabulary(rows, BAD)
    assert {"greasy", "rude", "Terrible"} <= bad - good and {"delicious", "crêpes"} <= good - bad
    vocabulary = {GOOD: good, BAD: bad}
    for text, source, label in copies_of(augmented, "insert"):
        before = texts[source].split()
        assert len(text.split()) == len(before) + edits_for(rate, before)
        assert set((Counter(text.split()) - Counter(before)).elements()) <= vocabulary[label]
    for text, source, label in copies_of(augmented, "substitute"):
        before = texts[source].split()
        changed = [(old, new) for old, new in zip(before, text.split(), strict=True) if old != new]
        assert 1 <= len(changed) <= edits_for(rate, before)
        for old, new in changed:
            assert not is_punctuation(old)
            assert core(new) in vocabulary[label] and core(new) != core(old)
            # The replaced word's punctuation stays: "bon," becomes "<word>,".
            assert new.removeprefix(new.rstrip("!,.:…)")) == old.removeprefix(old.rstrip("!,.:…)"))


def test_swap_and_delete_move_words_and_leave_punctuation_where_it_was():
    rows = WORD_REVIEWS
    texts, labels = texts_labels(rows)
    rate = 0.1
    augmented = augment_texts(texts, labels, AugmentSpec(methods=("swap", "delete"), copies=2, rate=rate), seed=2)

    # "Excellent!" is one word: neither edit can change it.
    assert Counter(augmented.sources) == {i: 2 for i, text in enumerate(texts) if text != "Excellent!"}
    for text, source, _ in copies_of(augmented, "swap"):
        before, after = texts[source].split(), text.split()
        assert Counter(after) == Counter(before)
        moved = sum(old != new for old, new in zip(before, after, strict=True))
        assert 2 <= moved <= 2 * edits_for(rate, before)
        assert [i for i, w in enumerate(after) if is_punctuation(w)] == [
            i for i, w in enumerate(before) if is_punctuation(w)
        ]
    for text, source, _ in copies_of(augmented, "delete"):
        before, after = texts[source].split(), text.split()
        assert Counter(after) < Counter(before)
        assert [w for w in after if is_punctuation(w)] == [w for w in before if is_punctuation(w)]


def test_the_same_seed_gives_the_same_copies_and_another_seed_others():
    texts, labels = texts_labels(WORD_REVIEWS + CHINESE_REVIEWS)
    spec = AugmentSpec(methods=ALL, copies=2, rate=0.2)

    first = augment_texts(texts, labels, spec, seed=42)
    assert augment_texts(texts, labels, spec, seed=42) == first
    other = augment_texts(texts, labels, spec, seed=43)
    assert other.sources == first.sources and other.methods == first.methods
    assert sum(a != b for a, b in zip(first.texts, other.texts, strict=True)) >= len(first.texts) // 2


def test_texts_and_labels_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        augment_texts(["a b", "c d", "e f"], [0, 1], AugmentSpec(), seed=0)


def test_the_summary_counts_per_label_and_shows_each_method_first():
    rows = WORD_REVIEWS + CHINESE_REVIEWS
    texts, labels = texts_labels(rows)
    spec = AugmentSpec(methods=ALL, copies=2, rate=0.1)
    augmented = augment_texts(texts, labels, spec, seed=0)
    summary = augmentation_summary(texts, augmented, spec, NAMES)

    good, bad = labels.count(GOOD), labels.count(BAD)
    assert {key: summary[key] for key in ("methods", "copies", "rate", "unit", "original", "added")} == {
        "methods": list(ALL),
        "copies": 2,
        "rate": 0.1,
        "unit": "mixed",
        "original": 11,
        "added": 22,
    }
    assert summary["added_per_label"] == {"good": 2 * good, "bad": 2 * bad, "mixed": 0}
    examples = summary["examples"]
    assert [example["method"] for example in examples[:4]] == list(ALL)
    assert len(examples) == 5
    for example in examples:
        source = next(s for t, s in zip(augmented.texts, augmented.sources, strict=True) if t == example["after"])
        assert example["before"] == texts[source]
        assert example["label"] == NAMES[labels[source]]
    assert [e["method"] for e in augmentation_summary(texts, augmented, spec, NAMES, examples=2)["examples"]] == [
        "swap",
        "delete",
    ]


def test_the_summary_cuts_long_texts_and_shows_only_the_methods_used():
    long = " ".join(f"word{i}" for i in range(100))
    texts = [long, "Excellent!"]
    spec = AugmentSpec(methods=("swap", "delete", "substitute"), copies=1, rate=0.1)
    augmented = augment_texts(texts, [GOOD, BAD], spec, seed=0)
    summary = augmentation_summary(texts, augmented, spec, NAMES, examples=5)

    # Row 0 swaps; row 1 (one word) would delete, falls back to substitute, but its label has no other word.
    assert augmented.sources == [0] and augmented.methods == ["swap"]
    assert summary["added"] == 1 and summary["added_per_label"] == {"good": 1, "bad": 0, "mixed": 0}
    (example,) = summary["examples"]
    assert example["method"] == "swap"
    assert len(example["before"]) == 300 and example["before"] == long[:299] + "…"
    assert len(example["after"]) == 300 and example["after"].endswith("…")


def test_ten_thousand_texts_are_augmented_in_seconds():
    base = [text for text, _ in WORD_REVIEWS + CHINESE_REVIEWS]
    texts = [f"{base[i % len(base)]} {i}" for i in range(10_000)]
    labels = [i % 3 for i in range(10_000)]
    start = time.perf_counter()
    augmented = augment_texts(texts, labels, AugmentSpec(methods=ALL, copies=2, rate=0.1), seed=0)
    elapsed = time.perf_counter() - start

    assert len(augmented.texts) == 20_000
    assert elapsed < 5, f"took {elapsed:.1f}s"
