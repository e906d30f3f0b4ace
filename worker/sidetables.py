"""Every table on the job store's database (jobs and events, uploads, share links): one declarative base, one
store base class that creates a store's tables and opens its sessions, and the engine they all share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Table, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session


class Base(DeclarativeBase):
    """The declarative base of every row class on the job store's database."""


class SqlStore:
    """Base of a store on the job store's engine; subclasses set `tables` and `schema_lock_key`."""

    tables: ClassVar[tuple[Table, ...]]  # the store's own tables: create_schema makes these and no others
    schema_lock_key: ClassVar[int]  # PostgreSQL advisory lock that serialises CREATE TABLE between processes

    def __init__(self, engine: Engine):
        self.engine = engine

    def create_schema(self) -> None:
        """Create the tables if they are missing; safe when several processes start at once."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.schema_lock_key})
            Base.metadata.create_all(conn, tables=list(self.tables))
            add_missing_columns(conn, self.tables)

    @contextmanager
    def _session(self, *, write: bool = True) -> Iterator[Session]:
        # Reads carry the read-only option: on SQLite they then take no write lock (see `make_engine` below).
        engine = self.engine  # the job store (re)connects here after a fork
        bind = engine if write else engine.execution_options(playground_read_only=True)
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session


def add_missing_columns(conn: Connection, tables: tuple[Table, ...]) -> None:
    """Give a table made by an older version the nullable columns added since (create_all leaves it as it was)."""
    inspector = inspect(conn)
    for table in tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} is new and not nullable: it needs a migration")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def make_engine(url: str) -> Engine:
    """An engine for the job store's URL; on SQLite with WAL, and write transactions that lock up front."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Driver-level autocommit, so that the "begin" hook below decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # A writing transaction takes the write lock up front (IMMEDIATE): it can then never fail with "database is
        # locked" halfway, as the writers of several processes queue on the busy timeout instead. A reading one
        # takes no lock (DEFERRED): in WAL mode it reads a snapshot, so a UI polling job records never holds up
        # a worker's claim or heartbeat.
        read_only = conn.get_execution_options().get("playground_read_only", False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine
