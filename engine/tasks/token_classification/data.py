"""Load tagged tokens for named-entity recognition (CoNLL or JSON/JSONL): read, normalise tags, split, summarise."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from engine.errors import DataError
from engine.language import language_summary
from engine.masking import mask_tagged, record_masking
from engine.paths import max_upload_bytes
from engine.spec import DataSpec
from engine.splits import length_stats, stratified_split
from engine.tasks.token_classification.files import TaggedFile, read_conll, read_tagged_file
from engine.tasks.token_classification.tags import detect_scheme, normalize_tags

__all__ = [
    "TokenClassificationData",
    "detect_scheme",
    "inspect_token_data",
    "load_token_classification_data",
    "normalize_tags",
    "read_conll",
]

RARE_ENTITIES = 10
_SPLITS = ("train", "validation", "test")
_NO_ENTITY, _POOLED = "\x00none", "\x00pooled"  # split-stratification keys that no entity type can equal


@dataclass
class TokenClassificationData:
    """Train/validation/test datasets with columns "tokens" and "tags" (ids into `labels`), plus the summary."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    labels: list[str]
    entity_types: list[str]
    summary: dict


@dataclass
class _Tagged:
    """One file cleaned and normalised to IOB2."""

    file: TaggedFile
    tokens: list[list[str]]
    tags: list[list[str]]
    scheme: str
    changes: Counter
    blank_tokens: int
    empty_sentences: int


def _normalise(file: TaggedFile) -> _Tagged:
    tokens, tags, blank, empty = [], [], 0, 0
    for sentence_tokens, sentence_tags in zip(file.tokens, file.tags, strict=True):
        # Blank tokens vanish in the tokenizer, leaving their tag with no sub-token to sit on.
        kept = [(t, g) for t, g in zip(sentence_tokens, sentence_tags, strict=True) if t.strip()]
        blank += len(sentence_tokens) - len(kept)
        if not kept:
            empty += 1
            continue
        tokens.append([t for t, _ in kept])
        tags.append([g for _, g in kept])
    scheme = detect_scheme(tags)
    changes: Counter = Counter()
    for i, sentence_tags in enumerate(tags):
        tags[i], counts = normalize_tags(sentence_tags, scheme=scheme)
        changes += counts
    return _Tagged(file, tokens, tags, scheme, changes, blank, empty)


def _entities(tags: list[list[str]]) -> Counter:
    return Counter(tag[2:] for sentence in tags for tag in sentence if tag.startswith("B-"))


def _check_training_tags(train: _Tagged) -> None:
    name, column = train.file.path.name, train.file.columns[1]
    if not train.tokens:
        raise DataError(f"{name} has no sentences left once blank tokens are dropped; add tagged sentences")
    distinct = {tag for sentence in train.file.tags for tag in sentence}  # as written, before IOB1 conversion
    if len(distinct) == 1 and distinct != {"O"}:
        raise DataError(
            f"{name}: every token is tagged {distinct.pop()!r}, so there is nothing to tell apart; check the tag "
            f"column (tags_column, now '{column}') and that non-entity tokens are tagged 'O'"
        )
    if not _entities(train.tags):
        raise DataError(
            f"{name} has no entities: every token is tagged 'O'; a model needs examples of entities such as "
            f"B-PER/I-PER to learn from. Check the tag column (tags_column, now '{column}')"
        )


def _split_keys(tags: list[list[str]], min_group: int) -> list[str]:
    """Stratify by each sentence's rarest entity type (or none), so rare types reach every split."""
    counts = _entities(tags)
    keys = []
    for sentence in tags:
        types = {tag[2:] for tag in sentence if tag.startswith("B-")}
        keys.append(min(types, key=lambda t: (counts[t], t)) if types else _NO_ENTITY)
    sizes = Counter(keys)
    # Groups too small to give each split its share are pooled, so a rare type cannot block or skew the split.
    small = {key for key, n in sizes.items() if n < min_group}
    if small:
        pooled = sum(sizes[key] for key in small)
        big = [key for key in sizes if key not in small]
        target = _POOLED if pooled >= min_group or not big else max(big, key=lambda k: (sizes[k], k))
        keys = [target if key in small else key for key in keys]
    return keys


