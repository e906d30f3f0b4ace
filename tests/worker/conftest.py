"""Fixtures of the worker tests: a PostgreSQL job store in a throw-away schema, the job store's engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from worker.store import JobStore

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema in the `test` database (dropped afterwards)."""
    schema = f"jobs_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A job store with its data dir under tmp_path, on SQLite and on PostgreSQL."""
    home = tmp_path / "home"
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{home}/jobs.sqlite"
    jobs = JobStore(url, home)
    jobs.create_schema()
    yield jobs
    jobs.close()


@pytest.fixture
def engine(store: JobStore) -> Engine:
    """The job store's engine, which the uploads and share stores use, on SQLite and on PostgreSQL."""
    return store.engine
