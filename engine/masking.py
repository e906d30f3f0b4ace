"""Personal data in texts replaced by typed placeholders before training: e-mail addresses, phone numbers, ID-card
numbers, bank-card numbers and URLs, in English and Chinese text (full-width digits and punctuation included).

Each kind is one precompiled regular expression, with a check after it where a pattern alone would mask too much:
Chinese resident IDs must carry a valid ISO 7064 MOD 11-2 check character and a real birth date, bank cards must
pass the Luhn check, so order numbers, dates, prices and versions stay as they are.

The kinds are found in a fixed order, each on what the earlier ones left: URLs first (a URL may hold an e-mail
address or a long number in its path; the whole URL is one [URL]), then e-mail addresses, ID numbers (stricter than
the Luhn check, so an 18-digit ID that happens to pass it is still an [ID]), bank cards (a card's first digits can
look like a phone number) and phone numbers last.
"""

from __future__ import annotations

import datetime
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

MaskKind = Literal["email", "phone", "id", "card", "url"]
# Kind -> (placeholder, one, many), in the order the kinds are found.
KINDS: dict[str, tuple[str, str, str]] = {
    "url": ("[URL]", "URL", "URLs"),
    "email": ("[EMAIL]", "e-mail address", "e-mail addresses"),
    "id": ("[ID]", "ID-card number", "ID-card numbers"),
    "card": ("[CARD]", "bank-card number", "bank-card numbers"),
    "phone": ("[PHONE]", "phone number", "phone numbers"),
}
SPEC_ORDER: tuple[str, ...] = ("email", "phone", "id", "card", "url")  # as the spec and the summary list them
ALL = "all"

# Full-width forms (U+FF01-FF5E), the ideographic space and the dashes people type in numbers, read as ASCII. One
# character stays one character, so a match in the folded text is a match at the same place in the original.
_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FOLD.update({0x3000: ord(" "), 0x2212: ord("-"), **{code: ord("-") for code in range(0x2010, 0x2016)}})
# What the found spans become in the folded text while the later kinds are searched: no pattern matches it, and
# like a placeholder it ends a number or an address next to it.
_TAKEN = "\x00"