def _lengths(tokens: list[list[str]], tokenizer: Any, level: str) -> tuple[list[int], str]:
    if tokenizer is None:
        return [len(sentence) for sentence in tokens], "characters" if level == "character" else "words"
    lengths: list[int] = []
    for start in range(0, len(tokens), 1000):
        batch = tokens[start : start + 1000]
        ids = tokenizer(batch, is_split_into_words=True, add_special_tokens=True, verbose=False)["input_ids"]
        lengths.extend(len(row) for row in ids)
    return lengths, "tokens"


def _dataset(tokens: list[list[str]], tags: list[list[str]], labels: list[str]) -> datasets.Dataset:
    ids = {name: i for i, name in enumerate(labels)}
    features = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "tags": datasets.List(datasets.ClassLabel(names=labels)),
        }
    )
    return datasets.Dataset.from_dict(
        {"tokens": tokens, "tags": [[ids[t] for t in sentence] for sentence in tags]}, features=features
    )


def _split_counts(tokens: list[list[str]], tags: list[list[str]], types: list[str], source: str) -> dict:
    entities = _entities(tags)
    return {
        "sentences": len(tokens),
        "tokens": sum(len(s) for s in tokens),
        "entities": sum(entities.values()),
        "entities_per_type": {t: entities.get(t, 0) for t in types},
        "source": source,
    }


def load_token_classification_data(
    data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42, max_bytes: int | None = None
) -> TokenClassificationData:
    """Read, normalise to IOB2, check and split the tagged files of `data`; summarise what training will see."""
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    tagged = {"train": _normalise(read_tagged_file(data.train, data, limit))}
    for split in ("validation", "test"):
        if getattr(data, split):
            tagged[split] = _normalise(read_tagged_file(getattr(data, split), data, limit))
    # Masked at the token level, tags kept aligned, before the checks and the split see the tokens.
    masked = {s: mask_tagged(found.tokens, found.tags, data.mask_personal_data) for s, found in tagged.items()}
    _check_training_tags(tagged["train"])
    types = _entity_types(tagged)
    labels = ["O", *(f"{prefix}-{t}" for t in types for prefix in ("B", "I"))]
    parts, origin = _split_parts(tagged, data, seed)
    summary = _summary(tagged, parts, labels, types, tokenizer=tokenizer, max_length=max_length, seed=seed)
    per_split = {s: [masked[source][i] for i in rows] for s, (source, rows) in origin.items()}
    record_masking(summary, data.mask_personal_data, per_split)
    return TokenClassificationData(
        train=_dataset(*parts["train"], labels),
        validation=_dataset(*parts["validation"], labels),
        test=_dataset(*parts["test"], labels),
        labels=labels,
        entity_types=types,
        summary=summary,
    )


def _entity_types(tagged: dict[str, _Tagged]) -> list[str]:
    """The training file's entity types; a type only a validation or test file has cannot be learned."""
    train = tagged["train"]
    types = sorted(_entities(train.tags))
    for split, found in tagged.items():
        unseen = sorted(set(_entities(found.tags)) - set(types))
        if unseen:
            raise DataError(
                f"entity type(s) {unseen[:10]} appear in the {split} file {found.file.path.name} but not in the "
                f"training file {train.file.path.name}; a model cannot learn them; add training examples or remove "
                "those entities"
            )
    return types


Parts = dict[str, tuple[list[list[str]], list[list[str]]]]


def _split_parts(
    tagged: dict[str, _Tagged], data: DataSpec, seed: int
) -> tuple[Parts, dict[str, tuple[str, list[int]]]]:
    """(tokens, tags) per split: given files as they are, missing splits held out of the training file; and per
    split the file it came from and its sentences' places there."""
    train = tagged["train"]
    held_out = {s: getattr(data, f"{s}_fraction") for s in ("validation", "test") if s not in tagged}
    need = 1 + len(held_out)
    if len(train.tokens) < need:
        splits = " and ".join(["training", *held_out])
        raise DataError(
            f"too few sentences to split: {train.file.path.name} has {len(train.tokens)}, at least {need} are "
            f"needed (one each for {splits}); add sentences or supply separate validation and test files"
        )
    min_group = max(need, math.ceil(1 / min(held_out.values()))) if held_out else 1
    indices = stratified_split(_split_keys(train.tags, min_group), held_out, seed)
    parts = {s: ([train.tokens[i] for i in idx], [train.tags[i] for i in idx]) for s, idx in indices.items()}
    parts.update({s: (found.tokens, found.tags) for s, found in tagged.items() if s != "train"})
    origin = {s: ("train", list(idx)) for s, idx in indices.items()}
    origin.update({s: (s, list(range(len(found.tokens)))) for s, found in tagged.items() if s != "train"})
    return parts, origin


