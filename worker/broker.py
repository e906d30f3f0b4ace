"""Talking to the broker: send a job's message, and look inside a queue to see whether a job's message is still there.

The broker carries job ids only. Looking inside lets the recovery sweep tell a job that is merely waiting its turn
from one whose message is gone (Redis restarted without persistence, a worker died holding it), without guessing
from how long it has waited.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import Celery

from worker.app import TASK_FOR_KIND
from worker.records import Job, utcnow
from worker.settings import Settings
from worker.store import job_id_of

log = logging.getLogger(__name__)

# kombu's Redis transport keeps priorities in separate lists named queue + "\x06\x16" + step (step 0: the bare name).
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
_EMBEDDED_KEEP_DELIVERED = timedelta(days=1)

Messages = dict[str, list[datetime | None]]  # job id -> one entry per message: None if waiting, else delivered at


def publish(app: Celery, job: Job, task_id: str) -> None:
    """Send the job's id to its queue as task `task_id`."""
    # No exchange or routing key: Celery then routes through the anonymous exchange by queue name, which needs no
    # binding entry in Redis, so a flushed Redis still routes new messages to the workers' queue.
    app.send_task(TASK_FOR_KIND[job.kind], args=[job.id], task_id=task_id, queue=job.queue)


def messages_in(settings: Settings, queue: str) -> Messages | None:
    """The job messages the broker holds for `queue`, or None when this broker cannot be inspected."""
    if settings.embedded:
        return _embedded_messages(Path(settings.broker.removeprefix("sqlite:///")), queue)
    if settings.broker.startswith(("redis://", "rediss://", "unix://")):
        return _redis_messages(settings.broker, queue)
    return None


def _redis_messages(url: str, queue: str) -> Messages:
    import redis

    found: Messages = {}
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        for step in _REDIS_PRIORITY_STEPS:
            key = queue if step == 0 else f"{queue}{_REDIS_PRIORITY_SEP}{step}"
            for raw in client.lrange(key, 0, -1):
                _add(found, raw, None)
        delivered_at = dict(client.zrange("unacked_index", 0, -1, withscores=True))
        for tag, raw in client.hgetall("unacked").items():
            try:
                message, _exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key != queue:
                continue
            score = delivered_at.get(tag)
            when = datetime.fromtimestamp(score, UTC).replace(tzinfo=None) if score else utcnow()
            _add(found, json.dumps(message), when)
    finally:
        client.close()
    return found


def _embedded_messages(path: Path, queue: str) -> Messages:
    found: Messages = {}
    if not path.is_file():
        return found
    with sqlite3.connect(path, timeout=30) as db:
        try:
            rows = db.execute(
                "SELECT m.payload, m.visible, m.timestamp FROM kombu_message m "
                "JOIN kombu_queue q ON m.queue_id = q.id WHERE q.name = ?",
                (queue,),
            ).fetchall()
        except sqlite3.OperationalError:  # no message was ever sent: kombu has not created its tables yet
            return found
        # kombu keeps delivered messages (visible=0) forever; a day later they are only clutter.
        cutoff = datetime.now() - _EMBEDDED_KEEP_DELIVERED  # kombu writes local time
        db.execute("DELETE FROM kombu_message WHERE visible = 0 AND timestamp < ?", (cutoff.isoformat(" "),))
    for payload, visible, stamp in rows:
        if visible:
            _add(found, payload, None)
        elif stamp:
            # kombu stamps the delivery time (in local time) when it hides a delivered message
            local = datetime.fromisoformat(stamp)
            _add(found, payload, local.astimezone(UTC).replace(tzinfo=None))
    return found


def _add(found: Messages, raw: str | bytes, delivered_at: datetime | None) -> None:
    try:
        task_id = json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return  # not a Celery task message
    found.setdefault(job_id_of(task_id), []).append(delivered_at)


def revoke(app: Celery, task_id: str) -> None:
    """Ask every worker to kill the process running `task_id` (needs fanout: Redis, not the embedded broker)."""
    app.control.revoke(task_id, terminate=True, signal="SIGKILL")
