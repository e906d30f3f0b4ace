"""Share links: an unguessable token that opens a read-only demo of one finished model without logging in.

A token belongs to the owner of the model's job; only that owner lists or revokes it, and a revoked token answers
like one that never existed. A link may expire (its page then says so) and has a rate limit of its own, which the web
process enforces (ui/ratelimit.py); the store records both.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, DateTime, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from worker.records import utcnow
from worker.sidetables import Base, SqlStore

_SCHEMA_LOCK_KEY = 0x706C6173  # "plas"
TOKEN_BYTES = 24  # 192 bits: 32 URL-safe characters
MAX_EXPIRY = timedelta(days=365)
MAX_RATE_PER_MINUTE = 6000
_EXPIRY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hd]?)\s*$", re.IGNORECASE)


class ShareRow(Base):
    __tablename__ = "playground_shares"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Added later (filled in on older tables by add_missing_columns): NULL reads as off.
    names_training_file: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # NULL: never
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)  # NULL: the web process's default


@dataclass(frozen=True)
class Share:
    """One share link of one model."""

    token: str
    owner: str
    job_id: str
    created_at: datetime
    revoked_at: datetime | None = None
    names_training_file: bool = False  # the page says which file the model was trained on only when asked to
    expires_at: datetime | None = None  # naive UTC, like every time in the store; None: never
    rate_per_minute: int | None = None  # None: the web process's default (PLAYGROUND_SHARE_RATE_PER_MINUTE)

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and utcnow() >= self.expires_at

    @property
    def path(self) -> str:
        """The link's path on the web app."""
        return f"/demo/{self.token}"


class ShareStore(SqlStore):
    """Create, look up, list and revoke share tokens on the job store's database."""

    tables = (ShareRow.__table__,)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def create(
        self,
        owner: str,
        job_id: str,
        *,
        names_training_file: bool = False,
        expires_in: timedelta | None = None,
        rate_per_minute: int | None = None,
    ) -> Share:
        """A new token for `job_id`; the caller has checked that `owner` owns a finished model there."""
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_EXPIRY:
            raise ValueError(f"expires_in must be more than 0 and at most {MAX_EXPIRY.days} days, got {expires_in}")
        if rate_per_minute is not None and not 0 < rate_per_minute <= MAX_RATE_PER_MINUTE:
            raise ValueError(f"rate_per_minute must be 1 to {MAX_RATE_PER_MINUTE}, got {rate_per_minute}")
        now = utcnow()
        row = ShareRow(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            owner=owner,
            job_id=job_id,
            created_at=now,
            names_training_file=names_training_file,
            expires_at=now + expires_in if expires_in is not None else None,
            rate_per_minute=rate_per_minute,
        )
        with self._session() as s:
            s.add(row)
        return _share(row)

    def active(self, token: str) -> Share | None:
        """The share behind a token, or None when there is none, it was revoked or it has expired."""
        share = self.unrevoked(token)
        return share if share is not None and not share.expired else None

    def unrevoked(self, token: str) -> Share | None:
        """The share behind a token even once expired (so its page can say so); None when none or revoked."""
        if not token or len(token) > 64:
            return None
        with self._session(write=False) as s:
            row = s.get(ShareRow, token)
            return _share(row) if row is not None and row.revoked_at is None else None

    def list(self, owner: str, *, include_revoked: bool = False) -> list[Share]:
        """The owner's links, newest first."""
        query = select(ShareRow).where(ShareRow.owner == owner).order_by(ShareRow.created_at.desc())
        if not include_revoked:
            query = query.where(ShareRow.revoked_at.is_(None))
        with self._session(write=False) as s:
            return [_share(row) for row in s.execute(query).scalars()]

    def revoke(self, token: str, owner: str) -> bool:
        """Revoke the owner's token; False when it is not theirs or already revoked."""
        with self._session() as s:
            result = s.execute(
                update(ShareRow)
                .where(ShareRow.token == token, ShareRow.owner == owner, ShareRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def revoke_job(self, job_id: str) -> int:
        """Revoke every link to one job (its record is about to go); how many were still active."""
        with self._session() as s:
            result = s.execute(
                update(ShareRow)
                .where(ShareRow.job_id == job_id, ShareRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return result.rowcount


def _share(row: ShareRow) -> Share:
    return Share(
        token=row.token,
        owner=row.owner,
        job_id=row.job_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        names_training_file=bool(row.names_training_file),
        expires_at=row.expires_at,
        rate_per_minute=row.rate_per_minute,
    )


def parse_expires_in(value: str | float | None) -> timedelta | None:
    """A link's lifetime from '12h', '7d' or a number of hours; None (never expires) for empty, 0 or 'never'."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "never")):
        return None
    if isinstance(value, int | float):
        amount, unit = float(value), "h"
    else:
        match = _EXPIRY.match(value)
        if match is None:
            raise ValueError(f"expires_in {value!r} is not a lifetime; write hours or days, like '12h' or '7d'")
        amount, unit = float(match[1]), (match[2] or "h").lower()
    if amount == 0:
        return None
    lifetime = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if not timedelta(0) < lifetime <= MAX_EXPIRY:
        raise ValueError(f"expires_in {value!r} is out of range; a link lives at most {MAX_EXPIRY.days} days")
    return lifetime
