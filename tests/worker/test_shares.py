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