def _summary(
    tagged: dict[str, _Tagged],
    parts: Parts,
    labels: list[str],
    types: list[str],
    *,
    tokenizer: Any,
    max_length: int,
    seed: int,
) -> dict:
    """What training will see: files, entities per type, splits, tag scheme and repairs, lengths, duplicates."""
    train = tagged["train"]
    all_tokens = [sentence for s in _SPLITS for sentence in parts[s][0]]
    all_tags = [sentence for s in _SPLITS for sentence in parts[s][1]]
    words = [token for sentence in all_tokens for token in sentence]
    # Character-level data (Chinese, Japanese) must be split into characters again at prediction time.
    level = "character" if sum(len(w) == 1 for w in words) >= 0.95 * len(words) else "word"
    lengths, unit = _lengths(all_tokens, tokenizer, level)
    entities = _entities(all_tags)
    schemes = {found.scheme for found in tagged.values()}
    split_source = "split from the training file, stratified by each sentence's rarest entity type"
    summary = {
        "files": [_file_summary(split, found) for split, found in tagged.items()],
        "tokens_column": train.file.columns[0],
        "tags_column": train.file.columns[1],
        "labels": labels,
        "entity_types": types,
        "token_level": level,
        "sentences": len(all_tokens),
        "tokens": len(words),
        "entities": sum(entities.values()),
        "entities_per_type": {t: entities.get(t, 0) for t in types},
        "sentences_with_entities": sum(any(tag != "O" for tag in s) for s in all_tags),
        "splits": {s: _split_counts(*parts[s], types, "file" if s in tagged else split_source) for s in _SPLITS},
        "tag_scheme": {
            "detected": schemes.pop()
            if len(schemes) == 1
            else ", ".join(f"{f.scheme} ({s})" for s, f in tagged.items()),
            "converted_tags": sum(f.changes["iob1_to_iob2"] + f.changes["bioes_to_iob2"] for f in tagged.values()),
        },
        "repairs": {kind: sum(f.changes[kind] for f in tagged.values()) for kind in ("i_without_b", "type_switch")},
        "length_tokens": length_stats(lengths, unit),
        "truncated": {"count": sum(n > max_length for n in lengths), "max_length": max_length, "unit": unit},
        "dropped": {
            "empty_sentences": sum(f.empty_sentences for f in tagged.values()),
            "blank_tokens": sum(f.blank_tokens for f in tagged.values()),
        },
        "duplicates": _duplicates(parts),
        "seed": seed,
        "language": language_summary([("" if level == "character" else " ").join(s) for s in all_tokens], tokenizer),
    }
    notices = [notice for found in tagged.values() for notice in found.file.notices]
    summary["notices"] = notices + _summary_notices(summary, tagged)
    return summary


def _file_summary(split: str, found: _Tagged) -> dict:
    return {
        "split": split,
        "path": str(found.file.path),
        "format": found.file.format,
        "encoding": found.file.encoding,
        "tag_scheme": found.scheme,
        "sentences_read": len(found.file.tokens),
        "sentences_kept": len(found.tokens),
        "tokens": sum(len(s) for s in found.tokens),
    }


def inspect_token_data(data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42) -> dict:
    """The validation summary shown before training: counts, entities, tag repairs, lengths, splits, notices."""
    return load_token_classification_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed).summary


