"""Share links on the job store's database, on SQLite and on PostgreSQL: unguessable, revocable by their owner."""

from __future__ import annotations

import pytest

from worker.shares import ShareStore
from worker.store import JobStore


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


def test_a_share_table_from_an_older_version_gets_the_new_column_and_old_links_stay_private(engine):
    from sqlalchemy import text

    with engine.begin() as conn:  # the table as the first version made it, with one link in it
        conn.execute(text("DROP TABLE IF EXISTS playground_shares"))
        conn.execute(
            text(
                "CREATE TABLE playground_shares (token VARCHAR(64) PRIMARY KEY, owner VARCHAR(200), "
                "job_id VARCHAR(32), created_at TIMESTAMP, revoked_at TIMESTAMP)"
            )
        )
        conn.execute(
            text("INSERT INTO playground_shares VALUES ('old-token', 'alice', 'job1', '2026-01-02 03:04:05', NULL)")
        )
    shares = ShareStore(engine)
    shares.create_schema()
    shares.create_schema()  # twice: the column is added once
    old = shares.active("old-token")
    assert old is not None and old.names_training_file is False  # made before the option: the file stays unnamed
    named = shares.create("alice", "job2", names_training_file=True)
    assert shares.active(named.token).names_training_file is True
    assert shares.create("alice", "job3").names_training_file is False  # off unless asked


def test_a_link_may_expire_and_then_only_says_so(engine):
    from datetime import timedelta

    from sqlalchemy import update

    from worker.records import utcnow
    from worker.shares import ShareRow

    shares = ShareStore(engine)
    shares.create_schema()
    forever = shares.create("alice", "job1")
    daily = shares.create("alice", "job1", expires_in=timedelta(days=1), rate_per_minute=5)
    assert forever.expires_at is None and forever.rate_per_minute is None and not forever.expired
    assert timedelta(hours=23, minutes=59) < daily.expires_at - daily.created_at <= timedelta(days=1)
    assert shares.active(daily.token) == daily and shares.active(daily.token).rate_per_minute == 5
    with engine.begin() as conn:  # a day later
        conn.execute(update(ShareRow).where(ShareRow.token == daily.token).values(expires_at=utcnow()))
    assert shares.active(daily.token) is None  # an expired link opens nothing
    gone = shares.unrevoked(daily.token)
    assert gone is not None and gone.expired and not gone.active  # but its page can say it expired
    assert [s.token for s in shares.list("alice")] == [daily.token, forever.token]  # its owner still sees it
    assert shares.revoke(daily.token, "alice") and shares.unrevoked(daily.token) is None
    with pytest.raises(ValueError, match="at most 365 days"):
        shares.create("alice", "job1", expires_in=timedelta(days=400))
    with pytest.raises(ValueError, match="rate_per_minute must be 1 to"):
        shares.create("alice", "job1", rate_per_minute=0)


def test_a_share_table_from_before_expiry_gets_its_columns_and_old_links_never_expire(engine):
    from sqlalchemy import inspect, text

    with engine.begin() as conn:  # the table as the version before expiry made it
        conn.execute(text("DROP TABLE IF EXISTS playground_shares"))
        conn.execute(
            text(
                "CREATE TABLE playground_shares (token VARCHAR(64) PRIMARY KEY, owner VARCHAR(200), "
                "job_id VARCHAR(32), created_at TIMESTAMP, revoked_at TIMESTAMP, names_training_file BOOLEAN)"
            )
        )
        conn.execute(
            text("INSERT INTO playground_shares VALUES ('old-token', 'alice', 'job1', '2026-01-02 03:04', NULL, NULL)")
        )
    shares = ShareStore(engine)
    shares.create_schema()
    shares.create_schema()
    columns = {column["name"] for column in inspect(engine).get_columns("playground_shares")}
    assert {"expires_at", "rate_per_minute"} <= columns
    old = shares.active("old-token")
    assert old is not None and old.expires_at is None and old.rate_per_minute is None and not old.expired


def test_deleting_jobs_revokes_their_links_through_one_share_store_whose_table_is_made_once(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
):
    from worker.api import Jobs
    from worker.records import SUCCEEDED
    from worker.settings import Settings

    made: list[ShareStore] = []
    real_create_schema = ShareStore.create_schema
    monkeypatch.setattr(ShareStore, "create_schema", lambda self: (made.append(self), real_create_schema(self))[1])
    jobs = Jobs(Settings.from_env({"PLAYGROUND_HOME": str(store.home), "PLAYGROUND_DATABASE_URL": store.url}))
    try:
        ids = [f"job{i:013d}" for i in range(3)]
        for job_id in ids:
            jobs.store.create(job_id=job_id, owner="alice", kind="train", spec={}, queue="q", max_attempts=1)
            claimed = jobs.store.claim(job_id, task_id=f"{job_id}.1", host="h", name="n", pid=1)
            assert jobs.store.finish(job_id, claimed.attempts, SUCCEEDED, message="done")
        links = [jobs.shares.create("alice", job_id) for job_id in ids]
        jobs.delete(ids[0])
        jobs.close()  # the job store opens a new engine on its next use: the share store goes with it
        jobs.delete(ids[1])
        assert jobs.shares.engine is jobs.store.engine
        assert len(made) == 1 and made[0] is jobs.shares
        assert [share.job_id for share in jobs.shares.list("alice")] == [ids[2]]
        assert jobs.shares.active(links[0].token) is None and jobs.shares.active(links[1].token) is None
    finally:
        jobs.close()


@pytest.mark.parametrize(
    ("given", "hours"),
    [(None, None), ("", None), ("never", None), (0, None), ("12h", 12), ("7d", 168), ("1.5", 1.5), (48, 48)],
)
def test_expires_in_reads_hours_and_days(given, hours):
    from datetime import timedelta

    from worker.shares import parse_expires_in

    assert parse_expires_in(given) == (None if hours is None else timedelta(hours=hours))


@pytest.mark.parametrize("given", ["tomorrow", "-1h", "3w", "400d", -2])
def test_expires_in_refuses_what_is_not_a_lifetime(given):
    from worker.shares import parse_expires_in

    with pytest.raises(ValueError, match="expires_in"):
        parse_expires_in(given)
