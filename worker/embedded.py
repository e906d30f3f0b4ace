"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file under the data dir, tuned for several processes.

Why this and not kombu's filesystem transport: a filesystem consumer lists the folder and moves a message file out
while the producer may still be writing it (it is created empty, then written), so a fast consumer can read half a
message; and the move falls back to copy-and-delete when the temp dir is on another file system, which lets two
consumers take the same message. The SQLAlchemy transport takes a message inside `BEGIN IMMEDIATE` (SQLite's write
lock), so one message goes to exactly one consumer and only committed messages are ever seen. What it lacks is
fanout, hence no Celery remote control on it: hard cancel does not depend on it (see worker/runtime.py).
"""

from __future__ import annotations

from kombu.transport import sqlalchemy as kombu_sqlalchemy
from sqlalchemy import create_engine, event

TRANSPORT = "worker.embedded:Transport"


class Channel(kombu_sqlalchemy.Channel):
    """A kombu SQLAlchemy channel whose SQLite engine waits for locks instead of failing with 'database is locked'."""

    def _engine_from_config(self):
        engine = create_engine(self.connection.client.hostname, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # producers never wait for a consumer's read
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine


class Transport(kombu_sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, polling four times a second (the default is once) for a snappier queue."""

    Channel = Channel
    polling_interval = 0.25
