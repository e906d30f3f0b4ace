"""Uploaded datasets, kept per owner: the file under the data dir, its record (and column mapping) in the job store.

Files live in `<data dir>/uploads/<dataset id>/<file name>`, so every worker that mounts the data dir can read them;
the record says who owns the file, so nobody can list, pick or train on another owner's upload.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import JSON, DateTime, Integer, String, select, update
from sqlalchemy import delete as sa_delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from engine.tabular import Table, read_table
from engine.tasks import detect_task, file_format_of, get_task
from worker.artifacts import ArtifactStore
from worker.records import utcnow
from worker.sidetables import Base, SqlStore

log = logging.getLogger(__name__)

UPLOADS = "uploads"
_SCHEMA_LOCK_KEY = 0x706C6175  # "plau": serialises CREATE TABLE between processes starting at once on PostgreSQL
_UNSAFE = re.compile(r"[^\w.\- ]+")
_ID = re.compile(r"^[0-9a-f]{16}$")


class DatasetRow(Base):
    __tablename__ = "playground_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(500))  # relative to the data dir, like a job's artifact folder
    format: Mapped[str | None] = mapped_column(String(20))
    rows: Mapped[int | None] = mapped_column(Integer)
    record_unit: Mapped[str | None] = mapped_column(String(40))  # what `rows` counts: rows, sentences; NULL: rows
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list | None] = mapped_column(JSON)
    text_column: Mapped[str | None] = mapped_column(String(255))
    label_column: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


@dataclass(frozen=True)
class Dataset:
    """One uploaded file as its owner sees it."""

    id: str
    owner: str
    name: str
    path: Path
    format: str | None
    rows: int | None
    size_bytes: int
    created_at: datetime
    columns: list[str] = field(default_factory=list)
    text_column: str | None = None
    label_column: str | None = None
    record_unit: str = "rows"  # sentences for a CoNLL file, which has a token a line

    def to_dict(self) -> dict:
        """JSON-ready dict for the REST API."""
        return {
            "id": self.id,
            "name": self.name,
            "format": self.format,
            "rows": self.rows,
            "record_unit": self.record_unit,
            "size_bytes": self.size_bytes,
            "columns": list(self.columns),
            "text_column": self.text_column,
            "label_column": self.label_column,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
        }


def user_paths(text: str, home: Path) -> str:
    """`text` with the server's own paths cut down to what a user knows: an upload by its file name, anything else
    in the data dir relative to it (the data dir's location is nobody's business but the operator's)."""
    root = re.escape(str(Path(home).resolve()).rstrip("/"))
    text = re.sub(rf"{root}/{UPLOADS}/[0-9a-f]{{16}}/", "", text)
    return re.sub(rf"{root}/", "", text)


def looks_like_dataset_id(value: str | None) -> bool:
    """True for strings shaped like a dataset id (16 hex digits)."""
    return bool(value) and bool(_ID.match(value))


class DatasetStore(SqlStore):
    """Owner-scoped uploaded datasets on a SQLAlchemy engine (the job store's, so SQLite or PostgreSQL)."""

    tables = (DatasetRow.__table__,)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def __init__(self, engine: Engine, home: Path, admit: Callable[[str, int], None] | None = None):
        super().__init__(engine)
        self.home = home
        # (owner, bytes) -> None, raising to refuse a new file: the web app's disk quota (worker/quotas.py).
        self.admit = admit
        self.artifacts = ArtifactStore.from_env(home)  # the data folder itself unless PLAYGROUND_ARTIFACTS names one

    def register(self, owner: str, source: str | Path, name: str | None = None) -> tuple[Dataset, Table]:
        """Read an uploaded file and keep it as `owner`'s dataset; DataError (nothing kept) when it can't be read.

        The same file (name and bytes) uploaded again is the dataset already kept, not a second entry.
        """
        table = read_table(source)  # first: a file that cannot be read is never stored
        again = self.same_file(owner, source, _safe_file_name(name or Path(source).name))
        if again is not None:
            return again, table
        task = get_task(detect_task(source, table.frame))
        _, count, unit = task.preview(Path(source), table.frame, 0)  # sentences of a CoNLL file, not its lines
        dataset = self.add(
            owner,
            source,
            name or Path(source).name,
            format=file_format_of(source, table.format),
            rows=count,
            columns=[str(c) for c in table.frame.columns],
            record_unit=unit,
        )
        return dataset, table

    def add(
        self,
        owner: str,
        source: str | Path,
        name: str,
        *,
        format: str | None,
        rows: int | None,
        columns: list[str],
        text_column: str | None = None,
        label_column: str | None = None,
        record_unit: str = "rows",
    ) -> Dataset:
        """Copy `source` into the data dir under a new id and record it as `owner`'s dataset named `name`."""
        if self.admit is not None:
            self.admit(owner, Path(source).stat().st_size)
        dataset_id = secrets.token_hex(8)
        safe_name = _safe_file_name(name)
        relative = Path(UPLOADS) / dataset_id / safe_name
        target = self.home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        row = DatasetRow(
            id=dataset_id,
            owner=owner,
            name=safe_name,
            path=str(relative),
            format=format,
            rows=rows,
            record_unit=record_unit,
            size_bytes=target.stat().st_size,
            columns=[str(c) for c in columns],
            text_column=text_column,
            label_column=label_column,
            created_at=utcnow(),
        )
        try:
            self.artifacts.put_file(target)  # workers on other hosts fetch it from the artifact store
            with self._session() as s:
                s.add(row)
        except BaseException:
            self.artifacts.delete(target.parent)
            raise
        return self._dataset(row)

    def same_file(self, owner: str, source: str | Path, name: str) -> Dataset | None:
        """The owner's dataset with this name and exactly these bytes, if one is kept."""
        size = Path(source).stat().st_size
        query = select(DatasetRow).where(
            DatasetRow.owner == owner, DatasetRow.name == name, DatasetRow.size_bytes == size
        )
        with self._session(write=False) as s:
            candidates = [self._dataset(row) for row in s.execute(query).scalars()]
        content = Path(source).read_bytes() if candidates else b""
        return next((d for d in candidates if d.path.is_file() and d.path.read_bytes() == content), None)

    def get(self, dataset_id: str, owner: str) -> Dataset | None:
        """The owner's dataset with this id, or None (also when it belongs to someone else)."""
        with self._session(write=False) as s:
            row = s.get(DatasetRow, dataset_id)
            return self._dataset(row) if row is not None and row.owner == owner else None

    def list(self, owner: str, limit: int = 200) -> list[Dataset]:
        """The owner's datasets, newest first."""
        query = (
            select(DatasetRow)
            .where(DatasetRow.owner == owner)
            .order_by(DatasetRow.created_at.desc(), DatasetRow.id)
            .limit(limit)
        )
        with self._session(write=False) as s:
            return [self._dataset(row) for row in s.execute(query).scalars()]

    def owner_of_path(self, path: str | Path) -> str | None:
        """Who uploaded the file at `path` (None if it is not an upload under the data dir)."""
        try:
            relative = Path(path).resolve().relative_to(self.home.resolve())
        except ValueError:
            return None
        with self._session(write=False) as s:
            return s.execute(select(DatasetRow.owner).where(DatasetRow.path == str(relative))).scalar_one_or_none()

    def known(self, dataset_id: str) -> bool:
        """True while some user has a dataset with this id (the artifact sweep keeps its file)."""
        with self._session(write=False) as s:
            return s.execute(select(DatasetRow.id).where(DatasetRow.id == dataset_id)).first() is not None

    def remember_columns(self, dataset_id: str, owner: str, text_column: str | None, label_column: str | None) -> None:
        """Keep the column mapping the owner picked, so the dataset opens with it next time."""
        with self._session() as s:
            s.execute(
                update(DatasetRow)
                .where(DatasetRow.id == dataset_id, DatasetRow.owner == owner)
                .values(text_column=text_column, label_column=label_column)
                .execution_options(synchronize_session=False)
            )

    def delete(self, dataset_id: str, owner: str) -> Dataset | None:
        """Remove the owner's dataset: its file (here and in the artifact store), then its record; None when there is
        no such dataset of theirs. ValueError (the record kept) when the file could not be removed."""
        dataset = self.get(dataset_id, owner)
        if dataset is None:
            return None
        folder = self.home / UPLOADS / dataset.id
        try:
            self.artifacts.delete(folder)
            left = folder.exists() or self.artifacts.exists(dataset.path)
        except OSError as exc:
            log.warning("could not remove the file of dataset %s: %s", dataset.id, exc)  # the server's paths stay here
            left = True
        if left:
            raise ValueError(
                f"could not remove the file of dataset {dataset.name}; the dataset is kept, delete it again"
            )
        # The record goes last: a delete that fails halfway leaves the dataset listed, and deleting it again finishes.
        with self._session() as s:
            s.execute(
                sa_delete(DatasetRow)
                .where(DatasetRow.id == dataset_id, DatasetRow.owner == owner)
                .execution_options(synchronize_session=False)
            )
        return dataset

    def _dataset(self, row: DatasetRow) -> Dataset:
        return Dataset(
            id=row.id,
            owner=row.owner,
            name=row.name,
            path=self.home / row.path,
            format=row.format,
            rows=row.rows,
            record_unit=row.record_unit or "rows",
            size_bytes=row.size_bytes or 0,
            created_at=row.created_at,
            columns=list(row.columns or []),
            text_column=row.text_column,
            label_column=row.label_column,
        )


def _safe_file_name(name: str) -> str:
    # Only the last part of what the browser sent, without characters that mean something to a shell or a path.
    base = Path(name.replace("\\", "/")).name.strip()
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:200] or "data.csv"
