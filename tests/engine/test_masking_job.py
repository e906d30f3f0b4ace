"""Masked data never reaches a job folder unmasked: tiny jobs trained on texts with planted e-mail addresses, phone
numbers and ID numbers (English and Chinese), then every file the job wrote searched for the originals."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from engine.catalog import resolve_model
from engine.spec import JobSpec
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.slow

# (planted text, the personal data in it, its kind)
PLANTED = [
    ("Write to jane.roe@example.com for tickets.", "jane.roe@example.com", "email"),
    ("Fan club: fan.mail@movies.org!", "fan.mail@movies.org", "email"),
    ("影评请联系zhangsan@163.com谢谢", "zhangsan@163.com", "email"),
    ("Call (415) 555-2671 tonight.", "(415) 555-2671", "phone"),
    ("订票电话：138 0013 8000。", "138 0013 8000", "phone"),
    ("客服 +86 139-0013-9000，全天", "+86 139-0013-9000", "phone"),
    ("手机１３７００１３７０００。", "１３７００１３７０００", "phone"),
    ("身份证号11010519491231002X。", "11010519491231002X", "id"),
    ("证件：44030619850615123X，已登记", "44030619850615123X", "id"),
    ("SSN 078-05-1120 on the form.", "078-05-1120", "id"),
]
KINDS = ("email", "phone", "id")
# Files of a job folder that hold the tokenizer's vocabulary, not the data.
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "vocab.json"}
TOKENIZER_FILES |= {"merges.txt", "added_tokens.json", "chat_template.jinja", "tokenizer.model"}


def _forms(data: str) -> set[str]:
    """The planted data as written and as bare digits (a report that normalised the number must not show it)."""
    digits = re.sub(r"[^0-9０-９]", "", data)
    return {data} | ({digits} if len(digits) >= 8 else set())


def _originals() -> set[str]:
    return {form for _, data, _ in PLANTED for form in _forms(data)}


def _leaks(folder: Path) -> dict[str, list[str]]:
    """Per file of the job folder, the planted originals it holds (tokenizer files aside)."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in TOKENIZER_FILES):
        content = path.read_bytes()
        hits = sorted(o for o in _originals() if o.encode("utf-8") in content)
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def _reviews(tmp_path: Path) -> Path:
    english = pd.read_csv(FIXTURES / "reviews.csv").head(100)
    chinese = pd.read_csv(FIXTURES / "zh" / "reviews.csv", encoding="gb18030").head(60)
    rows = [(t, v) for t, v in zip(english["review_body"], english["verdict"], strict=True)]
    rows += [
        (t, "fresh" if v == "正面" else "rotten") for t, v in zip(chinese["评论内容"], chinese["情感"], strict=True)
    ]
    path = tmp_path / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review_body", "verdict"])
        for i, (text, label) in enumerate(rows):
            # In front: max_length 32 cuts the end of long reviews, and the placeholder must reach the model.
            writer.writerow([f"{PLANTED[i % len(PLANTED)][0]} {text}", label])
    return path


def _spec(train_file: Path) -> JobSpec:
    return JobSpec.from_dict(
        {
            "task": "text-classification",
            "base_model": "minilm-l6",
            "data": {
                "train": str(train_file),
                "text_column": "review_body",
                "label_column": "verdict",
                "mask_personal_data": list(KINDS),
            },
            "params": {"epochs": 1, "batch_size": 16, "max_length": 32, "seed": 3},
        }
    )


def test_a_masked_classification_job_writes_no_planted_data(tmp_path):
    train_file = _reviews(tmp_path)
    raw = train_file.read_text(encoding="utf-8")
    assert all(original in raw for original in _originals() if not original.isdigit())  # planted for real
    spec = _spec(train_file)
    out = tmp_path / "job"
    result = train(spec, out)

    assert _leaks(out) == {}
    assert json.loads((out / "spec.json").read_text(encoding="utf-8")) == json.loads(spec.to_json())
    assert (out / "model" / "README.md").is_file()
    expected = {kind: sum(1 for i in range(160) if PLANTED[i % len(PLANTED)][2] == kind) for kind in KINDS}
    assert result.report["data"]["masked"] == expected
    per_split = result.report["data"]["masked_per_split"]
    assert {s: sum(c.values()) for s, c in per_split.items()} == {
        s: info["rows"] for s, info in result.report["data"]["splits"].items()
    }  # exactly one planted piece in every row of every split
    report_md = (out / "report.md").read_text(encoding="utf-8")
    assert f"Personal data masked before training: {expected['email']} e-mail addresses as [EMAIL]" in report_md
    card = (out / "model" / "README.md").read_text(encoding="utf-8")
    assert "Personal data masked before training" in card and "mask inputs the same way" in card
    quoted = [e["text"] for e in result.report["errors"]]
    assert quoted and all(re.search(r"\[(EMAIL|PHONE|ID)\]", text) for text in quoted)

    # What the model trained on: the prepared splits hold placeholders, and their tokens decode to no original.
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6", task="text-classification"))
    prepared = spec.task_info().recipe().prepare(spec, tokenizer)
    texts = list(prepared.raw.train["text"]) + list(prepared.raw.test["text"])
    assert all(re.search(r"\[(EMAIL|PHONE|ID)\]", text) for text in texts)
    # The uncased tokenizer decodes lower-case with spaces between word pieces: compare without spaces.
    decoded = "\n".join(tokenizer.decode(ids, skip_special_tokens=True) for ids in prepared.train["input_ids"])
    decoded = decoded.replace(" ", "")
    assert decoded.count("[email]") + decoded.count("[phone]") + decoded.count("[id]") == len(prepared.train)
    assert not [o for o in _originals() if o.lower().replace(" ", "") in decoded]


def test_a_masked_chat_job_writes_no_planted_data(tmp_path):
    lines = (FIXTURES / "chat" / "support.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    conversations = []
    for i, line in enumerate(lines):
        messages = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        text, _, _ = PLANTED[i % len(PLANTED)]
        system = {"role": "system", "content": f"Customer file: {PLANTED[(i + 3) % len(PLANTED)][0]}"}
        user = {**messages[0], "content": f"{text} {messages[0]['content']}"}
        conversations.append([system, user, messages[1]])
    train_file = tmp_path / "chat.jsonl"
    train_file.write_text(
        "".join(json.dumps({"messages": c}, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8"
    )
    spec = JobSpec.from_dict(
        {
            "task": "chat",
            "data": {"train": str(train_file), "test_fraction": 0.2, "mask_personal_data": list(KINDS)},
            "params": {"epochs": 1, "batch_size": 4, "max_length": 96, "learning_rate": 1e-3, "seed": 1},
        }
    )
    out = tmp_path / "chat-job"
    result = train(spec, out)
    assert _leaks(out) == {}
    assert sum(result.report["data"]["masked"].values()) == 2 * len(conversations)  # one in system, one in user
    prompts = [m["content"] for g in result.report["generations"] for m in g["prompt"]]
    assert prompts and all(re.search(r"\[(EMAIL|PHONE|ID)\]", p) for p in prompts if p.startswith("Customer file"))
    assert "Personal data masked before training" in (out / "report.md").read_text(encoding="utf-8")
