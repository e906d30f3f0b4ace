"""API tokens: a secret a program sends as `Authorization: Bearer <token>` instead of a user's password.

The secret is shown once, when it is made; the store keeps only its SHA-256, so a copy of the database opens nothing.
A token acts for its owner until that owner revokes it; a revoked token answers like one that never existed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from worker.records import iso, utcnow
from worker.sidetables import Base, SqlStore

_SCHEMA_LOCK_KEY = 0x706C6174  # "plat"
PREFIX = "fp-"  # says what the secret is for, in a config file or a secret scanner's report
TOKEN_BYTES = 32  # 256 bits: 43 URL-safe characters after the prefix
MAX_NAME_CHARS = 100
# A token's last use is written at most this often: a client calling in a loop must not make every request a write.
LAST_USED_EVERY = timedelta(minutes=1)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


@dataclass(frozen=True)
class ApiToken:
    """One API token as its owner sees it: never the secret, which only `ApiTokenStore.create` hands out."""

    id: str
    owner: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for the CLI and the REST API."""
        return {
            "id": self.id,
            "owner": self.owner,
            "name": self.name,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked": self.revoked,
            "revoked_at": iso(self.revoked_at),
        }


def token_hash(secret: str) -> str:
    """The SHA-256 of a token, as the store keeps it (a random 256-bit secret needs no salt or slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenStore(SqlStore):
    """Create, check, list and revoke API tokens on the job store's database."""

    tables = (ApiTokenRow.__table__,)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def create(self, owner: str, name: str = "") -> tuple[ApiToken, str]:
        """A new token for `owner`: its record and the secret, which is not kept and cannot be shown again."""
        owner, name = owner.strip(), name.strip()
        if not owner or len(owner) > 200:
            raise ValueError(f"owner must be 1 to 200 characters, got {owner!r}")
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"token name is {len(name)} characters; the limit is {MAX_NAME_CHARS}")
        secret = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        row = ApiTokenRow(
            id=secrets.token_hex(8), token_hash=token_hash(secret), owner=owner, name=name, created_at=utcnow()
        )
        with self._session() as s:
            s.add(row)
        return _token(row), secret

    def owner_of(self, secret: str) -> str | None:
        """The owner a token acts for, or None when it is unknown or revoked; notes when it was last used."""
        if not secret or len(secret) > 200:
            return None
        digest = token_hash(secret)
        with self._session(write=False) as s:
            row = s.execute(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            owner, last_used = row.owner, row.last_used_at
        now = utcnow()
        if last_used is None or now - last_used > LAST_USED_EVERY:
            with self._session() as s:
                s.execute(update(ApiTokenRow).where(ApiTokenRow.token_hash == digest).values(last_used_at=now))
        return owner

    def list(self, owner: str, *, include_revoked: bool = False) -> list[ApiToken]:
        """The owner's tokens, newest first."""
        query = select(ApiTokenRow).where(ApiTokenRow.owner == owner).order_by(ApiTokenRow.created_at.desc())
        if not include_revoked:
            query = query.where(ApiTokenRow.revoked_at.is_(None))
        with self._session(write=False) as s:
            return [_token(row) for row in s.execute(query).scalars()]

    def revoke(self, token_id: str, owner: str) -> bool:
        """Revoke the owner's token; False when it is not theirs or already revoked."""
        with self._session() as s:
            result = s.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.owner == owner, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        owner=row.owner,
        name=row.name or "",
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
