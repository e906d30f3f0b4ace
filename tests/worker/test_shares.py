"""Share links on the job store's database, on SQLite and on PostgreSQL: unguessable, revocable by their owner."""

from __future__ import annotations

from worker.shares import ShareStore


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
