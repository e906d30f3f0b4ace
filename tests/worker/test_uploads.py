"""Uploaded datasets, kept per owner on the job store's database, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from engine.errors import DataError
from worker.uploads import DatasetStore


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("review_body,verdict\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(30)))
    return path


def test_datasets_are_kept_per_owner_under_a_safe_name(engine, home: Path, csv: Path):
    store = DatasetStore(engine, home)
    store.create_schema()
    mine = store.add("alice", csv, "../../etc/passwd;rm -rf.csv", format="csv", rows=30, columns=["a", "b"])
    assert mine.path.parent.parent == home / "uploads" and mine.path.name == "passwd_rm -rf.csv"
    assert mine.path.read_bytes() == csv.read_bytes()
    assert store.get(mine.id, "alice") == mine
    assert store.get(mine.id, "bob") is None
    assert [d.id for d in store.list("alice")] == [mine.id] and store.list("bob") == []
    assert store.owner_of_path(mine.path) == "alice" and store.owner_of_path(csv) is None
    store.remember_columns(mine.id, "bob", "x", "y")  # not bob's: nothing changes
    store.remember_columns(mine.id, "alice", "a", "b")
    assert (store.get(mine.id, "alice").text_column, store.get(mine.id, "alice").label_column) == ("a", "b")


def test_each_store_creates_only_its_own_tables_on_the_shared_base(engine, home: Path):
    jobs = {"playground_jobs", "playground_job_events"}
    assert set(inspect(engine).get_table_names()) == jobs  # the job store made its two tables, not the uploads'
    DatasetStore(engine, home).create_schema()
    DatasetStore(engine, home).create_schema()  # idempotent: every process calls it at start
    assert set(inspect(engine).get_table_names()) == jobs | {"playground_datasets"}


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_register_reads_the_file_records_its_task_format_and_keeps_nothing_unreadable(engine, home: Path, tmp_path):
    store = DatasetStore(engine, home)
    store.create_schema()
    # A Latin-1 CSV with accents: rows and columns come from the decoded table, the bytes are kept as they were.
    latin = tmp_path / "critiques.csv"
    latin.write_bytes(
        b"avis,note\n"
        + "".join(f"Très bon café numéro {i} à Noël,{'ab'[i % 2]}\n" for i in range(12)).encode("latin-1")
    )
    dataset, table = store.register("alice", latin)
    assert (dataset.name, dataset.format, dataset.rows, dataset.columns) == (
        "critiques.csv",
        "csv",
        12,
        ["avis", "note"],
    )
    assert table.frame["avis"][0] == "Très bon café numéro 0 à Noël"
    assert dataset.path.read_bytes() == latin.read_bytes()
    # A CoNLL file is recorded in the tagging task's own format, not as the table it also parses as.
    conll, _ = store.register("alice", FIXTURES / "ner" / "en.conll")
    assert conll.format == "conll"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="broken.parquet"):
        store.register("alice", broken)
    assert [d.name for d in store.list("alice")] == ["en.conll", "critiques.csv"]
