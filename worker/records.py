"""Plain records the job API hands out: a job and one of its events. No SQLAlchemy objects leave the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

TRAIN = "train"
EVALUATE = "evaluate"
EXPORT = "export"
KINDS = (TRAIN, EVALUATE, EXPORT)


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zones, so every timestamp in the store is naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with a Z, for JSON."""
    return moment.isoformat(timespec="milliseconds") + "Z" if moment else None


@dataclass(frozen=True)
class Job:
    """One job as the store knows it: what it is, where it stands, and how it ended."""

    id: str
    owner: str
    kind: str
    spec: dict[str, Any]
    queue: str
    status: str
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    eta_seconds: float | None = None
    phase: str | None = None  # preparing, loading, training, evaluating, reporting (None before the first)
    error: str | None = None
    hint: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    artifact_dir: Path | None = None
    worker_host: str | None = None
    worker_name: str | None = None
    worker_pid: int | None = None
    attempts: int = 0
    max_attempts: int = 3
    sends: int = 0
    task_id: str | None = None
    cancel_requested: bool = False
    cancel_requested_at: datetime | None = None
    position: int | None = None  # place in its queue while queued (1 = next), else None

    @property
    def finished(self) -> bool:
        """True once the job is succeeded, failed or cancelled; it never changes again."""
        return self.status in TERMINAL

    @property
    def progress(self) -> float | None:
        """Share of training steps done, 0..1, or None before the total is known."""
        if self.status == SUCCEEDED:
            return 1.0
        return min(1.0, self.step / self.total_steps) if self.total_steps else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for the CLI and the REST API."""
        raw = asdict(self)
        for key, value in raw.items():
            if isinstance(value, datetime):
                raw[key] = iso(value)
        raw["artifact_dir"] = str(self.artifact_dir) if self.artifact_dir else None
        raw["progress"] = self.progress
        return raw


@dataclass(frozen=True)
class JobEvent:
    """A point in a job's history: a status change, a logged training loss or an evaluation."""

    id: int  # increasing; pass the last one seen as `since` to get only newer events
    job_id: str
    attempt: int
    kind: str  # status | start | log | eval | end
    at: datetime
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    learning_rate: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        raw = asdict(self)
        raw["at"] = iso(self.at)
        return raw