# A number starts and ends where no letter or digit touches it, nor a digit across a separator (a decimal, a
# version, a longer number); Chinese characters and punctuation around it are not part of it. Every number pattern
# starts with a digit, "(" or "+": the lookahead says so first, so the lookbehinds run only at those characters
# (1.5x the texts per second in bench.masking, same spans).
_LEFT = r"(?=[0-9(+])(?<![0-9A-Za-z_+])(?<![0-9][-.,/:])"
_RIGHT = r"(?![0-9A-Za-z_])(?![-.,/:][0-9])"
_CJK = "\u4e00-\u9fff"
_SAFE = r"[A-Za-z0-9\-._~%!$'*+,;:@]"  # path characters besides the delimiters / ? # = &
_LABEL = rf"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?|[{_CJK}]+)"
# The last label of a host: ASCII letters, or one of the Chinese top-level domains (an open run of Chinese
# characters would swallow the sentence after the address).
_TLD = r"(?:[A-Za-z]{2,24}|中国|中國|公司|网络|網絡|香港|台湾|台灣|在线|集团|商城|网址|网店|中文网|政务|公益)"
_HOST = rf"(?:{_LABEL}\.)+{_TLD}(?![A-Za-z0-9-])"
_PATH = rf"(?:[/?#=&](?:[{_CJK}]+[A-Za-z0-9\-._~%]*|{_SAFE}+)?)*"
_URL = re.compile(
    rf"(?:(?<![A-Za-z0-9])https?://(?:[A-Za-z0-9._%+-]+(?::[^\s@/]*)?@)?"
    rf"(?:[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}}|{_HOST}|[A-Za-z0-9-]+)"
    rf"|(?<![A-Za-z0-9@._%+-])www\.{_HOST})(?::[0-9]{{2,5}})?{_PATH}",
    re.IGNORECASE,
)
_URL_TAIL = ".,;:!'*"  # sentence punctuation after an address, not part of it
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# Chinese resident ID: region (6), birth date (8), sequence (3), check (digit or X), optionally spaced 6-8-4.
# US SSN: area-group-serial, never area 000, 666 or 9xx, group 00 or serial 0000.
_ID = re.compile(
    rf"{_LEFT}(?:(?P<cn>[1-9][0-9]{{5}} ?(?:18|19|20)[0-9]{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]) ?"
    rf"[0-9]{{3}}[0-9Xx])|(?!000|666|9)[0-9]{{3}}-(?!00)[0-9]{{2}}-(?!0000)[0-9]{{4}}){_RIGHT}"
)
_CARD = re.compile(rf"{_LEFT}(?:[0-9]{{4,6}}(?:[ -][0-9]{{1,6}}){{1,4}}|[0-9]{{13,19}}){_RIGHT}")
_PHONE = re.compile(
    _LEFT
    + "(?:"
    # Chinese mainland mobile: 1[3-9] and 9 digits, as 3-4-4 with spaces or dashes, with or without +86 / 0086.
    + r"(?P<mobile>(?:\(?(?:\+|00)?86\)?[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2})"
    # Chinese landline: area code 0xx or 0xxx, then 7-8 digits after a dash or an area code in brackets.
    + r"|(?P<landline>(?:\(0[1-9][0-9]{1,2}\) ?|0[1-9][0-9]{1,2}-)[0-9]{3,4}-?[0-9]{4})"
    # North American: (415) 555-2671, 415-555-2671, 415.555.2671, +1 415 555 2671 (separators required).
    + r"|(?P<na>(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4})"
    # International: +CC and groups of digits, spaces, dashes or an area code in brackets between them.
    + r"|(?P<intl>\+[1-9][0-9]{0,2}(?:[ -]?\(?[0-9]{1,5}\)?){1,6})"
    # European national: a trunk 0, then groups of 2-4 digits (030 1234 5678, 06 12 34 56 78).
    + r"|(?P<eu>0[1-9][0-9]{0,3}(?:[ -][0-9]{2,4}){2,4})"
    + ")"
    + _RIGHT
)
_DIGITS_ALLOWED = {"mobile": (11, 15), "landline": (10, 12), "na": (10, 11), "intl": (8, 15), "eu": (9, 11)}
_NOT_DIGIT = re.compile(r"[^0-9]")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
_ID_CHECK = "10X98765432"  # the check character for each remainder of the weighted sum mod 11
_NOTHING: Mapping[str, int] = {}
_SPLIT_ORDER = ("train", "validation", "test", "unlabeled")


def mask_kinds(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    """The kinds asked for, in spec order: 'all', a comma-separated text or a list; ValueError names the allowed."""
    if kinds is None:
        return ()
    items = kinds.replace(";", ",").split(",") if isinstance(kinds, str) else list(kinds)
    asked = [str(item).strip().lower() for item in items if str(item).strip()]
    if ALL in asked:
        return SPEC_ORDER
    unknown = [kind for kind in asked if kind not in KINDS]
    if unknown:
        raise ValueError(
            f"unknown kind of personal data {unknown[0]!r}; the kinds are {', '.join(SPEC_ORDER)} (or {ALL!r})"
        )
    return tuple(kind for kind in SPEC_ORDER if kind in asked)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _chinese_id(digits: str) -> bool:
    """A real resident ID: the check character and a birth date that exists and is not in the future."""
    try:
        born = datetime.date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    remainder = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True)) % 11
    return born <= datetime.date.today() and digits[17].upper() == _ID_CHECK[remainder]


def _card(text: str, start: int) -> tuple[int, int] | None:
    """The longest run of the match's digit groups from its start that is a card number: a number written after
    a card ("4111 1111 1111 1111 2 pcs") is not part of it."""
    groups = list(_DIGIT_GROUP.finditer(text))
    for count in range(len(groups), 0, -1):
        digits = "".join(group.group() for group in groups[:count])
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits):
            return start, start + groups[count - 1].end()
    return None


def _kept(kind: str, match: re.Match[str]) -> tuple[int, int] | None:
    """The span to mask of a pattern's match, or None where the check after the pattern says it is not that kind."""
    start, end = match.span()
    if kind == "url":
        return start, start + len(match.group().rstrip(_URL_TAIL))
    if kind == "id":
        return (start, end) if not match.group("cn") or _chinese_id(match.group().replace(" ", "")) else None
    if kind == "card":
        return _card(match.group(), start)
    if kind == "phone":
        low, high = _DIGITS_ALLOWED[match.lastgroup or "intl"]
        return (start, end) if low <= len(_NOT_DIGIT.sub("", match.group())) <= high else None
    return start, end


