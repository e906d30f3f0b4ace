"""Per-owner datasets and share links, and the access rules every spec from the UI or REST goes through."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from engine.errors import DataError
from ui.context import AccessError, AppContext, Users
from worker.settings import Settings
from worker.shares import ShareStore
from worker.store import JobStore
from worker.uploads import DatasetStore


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, home: Path):
    """The job store's engine on SQLite, and on PostgreSQL in a throw-away schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'jobs.sqlite'}"
    else:
        schema = f"ui_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL)
        try:
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        except OperationalError as exc:
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    store = JobStore(url, home)
    store.create_schema()
    yield store.engine
    store.close()
    if request.param == "postgresql":
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("review_body,verdict\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(30)))
    return path


def context(home: Path, *users: str) -> AppContext:
    settings = Settings(home=home, queue=f"test-{uuid.uuid4().hex[:8]}")
    return AppContext(settings, Users({user: "pw" for user in users}))


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


def test_share_tokens_are_unguessable_listed_and_revocable_by_their_owner_only(engine):
    shares = ShareStore(engine)
    shares.create_schema()
    first, second = shares.create("alice", "job1"), shares.create("alice", "job2")
    assert len(first.token) >= 32 and first.token != second.token
    assert shares.active(first.token) == first
    assert [s.token for s in shares.list("alice")] == [second.token, first.token]
    assert shares.list("bob") == []
    assert not shares.revoke(first.token, "bob")
    assert shares.revoke(first.token, "alice")
    assert shares.active(first.token) is None and not shares.revoke(first.token, "alice")
    assert [s.token for s in shares.list("alice")] == [second.token]
    assert shares.active("no-such-token") is None and shares.active("x" * 500) is None


def test_with_several_users_only_your_own_uploads_can_be_trained_on(home: Path, csv: Path):
    ctx = context(home, "alice", "bob")
    try:
        upload = ctx.datasets.add("alice", csv, "reviews.csv", format="csv", rows=30, columns=["a", "b"])
        spec = ctx.prepare_spec({"data": {"train": upload.id}}, "alice")
        assert spec.data.train == str(upload.path)
        with pytest.raises(AccessError, match="no dataset"):
            ctx.prepare_spec({"data": {"train": upload.id}}, "bob")
        with pytest.raises(AccessError, match="not one of your uploaded datasets"):
            ctx.prepare_spec({"data": {"train": str(upload.path)}}, "bob")
        with pytest.raises(AccessError, match="not one of your uploaded datasets"):
            ctx.prepare_spec({"data": {"train": str(csv)}}, "alice")  # any other file on the server
        with pytest.raises(AccessError, match="local folders cannot be used"):
            ctx.prepare_spec({"base_model": str(home), "data": {"train": upload.id}}, "alice")
        with pytest.raises(ValueError, match="not logged in"):
            ctx.owner(None)
        assert ctx.owner("bob") == "bob"
    finally:
        ctx.close()


def test_single_user_mode_takes_server_paths_and_reports_data_errors_before_queueing(home: Path, csv: Path):
    ctx = context(home)
    try:
        assert ctx.owner(None) == ctx.local_owner
        spec = ctx.prepare_spec({"data": {"train": str(csv)}}, ctx.local_owner)
        assert spec.data.train == str(csv.resolve())
        with pytest.raises(DataError, match="not found on the server"):
            ctx.prepare_spec({"data": {"train": str(csv.parent / "missing.csv")}}, ctx.local_owner)
        one_label = csv.parent / "one.csv"
        one_label.write_text("text,label\n" + "a,x\n" * 10)
        with pytest.raises(DataError, match="only one label"):
            ctx.submit({"data": {"train": str(one_label)}}, ctx.local_owner)
        assert ctx.jobs.list_jobs() == []
    finally:
        ctx.close()
