"""Tagging schemes: recognise BIO/IOB2, IOB1, BIOES and BILOU, and rewrite any of them as IOB2."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from engine.errors import DataError

ALLOWED_TAGS = (
    "'O' or PREFIX-TYPE, with PREFIX B or I (BIO/IOB1), S or E (BIOES) or U or L (BILOU), e.g. 'B-PER', 'I-LOC'"
)
_TAG = re.compile(r"([BIESLU])[-_](\S+)")


def parse_tag(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of a tag, ("O", "") for outside, None for a tag in no known scheme."""
    if tag == "O":
        return "O", ""
    match = _TAG.fullmatch(tag)
    return (match[1], match[2]) if match else None


def detect_scheme(sequences: Iterable[list[str]]) -> str:
    """Name the tagging scheme of a corpus: 'BILOU', 'BIOES', 'IOB1' (entities start with I-) or 'IOB2'."""
    prefixes: Counter = Counter()
    i_starts = b_starts = 0
    for tags in sequences:
        previous = ("O", "")
        for tag in tags:
            parsed = parse_tag(tag) or ("O", "")
            prefix, kind = parsed
            prefixes[prefix] += 1
            starts = previous[0] == "O" or previous[1] != kind
            i_starts += starts and prefix == "I"
            b_starts += starts and prefix == "B"
            previous = parsed
    if prefixes["U"] or prefixes["L"]:
        return "BILOU"
    if prefixes["S"] or prefixes["E"]:
        return "BIOES"
    # IOB1 uses B- only between two adjacent entities of one type, so most of its entities start with I-;
    # IOB2 data with a few slips still starts most entities with B-.
    return "IOB1" if i_starts > b_starts else "IOB2"


def normalize_tags(tags: list[str], *, scheme: str | None = None) -> tuple[list[str], Counter]:
    """Rewrite one sentence's tags as IOB2 and count the changes by kind.

    Kinds: "iob1_to_iob2" and "bioes_to_iob2" (scheme conversions), "i_without_b" (an I-X starting an entity,
    read as B-X) and "type_switch" (an I-Y right after an X entity, read as B-Y). Pass the corpus-wide `scheme`
    from `detect_scheme`; one sentence alone cannot tell IOB1 from IOB2 with slips.
    """
    scheme = scheme or detect_scheme([tags])
    out: list[str] = []
    counts: Counter = Counter()
    open_type: str | None = None  # the type of an entity the next token may continue
    for position, tag in enumerate(tags):
        parsed = parse_tag(tag)
        if parsed is None:
            raise DataError(f"unknown tag {tag!r} at token {position + 1}; tags must be {ALLOWED_TAGS}")
        prefix, kind = parsed
        if prefix == "O":
            out.append("O")
            open_type = None
            continue
        if prefix in "SEUL":
            counts["bioes_to_iob2"] += 1
        starts = prefix in "BSU" or open_type != kind
        if starts and prefix in "IEL":
            if scheme == "IOB1":
                counts["iob1_to_iob2"] += 1
            elif open_type is None:
                counts["i_without_b"] += 1
            else:
                counts["type_switch"] += 1
        out.append(f"{'B' if starts else 'I'}-{kind}")
        open_type = None if prefix in "SEUL" else kind  # S/E/U/L close their entity
    return out, counts
