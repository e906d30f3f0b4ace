"""Prometheus metrics of the web app, at GET /metrics.

- From the job store, read at every scrape (a custom collector, so the numbers are always the store's): jobs by
  status and kind, queued jobs per queue, workers alive and each worker's heartbeat age, and histograms of how long
  jobs waited (started - created, jobs that started since this web process did) and ran (finished - started, jobs
  that finished since this web process did). Both populations only ever grow while the process lives, so the
  histograms are true cumulative counters that reset only with the process, as Prometheus expects of them.
- From this process: latency and errors of the prediction and generation routes, by route template and status code
  (never by raw path, so a job id or share token never becomes a label value), timed until the last byte is sent.

Access: open in single-user mode. With users, an admin (HTTP basic or an API token as Bearer), or the scrape token
set in PLAYGROUND_METRICS_TOKEN, sent as `Authorization: Bearer <token>`; anyone else gets 401 or 403.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import compile_path

from ui.auth import REALM, caller
from ui.context import AppContext
from ui.limits import ASGIApp, Receive, Scope, Send
from worker.records import KINDS, STATUSES, TERMINAL, utcnow
from worker.stats import JobTimes, job_counts, job_times, queue_depths
from worker.workers import WorkerInfo

log = logging.getLogger(__name__)

METRICS_TOKEN_ENV = "PLAYGROUND_METRICS_TOKEN"
# The prediction and generation routes that are timed (all POST): REST, the OpenAI-compatible API, share pages.
INFERENCE_ROUTES = (
    "/api/models/{job_id}/predict",
    "/v1/classify",
    "/v1/tag",
    "/v1/chat/completions",
    "/demo/{token}",  # the share page's form
    "/demo/{token}/predict",
)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
RUN_BUCKETS = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 259200.0)

_basic = HTTPBasic(auto_error=False, realm=REALM)
_bearer = HTTPBearer(auto_error=False, description="An admin's API token, or PLAYGROUND_METRICS_TOKEN")


class StoreCollector(Collector):
    """Job, queue and worker metrics read from the job store at each scrape."""

    def __init__(self, ctx: AppContext, since: datetime):
        self.ctx = ctx
        self.since = since  # when this web process started: the histograms count jobs from here on

    def collect(self) -> Iterator[Metric]:
        """Every store metric, as the store holds it now; only `playground_store_up 0` when it cannot be read."""
        store = self.ctx.jobs.store
        try:
            counts, depths = job_counts(store), queue_depths(store)
            times, workers = job_times(store, self.since), self.ctx.workers.list()
        except SQLAlchemyError as exc:
            log.warning("metrics: the job store cannot be read: %s", exc)
            yield GaugeMetricFamily("playground_store_up", "1 when the job store could be read", value=0)
            return
        yield GaugeMetricFamily("playground_store_up", "1 when the job store could be read", value=1)
        yield _jobs_family(counts)
        listened = {queue for worker in workers for queue in worker.queues}
        yield _queues_family(depths, {self.ctx.settings.queue, *listened})
        yield from _worker_families(workers, self.ctx.settings.lease_seconds)
        yield from _time_families(times, self.since)


def _jobs_family(counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("playground_jobs", "Jobs in the store, by status and kind", labels=["status", "kind"])
    # Every known pair is shown, zeros included: an absent series would read as "no data", not as none.
    for key in sorted({(s, k) for s in STATUSES for k in KINDS} | set(counts)):
        family.add_metric(list(key), counts.get(key, 0))
    return family


def _queues_family(depths: dict[str, int], known: set[str]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("playground_queue_depth", "Queued jobs per queue", labels=["queue"])
    for queue in sorted(known | set(depths)):
        family.add_metric([queue], depths.get(queue, 0))
    return family


def _worker_families(workers: list[WorkerInfo], lease_seconds: float) -> Iterator[Metric]:
    now = utcnow()
    yield GaugeMetricFamily(
        "playground_workers_alive",
        "Workers whose last heartbeat is younger than the lease (PLAYGROUND_LEASE_SECONDS)",
        value=sum(worker.alive(lease_seconds, now) for worker in workers),
    )
    ages = GaugeMetricFamily(
        "playground_worker_heartbeat_age_seconds",
        "Seconds since each worker's last heartbeat",
        labels=["worker", "host"],
    )
    up = GaugeMetricFamily("playground_worker_up", "1 while a worker's heartbeat is fresh", labels=["worker", "host"])
    for worker in workers:
        ages.add_metric([worker.name, worker.host], worker.age(now))
        up.add_metric([worker.name, worker.host], int(worker.alive(lease_seconds, now)))
    yield ages
    yield up


def _time_families(times: list[JobTimes], since: datetime) -> Iterator[Metric]:
    waits: dict[tuple[str, ...], list[float]] = {(kind,): [] for kind in KINDS}
    runs: dict[tuple[str, ...], list[float]] = {(kind, end): [] for kind in KINDS for end in sorted(TERMINAL)}
    for job in times:
        if job.started_at is not None and job.started_at >= since and job.wait_seconds is not None:
            waits.setdefault((job.kind,), []).append(job.wait_seconds)
        if job.finished_at is not None and job.finished_at >= since and job.run_seconds is not None:
            runs.setdefault((job.kind, job.status), []).append(job.run_seconds)
    yield _histogram(
        "playground_job_wait_seconds",
        "Started minus created, of jobs that started since this web process did",
        ["kind"],
        waits,
        WAIT_BUCKETS,
    )
    yield _histogram(
        "playground_job_duration_seconds",
        "Finished minus started, of jobs that finished since this web process did",
        ["kind", "status"],
        runs,
        RUN_BUCKETS,
    )


def _histogram(
    name: str, doc: str, labels: list[str], samples: dict[tuple[str, ...], list[float]], buckets: Iterable[float]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, values in sorted(samples.items()):
        cumulative = [(floatToGoString(le), sum(value <= le for value in values)) for le in buckets]
        family.add_metric(list(key), [*cumulative, ("+Inf", len(values))], sum_value=sum(values))
    return family


class Metrics:
    """The metrics of one web app: its own registry (not prometheus_client's global one, so that nothing is kept at
    module level and two apps in one process, as in the tests, never clash), the store collector, request timers."""

    def __init__(self, ctx: AppContext, *, since: datetime | None = None):
        self.registry = CollectorRegistry()
        self.store = StoreCollector(ctx, since or utcnow())
        self.registry.register(self.store)
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)  # stateless readers of this process: safe in several registries
        self.latency = Histogram(
            "playground_inference_request_duration_seconds",
            "Prediction and generation requests, by route template and status, until the last byte was sent",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "playground_inference_errors",
            "Prediction and generation requests answered with a 4xx or 5xx status",
            ["route", "status"],
            registry=self.registry,
        )
        self._routes = [(compile_path(template)[0], template) for template in INFERENCE_ROUTES]

    def route_of(self, scope: Scope) -> str | None:
        """The template of the timed route a request is for, or None."""
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return next((template for regex, template in self._routes if regex.match(path)), None)

    def observe(self, route: str, status_code: int, seconds: float) -> None:
        """Count one request to a timed route."""
        self.latency.labels(route, str(status_code)).observe(seconds)
        if status_code >= 400:
            self.errors.labels(route, str(status_code)).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) of the registry in the format the scraper asks for (OpenMetrics or plain text)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


class RequestMetrics:
    """ASGI middleware that times the requests of the prediction and generation routes; install it outermost, so
    that it sees the 413s of the body limit and the 500s of unhandled errors too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.metrics.route_of(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        answered = 500  # an exception before the response starts becomes Starlette's 500
        started = time.perf_counter()

        async def tracked(message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            self.metrics.observe(route, answered, time.perf_counter() - started)


def install_metrics(app: FastAPI, ctx: AppContext) -> Metrics:
    """Serve GET /metrics on `app` (call it before the Gradio mount, which takes every other path)."""
    metrics = Metrics(ctx)
    scrape_token = os.environ.get(METRICS_TOKEN_ENV, "")

    def may_scrape(
        request: Request,
        credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not ctx.users.enabled:
            return  # single-user mode: nobody to keep out, as for the rest of the app
        if (
            scrape_token
            and bearer is not None
            and hmac.compare_digest(bearer.credentials.encode(), scrape_token.encode())
        ):
            return
        who = caller(request, credentials, bearer)  # 401 for a wrong password or an unknown token
        if not ctx.is_admin(who.owner):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"/metrics is for admins; a scraper sends the token in {METRICS_TOKEN_ENV} as 'Authorization: Bearer'",
            )

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(may_scrape)])
    def scrape(request: Request) -> Response:
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    app.state.metrics = metrics
    return metrics
