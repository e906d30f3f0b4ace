"""Scripts, unknown-token rates and the model advice, on Chinese, Japanese, accented and mixed texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.language import (
    MULTILINGUAL_MODEL,
    advise,
    better_model,
    language_summary,
    script_of,
    script_shares,
    unknown_token_rate,
)
from engine.spec import DataSpec
from engine.tasks.text_classification.data import inspect_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_scripts_are_counted_per_letter_not_per_character():
    assert [script_of(c) for c in "中あア한éЖ1 ，"] == [
        "Han",
        "Kana",
        "Kana",
        "Hangul",
        "Latin",
        "Cyrillic",
        None,
        None,
        None,
    ]
    shares = script_shares(["这家店很好 very good", "東京タワーに行きました", "Ça coûte 12 €"])
    assert shares == {"Latin": 0.484, "Han": 0.258, "Kana": 0.258}  # 15 Latin letters, 8 Han, 8 kana
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    assert script_shares(["123", "!!"]) == {}


def test_the_english_encoder_misses_most_chinese_characters_and_none_of_an_english_review():
    from transformers import AutoTokenizer

    from engine.catalog import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    chinese = ["这家店的衣服质量很好，物流也快，五星好评！", "鞋子磨脚，退货流程特别麻烦，不会再买了。"]
    assert unknown_token_rate(tokenizer, chinese) > 0.3
    assert unknown_token_rate(tokenizer, ["A tender, funny film; the café scene is wonderful."]) == 0.0
    assert unknown_token_rate(object(), chinese) is None  # a tokenizer without an unknown token


def test_chinese_data_gets_the_multilingual_model_advised_first_in_its_summary():
    summary = inspect_data(DataSpec(train=str(FIXTURES / "zh" / "reviews.csv")))
    assert summary["language"]["scripts"]["Han"] > 0.9 and "unknown_token_rate" not in summary["language"]
    assert advise(summary, "text-classification", "minilm-l6") == MULTILINGUAL_MODEL
    assert summary["suggested_base_model"] == MULTILINGUAL_MODEL
    assert summary["notices"][0].startswith("minilm-l6 is English (the texts are Han 9")
    assert "pick base model gemma3-270m (multilingual) instead" in summary["notices"][0]
    # Already the multilingual model, or English data: no advice.
    assert advise(dict(summary, notices=[]), "text-classification", MULTILINGUAL_MODEL) is None
    english = inspect_data(DataSpec(train=str(FIXTURES / "reviews.csv")))
    assert advise(english, "text-classification", "minilm-l6") is None
    assert not any("multilingual" in notice for notice in english["notices"])


def test_many_unknown_tokens_alone_are_enough_for_advice():
    section = language_summary(["ok"], tokenizer=None)
    assert better_model(
        {**section, "unknown_token_rate": 0.2}, "minilm-l6", ["text-classification"], "text-classification"
    )
    assert not better_model(
        {**section, "unknown_token_rate": 0.01}, "minilm-l6", ["text-classification"], "text-classification"
    )
    assert not better_model({**section, "unknown_token_rate": 0.2}, "minilm-l6", ["chat"], "text-classification")


def test_a_job_that_names_no_base_model_gets_the_one_that_fits_its_texts():
    from engine.language import fitting_base_model

    chinese = DataSpec(train=str(FIXTURES / "zh" / "reviews.csv"))
    model, why = fitting_base_model("text-classification", chinese)
    assert model == MULTILINGUAL_MODEL
    assert why.startswith("base model gemma3-270m chosen for this data (Han 9") and "minilm-l6 reads English" in why
    tags = DataSpec(train=str(FIXTURES / "ner" / "zh.jsonl"))
    assert fitting_base_model("token-classification", tags)[0] == MULTILINGUAL_MODEL
    assert fitting_base_model("text-classification", DataSpec(train=str(FIXTURES / "reviews.csv"))) == (
        "minilm-l6",
        None,
    )


def test_checking_a_catalog_model_does_not_convert_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from engine import packaged
    from engine.catalog import check_model
    from engine.errors import ModelNotFoundError

    monkeypatch.setenv("PLAYGROUND_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(packaged, "convert_gguf", lambda *_: pytest.fail("a submit must not wait for a conversion"))
    check_model("gemma3-270m", task="token-classification")
    with pytest.raises(ModelNotFoundError, match="supports chat, not 'token-classification'"):
        check_model("smollm2-135m-instruct", task="token-classification")


def test_lengths_without_a_tokenizer_are_estimated_in_tokens_for_every_script():
    from engine.language import estimated_tokens

    assert estimated_tokens("这件羽绒服质量很好，物流也很快。") == 16  # a character each, punctuation too
    assert estimated_tokens("A tender, funny film about two brothers.") == 10  # 7 words x 1.3
    assert estimated_tokens("我买了 iPhone 15，很好用") == 7 + 3  # 7 CJK characters (the comma too), 2 other words
    assert estimated_tokens("") == 0