_PATTERNS = {"url": _URL, "email": _EMAIL, "id": _ID, "card": _CARD, "phone": _PHONE}
_HAS_DIGIT = re.compile(r"[0-9]")
_URL_HINT = re.compile(r"//|www\.", re.IGNORECASE)


def _wanted(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    """The kinds asked for, in the order they are found."""
    asked = set(mask_kinds(kinds))
    return tuple(kind for kind in KINDS if kind in asked)


def _spans(text: str, wanted: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every piece of personal data in `text`, in text order, never overlapping."""
    folded = text if text.isascii() else text.translate(_FOLD)
    digits = _HAS_DIGIT.search(folded) is not None
    spans: list[tuple[int, int, str]] = []
    for kind in wanted:
        # Cheap tests first: most texts hold no digit, no @ and no address, and skip the patterns.
        if (kind == "url" and not _URL_HINT.search(folded)) or (kind == "email" and "@" not in folded):
            continue
        if kind in ("id", "card", "phone") and not digits:
            continue
        found = [span for match in _PATTERNS[kind].finditer(folded) if (span := _kept(kind, match))]
        for start, end in found:
            folded = folded[:start] + _TAKEN * (end - start) + folded[end:]
            spans.append((start, end, kind))
    return sorted(spans)


def mask_text(text: str, kinds: Iterable[str] | str) -> tuple[str, dict[str, int]]:
    """`text` with each piece of personal data of `kinds` replaced by its placeholder, and how many of each kind."""
    return _mask(text, _wanted(kinds))


def _mask(text: str, wanted: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    spans = _spans(text, wanted) if text else []
    if not spans:
        return text, {}
    return _replaced(text, spans, 0), dict(Counter(kind for _, _, kind in spans))


def mask_records(items: list[Any], kinds: Iterable[str] | str | None) -> list[Mapping[str, int]]:
    """Mask every text of `items` in place (strings, or conversations: lists of {role, content} messages); per item
    what was masked. Nothing changes without kinds."""
    wanted = _wanted(kinds)
    if not wanted:
        return [_NOTHING] * len(items)
    counts: list[Mapping[str, int]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            items[i], found = _mask(item, wanted)
        else:
            found = Counter()
            messages = []
            for message in item:
                content, seen = _mask(message["content"], wanted)
                messages.append({**message, "content": content})
                found.update(seen)
            items[i] = messages
        counts.append(dict(found) or _NOTHING)
    return counts


def mask_tagged(
    sentences: list[list[str]], tags: list[list[str]], kinds: Iterable[str] | str | None
) -> list[Mapping[str, int]]:
    """Mask tagged sentences in place, the tags kept aligned; per sentence what was masked.

    A sentence is searched as its tokens joined by spaces (by nothing where nearly every token is one character, as
    in Chinese data), so a phone number written as three tokens is found. A token holding personal data keeps its
    tag; the tokens of one piece of data become one placeholder token carrying the first one's tag, when they are
    all 'O' or one entity (B-X I-X ...). Where the piece straddles tags, each of its tokens becomes the placeholder
    with its own tag, so nothing of it stays and no tag moves.
    """
    wanted = _wanted(kinds)
    if not wanted:
        return [_NOTHING] * len(sentences)
    tokens = [token for sentence in sentences for token in sentence]
    joiner = "" if tokens and sum(len(t) == 1 for t in tokens) >= 0.95 * len(tokens) else " "
    counts: list[Mapping[str, int]] = []
    for i, sentence in enumerate(sentences):
        text = joiner.join(sentence)
        spans = _spans(text, wanted)
        if spans:
            sentences[i], tags[i] = _masked_tokens(sentence, tags[i], spans, len(joiner))
        counts.append(dict(Counter(kind for _, _, kind in spans)) if spans else _NOTHING)
    return counts


def _masked_tokens(
    sentence: list[str], tags: list[str], spans: list[tuple[int, int, str]], gap: int
) -> tuple[list[str], list[str]]:
    """The tokens and tags of one sentence with the spans (offsets into its joined text) masked."""
    starts, position = [], 0
    for token in sentence:
        starts.append(position)
        position += len(token) + gap
    # The first and the last token each span touches.
    touched = [(bisect_right(starts, start) - 1, bisect_left(starts, end) - 1) for start, end, _ in spans]
    out_tokens, out_tags, i, k = [], [], 0, 0
    while i < len(sentence):
        if k >= len(spans) or touched[k][0] != i:
            out_tokens.append(sentence[i])
            out_tags.append(tags[i])
            i += 1
            continue
        last, j = touched[k][1], k  # spans that share a token are masked together
        while j + 1 < len(spans) and touched[j + 1][0] <= last:
            j += 1
            last = max(last, touched[j][1])
        if _one_unit(tags[i : last + 1]):
            out_tokens.append(_replaced((" " * gap).join(sentence[i : last + 1]), spans[k : j + 1], starts[i]))
            out_tags.append(tags[i])
        else:
            for t in range(i, last + 1):
                kinds = [spans[n][2] for n in range(k, j + 1) if touched[n][0] <= t <= touched[n][1]]
                out_tokens.append(KINDS[kinds[0]][0] if kinds else sentence[t])
                out_tags.append(tags[t])
        i, k = last + 1, j + 1
    return out_tokens, out_tags


def _replaced(text: str, spans: list[tuple[int, int, str]], offset: int) -> str:
    pieces, last = [], 0
    for start, end, kind in spans:
        pieces += [text[last : start - offset], KINDS[kind][0]]
        last = end - offset
    return "".join([*pieces, text[last:]])


def _one_unit(tags: list[str]) -> bool:
    """Whether tags are all 'O', or one entity: its first tag B-X or I-X and only I-X after it."""
    if len(tags) == 1 or all(tag == "O" for tag in tags):
        return True
    kind = tags[0][2:]
    return tags[0] != "O" and all(tag == f"I-{kind}" for tag in tags[1:])


def record_masking(
    summary: dict[str, Any], kinds: Iterable[str] | str | None, per_split: Mapping[str, Sequence[Mapping[str, int]]]
) -> None:
    """Count what was masked into a data summary by kind ("masked") and by split ("masked_per_split"), and mask
    what its notices quote from the files (decoding samples). Nothing without kinds."""
    asked = mask_kinds(kinds)
    if not asked:
        return
    order = sorted(per_split, key=lambda split: (_SPLIT_ORDER.index(split) if split in _SPLIT_ORDER else 9, split))
    splits = {split: _totals(asked, per_split[split]) for split in order}
    summary["masked"] = {kind: sum(counts[kind] for counts in splits.values()) for kind in asked}
    summary["masked_per_split"] = splits
    summary["notices"] = [mask_text(notice, asked)[0] for notice in summary.get("notices") or []]


def add_masked_split(summary: dict[str, Any], split: str, tallies: Sequence[Mapping[str, int]]) -> None:
    """Add one more split's counts (the unlabeled texts of a technique) to a summary's masking counts."""
    if "masked" not in summary:
        return
    asked = tuple(summary["masked"])
    summary["masked_per_split"][split] = counts = _totals(asked, tallies)
    summary["masked"] = {kind: summary["masked"][kind] + counts[kind] for kind in asked}


def _totals(asked: tuple[str, ...], tallies: Sequence[Mapping[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for counts in tallies:
        if counts:
            total.update(counts)
    return {kind: total.get(kind, 0) for kind in asked}


def masked_sentence(summary: Mapping[str, Any]) -> str | None:
    """'Personal data masked before training: 3 e-mail addresses as [EMAIL], ...; by split: train 5, ...', or None
    when the job did not mask."""
    masked = summary.get("masked")
    if not isinstance(masked, Mapping):
        return None
    parts = []
    for kind, count in masked.items():
        placeholder, one, many = KINDS.get(kind, (f"[{kind.upper()}]", kind, kind))
        parts.append(f"{count} {one if count == 1 else many} as {placeholder}" if count else f"no {many}")
    sentence = f"Personal data masked before training: {', '.join(parts) or 'none asked for'}"
    splits = summary.get("masked_per_split")
    if isinstance(splits, Mapping) and any(sum(c.values()) for c in splits.values()):
        sentence += "; by split: " + ", ".join(f"{split} {sum(c.values())}" for split, c in splits.items())
    return sentence + "."