def load_tagged_file(
    path: str, *, format: str | None = None, tokens_column: str | None = None, tags_column: str | None = None
) -> tuple[list[list[str]], list[list[str]], dict]:
    """One tagged file, cleaned and normalised to IOB2 like training data: tokens, tags and a short summary."""
    spec = DataSpec(train=path, format=format, tokens_column=tokens_column, tags_column=tags_column)
    tagged = _normalise(read_tagged_file(path, spec, max_upload_bytes()))
    if not tagged.tokens:
        raise DataError(f"no usable sentences in {Path(path).name}: every sentence is empty")
    entities = _entities(tagged.tags)
    summary = {
        "files": [
            {
                "split": "test",
                "path": str(tagged.file.path),
                "format": tagged.file.format,
                "encoding": tagged.file.encoding,
                "tag_scheme": tagged.scheme,
            }
        ],
        "sentences": len(tagged.tokens),
        "tokens": sum(len(t) for t in tagged.tokens),
        "entities": sum(entities.values()),
        "entities_per_type": dict(sorted(entities.items())),
        "repairs": {k: tagged.changes.get(k, 0) for k in ("i_without_b", "type_switch")},
        "notices": list(tagged.file.notices),
    }
    return tagged.tokens, tagged.tags, summary


def _duplicates(parts: dict[str, tuple[list[list[str]], list[list[str]]]]) -> dict[str, int]:
    pairs = [(tuple(t), tuple(g)) for s in _SPLITS for t, g in zip(*parts[s], strict=True)]
    tags_of: dict[tuple, set] = {}
    for tokens, tags in pairs:
        tags_of.setdefault(tokens, set()).add(tags)
    train = {tuple(t) for t in parts["train"][0]}
    return {
        "exact": len(pairs) - len(set(pairs)),
        "conflicting_tags": sum(len(found) > 1 for found in tags_of.values()),
        "across_splits": sum(tuple(t) in train for s in ("validation", "test") for t in parts[s][0]),
    }


def _summary_notices(summary: dict, tagged: dict[str, _Tagged]) -> list[str]:
    """Plain-language warnings about conversions, repairs and what the counts mean for the scores."""
    notices = []
    for found in tagged.values():
        name, changes = found.file.path.name, found.changes
        converted = changes["iob1_to_iob2"] + changes["bioes_to_iob2"]
        if converted:
            notices.append(f"{name} uses the {found.scheme} tag scheme; {converted} tag(s) were converted to IOB2")
        if changes["i_without_b"]:
            notices.append(
                f"{name}: {changes['i_without_b']} entity(ies) start with I- and no B- before it; "
                "each was read as starting with B-"
            )
        if changes["type_switch"]:
            notices.append(
                f"{name}: {changes['type_switch']} I-X tag(s) directly follow an entity of another type; "
                "each was read as B-X, the start of a new entity"
            )
    dropped, dup, truncated = summary["dropped"], summary["duplicates"], summary["truncated"]
    if dropped["blank_tokens"]:
        notices.append(f"dropped {dropped['blank_tokens']} blank token(s) (empty or only spaces)")
    if dropped["empty_sentences"]:
        notices.append(f"dropped {dropped['empty_sentences']} sentence(s) with no tokens")
    if dup["exact"]:
        notices.append(f"{dup['exact']} sentence(s) repeat an earlier one exactly (same tokens and tags); kept")
    if dup["conflicting_tags"]:
        notices.append(f"{dup['conflicting_tags']} sentence(s) appear with different tags; check and fix them")
    if dup["across_splits"]:
        notices.append(
            f"{dup['across_splits']} validation/test sentence(s) also appear in the training split; "
            "scores on them will look better than on new text"
        )
    train_counts = summary["splits"]["train"]["entities_per_type"]
    rare = [f"'{t}' ({n})" for t, n in train_counts.items() if n < RARE_ENTITIES]
    if rare:
        notices.append(
            f"entity type(s) {', '.join(rare)} have fewer than {RARE_ENTITIES} examples in the training split; "
            "expect low scores for them, and add examples if you can"
        )
    for split in ("validation", "test"):
        missing = [t for t, n in summary["splits"][split]["entities_per_type"].items() if not n]
        if missing:
            notices.append(
                f"the {split} split has no entities of type(s) {missing[:10]}; their scores cannot be measured"
            )
    if truncated["count"]:
        share = truncated["count"] / summary["sentences"]
        notices.append(
            f"{truncated['count']} sentence(s) ({share:.0%}) are longer than max_length={truncated['max_length']} "
            f"{truncated['unit']}; their end is cut off and its entities are neither learned nor scored"
        )
    if summary["length_tokens"]["unit"] != "tokens":
        notices.append(
            f"lengths are counted in {summary['length_tokens']['unit']} (no tokenizer given); sub-word token counts "
            "are usually higher"
        )
    return notices
