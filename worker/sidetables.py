"""Tables that live beside the job store on its database (uploads, share links): schema creation and sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


class SideTableStore:
    """Base of a store whose tables share the job store's engine; subclasses set `metadata` and `schema_lock_key`."""

    metadata: MetaData
    schema_lock_key: int  # PostgreSQL advisory lock that serialises CREATE TABLE between processes starting at once

    def __init__(self, engine: Engine):
        self.engine = engine

    def create_schema(self) -> None:
        """Create the tables if they are missing; safe when several processes start at once."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.schema_lock_key})
            self.metadata.create_all(conn)

    @contextmanager
    def _session(self, *, write: bool = True) -> Iterator[Session]:
        # Reads go through the job store's read-only option: on SQLite they then take no write lock (see store.py).
        bind = self.engine if write else self.engine.execution_options(playground_read_only=True)
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session
