"""Readiness: can this process use its job store and its broker right now?

The web app answers GET /readyz with `readiness(...)`; a worker container's healthcheck runs `python -m worker.health`,
which makes the same checks and exits 0 (ready) or 1. Liveness (/healthz) stays a bare "the process answers".
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from worker.settings import Settings
from worker.store import JobRow, JobStore

# A healthcheck that hangs is as bad as one that fails: each check gets this long before it counts as failed.
CHECK_SECONDS = 3.0
OK = "ok"


def readiness(store: JobStore, settings: Settings, *, timeout: float = CHECK_SECONDS) -> tuple[bool, dict[str, str]]:
    """Whether the job store and the broker answer; the body names each one ("ok" or what went wrong)."""
    checks = {"store": lambda: check_store(store), "broker": lambda: check_broker(settings, timeout)}
    results = {name: _within(timeout, name, check) for name, check in checks.items()}
    ready = all(value == OK for value in results.values())
    return ready, {"status": "ready" if ready else "not ready", **results}


def check_store(store: JobStore) -> str:
    """Read one job id: the database answers and the jobs table exists."""
    # The read-only option keeps SQLite from taking its write lock (see worker/sidetables.make_engine).
    engine = store.engine.execution_options(playground_read_only=True)
    try:
        with engine.connect() as conn:
            conn.execute(select(JobRow.id).limit(1)).all()
    except SQLAlchemyError as exc:
        return f"job store unreachable: {_first_line(exc)}"
    return OK


def check_broker(settings: Settings, timeout: float = CHECK_SECONDS) -> str:
    """The embedded broker's file is usable, or the broker server answers a ping."""
    if settings.embedded:
        return _check_embedded(Path(settings.broker.removeprefix("sqlite:///")))
    if settings.broker.startswith(("redis://", "rediss://", "unix://")):
        return _check_redis(settings.broker, timeout)
    return _check_kombu(settings.broker, timeout)


def _check_embedded(path: Path) -> str:
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"embedded broker: data dir {folder} is missing or not writable"
    if not path.exists():
        return OK  # no message sent yet: kombu creates the file on first use, in the writable folder checked above
    try:
        with sqlite3.connect(path, timeout=1) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return f"embedded broker {path} unreadable: {exc}"
    return OK


def _check_redis(url: str, timeout: float) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"broker unreachable: {_first_line(exc)}"
    finally:
        client.close()
    return OK


def _check_kombu(url: str, timeout: float) -> str:
    from kombu import Connection
    from kombu.exceptions import KombuError

    conn = Connection(url, connect_timeout=timeout)
    try:
        conn.ensure_connection(max_retries=0)  # one try: a retry would outlast the healthcheck
    except (OSError, KombuError, *conn.connection_errors) as exc:
        return f"broker unreachable: {_first_line(exc)}"
    finally:
        conn.release()
    return OK


def _within(seconds: float, name: str, check: Callable[[], str]) -> str:
    # A blackholed host can hold a TCP connect far past the driver's own timeout; the check's thread is left to
    # finish on its own while the answer goes out on time.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"readyz-{name}")
    try:
        return pool.submit(check).result(timeout=seconds + 1)
    except FutureTimeout:
        return f"{name} did not answer within {seconds + 1:g} s"
    finally:
        pool.shutdown(wait=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def main() -> int:
    """`python -m worker.health`: print the readiness body; exit 0 when ready, 1 when not (a container healthcheck)."""
    settings = Settings.from_env()
    store = JobStore(settings.database, settings.home)
    try:
        ready, body = readiness(store, settings)
    finally:
        store.close()
    print(" ".join(f"{key}={value}" for key, value in body.items()), flush=True)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
