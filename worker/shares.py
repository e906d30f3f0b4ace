"""Share links: an unguessable token that opens a read-only demo of one finished model without logging in.

A token belongs to the owner of the model's job; only that owner lists or revokes it, and a revoked token answers
like one that never existed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from worker.records import utcnow
from worker.sidetables import Base, SqlStore

_SCHEMA_LOCK_KEY = 0x706C6173  # "plas"
TOKEN_BYTES = 24  # 192 bits: 32 URL-safe characters


class ShareRow(Base):
    __tablename__ = "playground_shares"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Added later (filled in on older tables by add_missing_columns): NULL reads as off.
    names_training_file: Mapped[bool | None] = mapped_column(Boolean)


@dataclass(frozen=True)
class Share:
    """One share link of one model."""

    token: str
    owner: str
    job_id: str
    created_at: datetime
    revoked_at: datetime | None = None
    names_training_file: bool = False  # the page says which file the model was trained on only when asked to

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def path(self) -> str:
        """The link's path on the web app."""
        return f"/demo/{self.token}"


class ShareStore(SqlStore):
    """Create, look up, list and revoke share tokens on the job store's database."""

    tables = (ShareRow.__table__,)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def create(self, owner: str, job_id: str, *, names_training_file: bool = False) -> Share:
        """A new token for `job_id`; the caller has checked that `owner` owns a finished model there."""
        row = ShareRow(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            owner=owner,
            job_id=job_id,
            created_at=utcnow(),
            names_training_file=names_training_file,
        )
        with self._session() as s:
            s.add(row)
        return _share(row)

    def active(self, token: str) -> Share | None:
        """The share behind a token, or None when there is none or it was revoked."""
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


def _share(row: ShareRow) -> Share:
    return Share(
        token=row.token,
        owner=row.owner,
        job_id=row.job_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        names_training_file=bool(row.names_training_file),
    )
