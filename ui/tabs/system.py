"""System tab, for admins: the queues, every user's running jobs, and the workers with their devices and memory.

Everyone else sees a short note instead (in single-user mode the local user is the admin). Everything comes from the
job store, worker heartbeats included (worker/workers.py), re-read by a timer like the Jobs tab's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import gradio as gr
import pandas as pd

from ui.context import AppContext
from ui.tabs.common import bind, owner_of
from worker.device import Device
from worker.records import RUNNING, Job, utcnow
from worker.stats import queue_depths
from worker.workers import WorkerInfo

REFRESH_SECONDS = 5.0
RUNNING_LIMIT = 500
ADMINS_ONLY = "🔒 **Admins only.** The System view shows every user's running jobs and the workers; ask an admin."
QUEUE_COLUMNS = ["Queue", "Queued", "Running", "Workers alive"]
RUNNING_COLUMNS = ["Job", "Owner", "Kind", "Step", "Phase", "Worker host", "Last heartbeat"]
WORKER_COLUMNS = ["Worker", "Host", "PID", "Queues", "Last heartbeat", "Alive", "Device", "Memory", "Jobs"]
OUTPUTS = 5  # the note, the panel and its three tables
_GIB = float(1 << 30)


@dataclass
class SystemTab:
    """What the page wires: the callback that fills the tab, and its outputs."""

    refresh: Callable[..., tuple]  # (request) -> outputs
    outputs: list


# ---- callbacks ------------------------------------------------------------------------------------------------------


def system_status(ctx: AppContext, request: gr.Request):
    """The summary and, for an admin, the queue, running-job and worker tables; for anyone else the note alone."""
    if not ctx.is_admin(owner_of(ctx, request)):
        return ADMINS_ONLY, gr.Column(visible=False), gr.skip(), gr.skip(), gr.skip()
    now = utcnow()
    lease = ctx.settings.lease_seconds
    depths = queue_depths(ctx.jobs.store)
    running = ctx.jobs.store.list(statuses=(RUNNING,), limit=RUNNING_LIMIT)
    workers = ctx.workers.list()
    alive = sum(worker.alive(lease, now) for worker in workers)
    summary = (
        f"**{sum(depths.values())} queued** · **{len(running)} running** · "
        f"**{alive} of {len(workers)} workers alive** (a worker silent for {lease:g} s counts as gone) · "
        f"updated {now:%H:%M:%S} UTC"
    )
    return (
        summary,
        gr.Column(visible=True),
        queues_frame(depths, running, workers, ctx.settings.queue, lease, now),
        running_frame(running, now),
        workers_frame(workers, running, lease, now),
    )


def tick(ctx: AppContext, request: gr.Request):
    """Timer: refresh for an admin; nothing to do (and no store read) for anyone else."""
    if not ctx.is_admin(owner_of(ctx, request)):
        return (gr.skip(),) * OUTPUTS
    return system_status(ctx, request)


def queues_frame(
    depths: dict[str, int], running: list[Job], workers: list[WorkerInfo], default: str, lease: float, now: datetime
) -> pd.DataFrame:
    """One row per queue that has jobs waiting or running, a live worker, or is the default."""
    busy = Counter(job.queue for job in running)
    listening = Counter(q for w in workers if w.alive(lease, now) for q in w.queues)
    names = sorted({default, *depths, *busy, *listening})
    rows = [[name, depths.get(name, 0), busy.get(name, 0), listening.get(name, 0)] for name in names]
    return pd.DataFrame(rows, columns=QUEUE_COLUMNS)


def running_frame(running: list[Job], now: datetime) -> pd.DataFrame:
    """Every running job, of every user."""
    rows = [
        [
            job.id,
            job.owner,
            job.kind,
            f"{job.step} / {job.total_steps}" if job.total_steps else str(job.step),
            job.phase or "",
            job.worker_host or "",
            age_text(job.heartbeat_at, now),
        ]
        for job in running
    ]
    return pd.DataFrame(rows, columns=RUNNING_COLUMNS)


def workers_frame(workers: list[WorkerInfo], running: list[Job], lease: float, now: datetime) -> pd.DataFrame:
    """Every worker with a heartbeat on record: alive or not, its device and memory, and its running jobs."""
    jobs = Counter(job.worker_name for job in running)
    rows = [
        [
            worker.name,
            worker.host,
            worker.pid,
            ", ".join(worker.queues),
            age_text(worker.heartbeat_at, now),
            "yes" if worker.alive(lease, now) else "no",
            worker.device.name,
            memory_text(worker.device),
            jobs.get(worker.name, 0),
        ]
        for worker in workers
    ]
    return pd.DataFrame(rows, columns=WORKER_COLUMNS)


def age_text(moment: datetime | None, now: datetime) -> str:
    """'4 s ago', '3 min ago', '2 h ago'; '' for never."""
    if moment is None:
        return ""
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def memory_text(device: Device) -> str:
    """'GPU 12.0 / 139.8 GiB · RAM 20.1 / 125.7 GiB', leaving out what the worker did not report."""
    parts = []
    if device.memory_total:
        parts.append(f"GPU {(device.memory_used or 0) / _GIB:.1f} / {device.memory_total / _GIB:.1f} GiB")
    if device.ram_total:
        parts.append(f"RAM {(device.ram_used or 0) / _GIB:.1f} / {device.ram_total / _GIB:.1f} GiB")
    return " · ".join(parts)


# ---- layout ---------------------------------------------------------------------------------------------------------


def build(ctx: AppContext) -> SystemTab:
    """Lay out the System tab and wire its button and timer."""
    with gr.Row():
        note = gr.Markdown("", elem_id="system-note")
        refresh = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="system-refresh")
    with gr.Column(visible=False) as panel:
        queues = _table(QUEUE_COLUMNS, "Queues", "system-queues")
        running = _table(RUNNING_COLUMNS, "Running jobs (every user)", "system-running")
        workers = _table(WORKER_COLUMNS, "Workers", "system-workers")
    timer = gr.Timer(REFRESH_SECONDS)
    outputs = [note, panel, queues, running, workers]
    bound = bind(ctx, system_status)
    refresh.click(bound, None, outputs, api_visibility="private")
    timer.tick(bind(ctx, tick), None, outputs, api_visibility="private", show_progress="hidden")
    return SystemTab(bound, outputs)


def _table(columns: list[str], label: str, elem_id: str) -> gr.Dataframe:
    return gr.Dataframe(
        value=pd.DataFrame(columns=columns), label=label, interactive=False, wrap=True, max_height=320, elem_id=elem_id
    )
