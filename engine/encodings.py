"""Decoding uploaded text files: BOMs, UTF-16 without BOM, UTF-8, and the legacy code pages that spreadsheets and
exports are really saved in, guessed with a notice that quotes decoded lines; or the encoding the user names."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from engine.errors import DataError

# UTF-32 BOMs start with the UTF-16 ones, so they are tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The code pages that spreadsheets and exports are really saved in, the commonest first. Only these are guessed:
# asked about every code page, charset_normalizer read Latin-1 French as ISO-8859-10 (à -> ā, ñ -> ņ). A tie
# between them goes to the earlier one, so Western European text is cp1252.
LEGACY_ENCODINGS = ("cp1252", "latin_1", "gb18030", "shift_jis", "big5", "euc_kr", "cp1250", "cp1251")
ENCODING_NAMES = {  # what a person calls each encoding that is guessed
    "gb18030": "GBK/GB18030",
    "cp1252": "Windows-1252 (Latin-1)",
    "latin_1": "ISO-8859-1 (Latin-1)",
    "shift_jis": "Shift-JIS",
    "big5": "Big5",
    "euc_kr": "EUC-KR",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
}
_SAMPLE_LINES, _SAMPLE_WIDTH = 3, 60
SAMPLE_CHARS = 65536
_NOT_TEXT = "is not text in a known encoding; save it as UTF-8 CSV"


def decode_text(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """Decode to text: the given encoding, else BOMs, UTF-16 without BOM, UTF-8, and a guessed legacy encoding with
    a notice that shows decoded samples, so a wrong guess is seen before training."""
    if encoding:
        return _decode_as(raw, path, encoding), encoding, []
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None) or _utf16_without_bom(raw)
    if encoding:
        try:
            return raw.decode(encoding), encoding, []
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path.name} {_NOT_TEXT} (it starts like {encoding} but byte {exc.start} is invalid)"
            ) from exc
    # NUL bytes never occur in UTF-8 or legacy-encoded text files, but in nearly every binary one.
    if b"\x00" in raw[: SAMPLE_CHARS * 4]:
        raise DataError(f"{path.name} {_NOT_TEXT} (it contains binary data)")
    try:
        return raw.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        utf8_error = exc
    encoding = _guess_legacy_encoding(raw)
    if encoding is None:
        raise DataError(f"{path.name} {_NOT_TEXT} (invalid UTF-8 at byte {utf8_error.start})") from utf8_error
    text = raw.decode(encoding)  # the guess decoded the whole file strictly
    name = ENCODING_NAMES.get(encoding, encoding.upper())
    samples = " · ".join(f"“{line}”" for line in sample_lines(text))
    return (
        text,
        encoding,
        [
            f"{path.name} decoded as {name} (not UTF-8): check that accents and characters look right, e.g. "
            f"{samples}; if they don't, pick the file's encoding"
        ],
    )


def _decode_as(raw: bytes, path: Path, encoding: str) -> str:
    try:
        text = raw.decode(encoding)
    except LookupError as exc:
        raise DataError(
            f"unknown encoding {encoding!r}; use a name such as utf-8, cp1252, gb18030 or shift_jis"
        ) from exc
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 4].hex(" ")
        raise DataError(
            f"{path.name} is not valid {encoding}: the bytes at position {exc.start} ({bad}) mean nothing in it; "
            "pick another encoding, or leave it empty to have it guessed"
        ) from exc
    return text.removeprefix("\ufeff")  # a BOM is no part of the first column's name


def sample_lines(text: str) -> list[str]:
    """A few lines with non-ASCII characters, cut around the first one: what a person checks a guessed decoding by."""
    samples = []
    for line in text.splitlines():
        at = next((i for i, ch in enumerate(line) if ord(ch) > 127), None)
        if at is None:
            continue
        start = max(0, at - _SAMPLE_WIDTH // 3)
        piece = line[start : start + _SAMPLE_WIDTH].strip()
        samples.append(("…" if start else "") + piece + ("…" if start + _SAMPLE_WIDTH < len(line) else ""))
        if len(samples) == _SAMPLE_LINES:
            break
    return samples


def _utf16_without_bom(raw: bytes) -> str | None:
    # ASCII-heavy UTF-16 has a NUL in every other byte; which half holds them gives the byte order.
    sample = raw[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _guess_legacy_encoding(raw: bytes) -> str | None:
    matches = [m for m in from_bytes(raw, cp_isolation=list(LEGACY_ENCODINGS)) if _decodes(raw, m.encoding)]
    if not matches:
        return None
    best = matches[0]
    tied = {m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    encoding = next(enc for enc in (*LEGACY_ENCODINGS, best.encoding) if enc in tied)
    if encoding in _OTHER_LATIN and _decodes(raw, "cp1252") and _reads_as_words(raw.decode("cp1252")):
        # Spanish read as Windows-1250 turns ñ into ń; Polish read as cp1252 puts ¹ and ¿ inside its words.
        encoding = "cp1252"
    text = raw.decode(encoding)
    # charset_normalizer will map almost any bytes to some code page; control characters mean it was not text.
    controls = sum(1 for ch in text[:SAMPLE_CHARS] if ch < " " and ch not in "\t\n\r")
    return None if controls > 0.01 * min(len(text), SAMPLE_CHARS) else encoding


_OTHER_LATIN = ("latin_1", "cp1250")  # code pages of Latin-script text that cp1252 also decodes


def _reads_as_words(text: str) -> bool:
    """True when no symbol sits between two letters: what Central European text decoded as cp1252 shows."""
    sample = text[:SAMPLE_CHARS]
    return not any(
        ord(ch) > 127 and not ch.isalpha() and sample[i - 1].isalpha() and sample[i + 1].isalpha()
        for i, ch in enumerate(sample[1:-1], start=1)
    )


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True
