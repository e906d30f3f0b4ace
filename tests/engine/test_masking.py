"""Masking personal data: each kind found in English and Chinese text, look-alikes left alone, counts, idempotence,
token-level masking with aligned tags, the spec field, and each task's loader counting what it masked per split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.masking import SPEC_ORDER, mask_kinds, mask_records, mask_tagged, mask_text, masked_sentence
from engine.spec import DataSpec, JobSpec
from engine.tasks.chat.data import load_chat_data
from engine.tasks.text_classification.data import load_classification_data
from engine.tasks.token_classification.data import load_token_classification_data
from engine.techniques.unlabeled import unlabeled_texts

ALL = SPEC_ORDER

# (text, masked): every kind in English and Chinese, with the punctuation and characters around it kept.
FOUND = [
    ("Write to john.doe@example.com, please.", "Write to [EMAIL], please."),
    ("邮箱：zhang.san@qq.com。", "邮箱：[EMAIL]。"),
    ("联系zhangsan@163.com谢谢", "联系[EMAIL]谢谢"),
    ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "[EMAIL]"),
    ("电话：138 0013 8000。", "电话：[PHONE]。"),
    ("电话13800138000，谢谢", "电话[PHONE]，谢谢"),
    ("手机：１３８００１３８０００。", "手机：[PHONE]。"),
    ("请拨 +86 138-0013-8000 或 (+86)13900139000", "请拨 [PHONE] 或 [PHONE]"),
    ("座机010-12345678，分机", "座机[PHONE]，分机"),
    ("深圳０７５５－１２３４５６７８", "深圳[PHONE]"),
    ("Call (415) 555-2671 or +1 415 555 2671.", "Call [PHONE] or [PHONE]."),
    ("London: +44 20 7946 0958", "London: [PHONE]"),
    ("Ruf 030 1234 5678 an oder 06 12 34 56 78", "Ruf [PHONE] an oder [PHONE]"),
    ("身份证号11010519491231002X。", "身份证号[ID]。"),
    ("身份证：４４０３０６１９８５０６１５１２３Ｘ，", "身份证：[ID]，"),
    ("ID 310115197801010044 on file", "ID [ID] on file"),
    ("SSN 078-05-1120.", "SSN [ID]."),
    ("card 4111 1111 1111 1111 2 pcs", "card [CARD] 2 pcs"),
    ("卡号：6222021234567890128。", "卡号：[CARD]。"),
    ("Amex 3782-822463-10005", "Amex [CARD]"),
    ("see https://example.com/a/b?q=1.", "see [URL]."),
    ("访问http://例子.中国/路径，谢谢", "访问[URL]，谢谢"),
    ("百科https://zh.wikipedia.org/wiki/北京。", "百科[URL]。"),
    ("go to www.example.org/help now", "go to [URL] now"),
    ("搜索https://shop.example.cn/search?q=手机&page=2。", "搜索[URL]。"),
]

# Numbers and addresses that look like personal data and are not.
KEPT = [
    "价格¥1,299.00，原价￥1,599",
    "Price $1,299.00 incl. VAT",
    "version v2.13.0 released",
    "版本 v2.13.0",
    "date 2024-01-15, 2024/01/15, 15.01.2024 and 20240115",
    "日期：2024年1月15日 10:30:00",
    "order #100234567890 shipped",
    "订单号 20240115123456789",
    "订单号：202401150001，共 3 件",
    "invalid checksum 310115197801010045",
    "impossible birth date 11010519900230001X",
    "born in the future 110105209912310010",
    "random 123456789012345678",
    "Luhn fails 4111-1111-1111-1112",
    "SSN-like but area 000: 000-12-3456",
    "ip 192.168.1.1 and pi 3.14159265358979",
    "room 1234, 2 adults",
    "no address here: example dot com",
    "write to user@localhost or john at example dot com",
    "邮箱格式 user@ 不对，文件名 report.v2.pdf",
    "版本号 1.2.3.4 发布，库存 12345678 件",
]


@pytest.mark.parametrize(("text", "masked"), FOUND)
def test_each_kind_is_masked_in_english_and_chinese(text, masked):
    assert mask_text(text, ALL)[0] == masked


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_are_not_masked(text):
    assert mask_text(text, ALL) == (text, {})


def test_counts_by_kind():
    text = "a@b.com, c@d.org, 13800138000, https://x.com, 4111111111111111 and 11010519491231002X"
    masked, counts = mask_text(text, ALL)
    assert counts == {"email": 2, "phone": 1, "url": 1, "card": 1, "id": 1}
    assert masked == "[EMAIL], [EMAIL], [PHONE], [URL], [CARD] and [ID]"


def test_only_the_kinds_asked_for():
    text = "mail a@b.com or call 13800138000"
    assert mask_text(text, ["phone"]) == ("mail a@b.com or call [PHONE]", {"phone": 1})
    assert mask_text(text, "email") == ("mail [EMAIL] or call 13800138000", {"email": 1})


def test_masking_masked_text_changes_nothing():
    for text in [t for t, _ in FOUND] + KEPT:
        once, _ = mask_text(text, ALL)
        assert mask_text(once, ALL) == (once, {}), text


def test_the_order_of_kinds():
    # A URL holding an e-mail address or a phone number is one [URL].
    assert mask_text("https://x.com/u?to=a@b.com and https://x.cn/u/13800138000", ALL)[0] == "[URL] and [URL]"
    # An e-mail address whose domain starts with www. is an e-mail address, not a URL.
    assert mask_text("info@www.example.com", ALL) == ("[EMAIL]", {"email": 1})
    # An 18-digit resident ID that also passes the Luhn check is an ID, not a card.
    assert mask_text("110105199003070068", ALL) == ("[ID]", {"id": 1})
    # Spaced digit groups of a card are one card, not a phone number and a rest.
    assert mask_text("6222 0212 3456 7890 128", ALL) == ("[CARD]", {"card": 1})


def test_a_card_that_looks_like_a_phone_is_a_card():
    card = "1380 0138 0000 0003"  # starts like a mobile number; 16 digits, Luhn-valid
    assert mask_text(card, ALL) == ("[CARD]", {"card": 1})
    assert mask_text(card, ["phone"]) == (card, {})  # no phone pattern takes 16 digits either


def test_unknown_kind_names_the_allowed_ones():
    with pytest.raises(ValueError, match="email, phone, id, card, url"):
        mask_kinds(["email", "ssn"])
    with pytest.raises(ValueError, match=r"data\.mask_personal_data.*'ssn'.*email, phone, id, card, url"):
        JobSpec.from_dict({"data": {"train": "a.csv", "mask_personal_data": ["ssn"]}})


def test_the_spec_field_reads_lists_text_and_all():
    assert DataSpec(train="a.csv").mask_personal_data is None
    assert DataSpec(train="a.csv", mask_personal_data="url, email").mask_personal_data == ("email", "url")
    assert DataSpec(train="a.csv", mask_personal_data=["phone", "phone"]).mask_personal_data == ("phone",)
    assert DataSpec(train="a.csv", mask_personal_data="all").mask_personal_data == ALL
    assert DataSpec(train="a.csv", mask_personal_data=[]).mask_personal_data is None
    spec = JobSpec.from_dict({"data": {"train": "a.csv", "mask_personal_data": ["card", "id"]}})
    assert JobSpec.model_validate_json(spec.to_json()) == spec


def test_tokens_of_one_phone_number_become_one_placeholder_with_the_first_tag():
    sentences = [["Call", "138", "0013", "8000", "now"], ["Call", "138", "0013", "8000", "now"]]
    tags = [["O", "B-PHONE", "I-PHONE", "I-PHONE", "O"], ["O", "O", "O", "O", "O"]]
    counts = mask_tagged(sentences, tags, ALL)
    assert sentences == [["Call", "[PHONE]", "now"]] * 2
    assert tags == [["O", "B-PHONE", "O"], ["O", "O", "O"]]
    assert counts == [{"phone": 1}, {"phone": 1}]


def test_a_token_that_is_personal_data_keeps_its_tag():
    sentences = [["Mail", "john@example.com", ",", "then", "张三", "。"], ["电话", "：", "13800138000", "。"]]
    tags = [["O", "B-EMAIL", "O", "O", "B-PER", "O"], ["O", "O", "B-TEL", "O"]]
    mask_tagged(sentences, tags, ALL)
    assert sentences == [["Mail", "[EMAIL]", ",", "then", "张三", "。"], ["电话", "：", "[PHONE]", "。"]]
    assert tags == [["O", "B-EMAIL", "O", "O", "B-PER", "O"], ["O", "O", "B-TEL", "O"]]


def test_data_straddling_tags_masks_every_token_in_place():
    sentences = [["No", "138", "0013", "8000"]]
    tags = [["O", "O", "B-NUM", "I-NUM"]]  # one phone number over an 'O' and an entity: no tag may move
    mask_tagged(sentences, tags, ALL)
    assert sentences == [["No", "[PHONE]", "[PHONE]", "[PHONE]"]]
    assert tags == [["O", "O", "B-NUM", "I-NUM"]]


def test_character_level_tokens_are_searched_as_one_string():
    sentence = list("张三的电话是13800138000，邮箱a@b.cn")
    sentences, tags = [sentence], [["B-PER", "I-PER", *["O"] * (len(sentence) - 2)]]
    assert mask_tagged(sentences, tags, ALL) == [{"phone": 1, "email": 1}]
    assert sentences == [[*"张三的电话是", "[PHONE]", "，", "邮", "箱", "[EMAIL]"]]
    assert tags[0][:2] == ["B-PER", "I-PER"] and len(tags[0]) == len(sentences[0])


def test_conversations_mask_every_role():
    conversations = [
        [
            {"role": "system", "content": "Support line 400-810-8888 ext 0; mail help@acme.cn"},
            {"role": "user", "content": "我的手机是13900139000"},
            {"role": "assistant", "content": "Thanks, we will call +86 139 0013 9000."},
        ]
    ]
    assert mask_records(conversations, ALL) == [{"email": 1, "phone": 3}]
    assert [m["content"] for m in conversations[0]] == [
        "Support line [PHONE] ext 0; mail [EMAIL]",
        "我的手机是[PHONE]",
        "Thanks, we will call [PHONE].",
    ]
    assert [m["role"] for m in conversations[0]] == ["system", "user", "assistant"]


def _reviews(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["text,label", *(f'"{text}",{label}' for text, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_classification_masks_before_the_split_and_counts_per_split(tmp_path):
    rows = [(f"great film {i}, mail fan{i}@example.com", "pos") for i in range(10)]
    rows += [(f"差评 {i}，电话13800138{i:03d}", "neg") for i in range(10)]
    train = _reviews(tmp_path / "train.csv", rows)
    test = _reviews(tmp_path / "test.csv", [("see https://x.com/r", "pos"), ("no data here", "neg")])
    data = DataSpec(train=str(train), test=str(test), mask_personal_data=["email", "phone", "url"])
    loaded = load_classification_data(data)
    texts = [t for split in (loaded.train, loaded.validation, loaded.test) for t in split["text"]]
    assert not any("@" in t or "13800138" in t or "x.com" in t for t in texts)
    summary = loaded.summary
    assert summary["masked"] == {"email": 10, "phone": 10, "url": 1}
    per_split = summary["masked_per_split"]
    assert list(per_split) == ["train", "validation", "test"]
    assert per_split["test"] == {"email": 0, "phone": 0, "url": 1}
    assert sum(per_split["train"].values()) == len(loaded.train)  # one piece of data in every training row
    unmasked = load_classification_data(DataSpec(train=str(train), test=str(test)))
    assert "masked" not in unmasked.summary
    assert len(unmasked.train) == len(loaded.train)  # the same split, masked or not
    report = {"task": "text-classification", "data": summary}
    assert "Personal data masked before training: 10 e-mail addresses as [EMAIL]" in _data_markdown(report)


def _data_markdown(report: dict) -> str:
    from engine.tasks.text_classification.report import _data_section

    return "\n".join(_data_section(report["data"]))


def test_token_classification_masks_tokens_and_keeps_the_tags(tmp_path):
    contact = {
        "tokens": ["Mail", "ann@example.com", "or", "call", "138", "0013", "8000"],
        "tags": ["O", "B-CONTACT", "O", "O", "B-CONTACT", "I-CONTACT", "I-CONTACT"],
    }
    records = [contact] * 6
    records += [{"tokens": ["Alice", "visited", "Paris"], "tags": ["B-PER", "O", "B-LOC"]} for _ in range(6)]
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    data = load_token_classification_data(DataSpec(train=str(path), mask_personal_data="all"))
    tokens = [
        t for split in (data.train, data.validation, data.test) for sentence in split["tokens"] for t in sentence
    ]
    assert "[EMAIL]" in tokens and "[PHONE]" in tokens and "8000" not in tokens
    assert data.summary["masked"] == {"email": 6, "phone": 6, "id": 0, "card": 0, "url": 0}
    assert data.summary["entities_per_type"]["CONTACT"] == 12  # collapsing B-/I- tokens kept every entity
    for split in (data.train, data.validation, data.test):
        for sentence, tags in zip(split["tokens"], split["tags"], strict=True):
            assert len(sentence) == len(tags)
    assert sum(sum(c.values()) for c in data.summary["masked_per_split"].values()) == 12


def test_chat_masks_every_message_and_counts_per_split(tmp_path):
    path = tmp_path / "chat.jsonl"
    rows = [
        {
            "messages": [
                {"role": "system", "content": f"Agent id 078-05-112{i % 10}"},
                {"role": "user", "content": f"我的邮箱是user{i}@qq.com"},
                {"role": "assistant", "content": "Noted, see www.example.com/help"},
            ]
        }
        for i in range(20)
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    data = load_chat_data(DataSpec(train=str(path), mask_personal_data=["email", "id", "url"]))
    contents = [
        m["content"] for split in (data.train, data.validation, data.test) for c in split["messages"] for m in c
    ]
    assert not any("@" in c or "078-05" in c or "example.com" in c for c in contents)
    assert data.summary["masked"] == {"email": 20, "id": 20, "url": 20}
    assert sum(data.summary["masked_per_split"]["test"].values()) == 3 * data.summary["splits"]["test"]["examples"]


def test_unlabeled_texts_are_masked_and_counted(tmp_path):
    path = tmp_path / "unlabeled.txt"
    path.write_text("".join(f"note {i}: call 139 0013 9{i:03d}\n" for i in range(12)), encoding="utf-8")
    summary = {"masked": {"phone": 1}, "masked_per_split": {"train": {"phone": 1}}}
    texts = unlabeled_texts(DataSpec(train="a.csv", unlabeled=str(path), mask_personal_data=["phone"]), summary)
    assert texts[0] == "note 0: call [PHONE]" and len(texts) == 12
    assert summary["masked"] == {"phone": 13}
    assert summary["masked_per_split"]["unlabeled"] == {"phone": 12}


def test_the_sentence_names_kinds_and_splits():
    summary = {
        "masked": {"email": 1, "phone": 30, "id": 0},
        "masked_per_split": {"train": {"email": 1, "phone": 25, "id": 0}, "test": {"email": 0, "phone": 5, "id": 0}},
    }
    assert masked_sentence(summary) == (
        "Personal data masked before training: 1 e-mail address as [EMAIL], 30 phone numbers as [PHONE], "
        "no ID-card numbers; by split: train 26, test 5."
    )
    assert masked_sentence({}) is None


def test_mask_records_without_kinds_changes_nothing():
    texts = ["a@b.com"]
    assert mask_records(texts, None) == [{}]
    assert texts == ["a@b.com"]
