"""API tokens on the job store's database, on SQLite and on PostgreSQL: only a hash is kept, a token acts for its
owner until revoked, and only its owner lists or revokes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from worker.tokens import LAST_USED_EVERY, PREFIX, ApiTokenStore, token_hash


def test_a_token_acts_for_its_owner_until_revoked_and_only_its_owner_lists_or_revokes_it(engine):
    tokens = ApiTokenStore(engine)
    tokens.create_schema()
    first, secret = tokens.create("alice", "laptop")
    second, other = tokens.create("alice")
    assert secret.startswith(PREFIX) and len(secret) >= len(PREFIX) + 43 and secret != other
    assert (first.owner, first.name, first.revoked, first.last_used_at) == ("alice", "laptop", False, None)
    assert tokens.owner_of(secret) == "alice" and tokens.owner_of(other) == "alice"
    assert [t.id for t in tokens.list("alice")] == [second.id, first.id]
    assert tokens.list("bob") == []
    assert not tokens.revoke(first.id, "bob")  # someone else's token cannot be switched off
    assert tokens.owner_of(secret) == "alice"
    assert tokens.revoke(first.id, "alice") and not tokens.revoke(first.id, "alice")
    assert tokens.owner_of(secret) is None and tokens.owner_of(other) == "alice"
    assert [t.id for t in tokens.list("alice")] == [second.id]
    assert {t.id: t.revoked for t in tokens.list("alice", include_revoked=True)} == {first.id: True, second.id: False}
    for wrong in ("", "fp-nope", secret + "x", secret[:-1], "x" * 5000):
        assert tokens.owner_of(wrong) is None


def test_the_store_keeps_a_hash_and_never_the_secret(engine):
    tokens = ApiTokenStore(engine)
    tokens.create_schema()
    token, secret = tokens.create("alice", "ci")
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(text("SELECT * FROM api_tokens"))]
    cells = [str(cell) for row in rows for cell in row]
    assert token_hash(secret) in cells and len(token_hash(secret)) == 64
    assert not any(secret in cell or secret[len(PREFIX) :] in cell for cell in cells)
    assert token.to_dict().keys() >= {"id", "name", "created_at", "last_used_at", "revoked"}
    assert "token" not in token.to_dict() and secret not in str(token.to_dict())


def test_last_use_is_recorded_but_not_on_every_call(engine):
    tokens = ApiTokenStore(engine)
    tokens.create_schema()
    token, secret = tokens.create("alice")
    tokens.owner_of(secret)
    (used,) = tokens.list("alice")
    assert used.last_used_at is not None and used.last_used_at >= token.created_at
    tokens.owner_of(secret)
    assert tokens.list("alice")[0].last_used_at == used.last_used_at  # within LAST_USED_EVERY: no write
    earlier = used.last_used_at - LAST_USED_EVERY - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET last_used_at = :at"), {"at": earlier})
    tokens.owner_of(secret)
    assert tokens.list("alice")[0].last_used_at > earlier


def test_a_token_needs_an_owner_and_a_short_name(engine):
    tokens = ApiTokenStore(engine)
    tokens.create_schema()
    with pytest.raises(ValueError, match="owner must be 1 to 200 characters"):
        tokens.create("  ")
    with pytest.raises(ValueError, match="token name is 101 characters; the limit is 100"):
        tokens.create("alice", "n" * 101)
