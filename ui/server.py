"""The web process: a FastAPI app with the REST API under /api, share pages under /demo, and the Gradio app at /.

REST routes take HTTP basic auth with the same users as the login page, or an API token (ui/auth.py; none needed
in single-user mode). Every route reads and writes only the caller's own jobs, datasets, models, share links and
tokens; someone else's job answers 404, exactly like a job that does not exist. The OpenAI-compatible routes under
/v1 are in ui/openai_api.py.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import gradio as gr
from fastapi import APIRouter, FastAPI, File, HTTPException, Query, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import DataError, ModelNotFoundError
from engine.export import ExportVariant, PruneMethod
from engine.export.report import compression_table
from engine.paths import max_upload_bytes
from engine.spec import EvaluateSpec, ExportSpec, JobSpec
from ui import openai_api
from ui.access_api import access_routes, quota_http_error
from ui.app import CSS, THEME, build_blocks
from ui.auth import Owner, token_routes
from ui.context import AccessError, AppContext, Users
from ui.demo import demo_router
from ui.limits import MAX_CHAT_CHARS, MAX_CHAT_TURNS, MAX_NEW_TOKENS, MAX_PREDICT_TEXTS, BodyLimit
from ui.metrics import RequestMetrics, install_metrics
from worker.api import JobNotFoundError
from worker.health import readiness
from worker.quotas import QuotaError
from worker.records import STATUSES, TRAIN


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_CHAT_CHARS)


class PredictRequest(BaseModel):
    """Body of POST /api/models/{id}/predict: texts for classifiers and taggers, messages for chat models."""

    text: str | None = Field(default=None, description="One text to classify or tag.")
    texts: list[str] | None = Field(default=None, max_length=MAX_PREDICT_TEXTS, description="Several texts.")
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, max_length=MAX_CHAT_TURNS, description="Chat models: the conversation so far."
    )
    max_new_tokens: int = Field(
        default=256, ge=1, le=MAX_NEW_TOKENS, description="Chat models: longest reply, in tokens."
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="Chat models: 0 answers greedily.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Chat models: nucleus sampling share.")
    variant: ExportVariant | Literal["original"] | None = Field(
        default=None,
        description="An exported variant to answer with (see GET /api/models/{id}/variants); default: the model as "
        "trained. The answer's `variant` says which served.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        given = [name for name in ("text", "texts", "messages") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "send one of 'text' (one string), 'texts' (a list of strings) or, for chat models, 'messages' "
                "(a list of {role, content})"
            )
        return self


class ExportRequest(BaseModel):
    """Body of POST /api/models/{id}/export."""

    model_config = ConfigDict(extra="forbid")

    to: ExportVariant = Field(description=ExportSpec.model_fields["to"].description)
    sparsity: float | None = Field(default=None, description=ExportSpec.model_fields["sparsity"].description)
    prune: PruneMethod | None = Field(default=None, description=ExportSpec.model_fields["prune"].description)


def create_app(ctx: AppContext | None = None, *, users: Users | None = None) -> FastAPI:
    """The whole web app: REST API, share pages and the Gradio UI, on one AppContext."""
    ctx = ctx or AppContext(users=users)
    app = FastAPI(
        title="Finetune Playground API",
        description="Submit, follow and cancel fine-tuning jobs, and classify with finished models.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(api_router(ctx))
    openai_api.install(app, ctx)  # /v1: chat completions, models, classify and tag, for OpenAI clients
    app.include_router(demo_router(ctx))
    metrics = install_metrics(app, ctx)  # GET /metrics for Prometheus (ui/metrics.py: who may scrape)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        ready, body = readiness(ctx.jobs.store, ctx.settings)  # the web process's own store and broker
        return JSONResponse(body, status_code=200 if ready else 503)

    blocks = build_blocks(ctx)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=ctx.users.check if ctx.users.enabled else None,
        auth_message="Log in to your Finetune Playground account." if ctx.users.enabled else None,
        theme=THEME,
        css=CSS,
        ssr_mode=False,
        show_error=True,
        max_file_size=max_upload_bytes(),
        footer_links=["api"],
    )
    app.add_middleware(BodyLimit)  # every route, Gradio's included: an oversized body gets 413, unread
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: it counts BodyLimit's 413s too
    return app


def api_router(ctx: AppContext) -> APIRouter:
    """The REST API; every route is scoped to the caller."""
    router = APIRouter(prefix="/api", tags=["jobs"])
    _job_routes(router, ctx)
    _model_routes(router, ctx)
    _dataset_routes(router, ctx)
    token_routes(router, ctx)
    access_routes(router, ctx)  # share links, quota, deleting finished jobs and datasets
    return router


def _job_or_404(ctx: AppContext, job_id: str, owner: str):
    try:
        return ctx.jobs.get(job_id, owner=owner)
    except JobNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}") from exc


def spec_request_schema() -> dict[str, Any]:
    """The body POST /api/jobs takes, for the API docs: a training spec or an evaluation spec (read at app start)."""
    refs = "#/components/schemas/{model}"
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        inline_refs(JobSpec.model_json_schema(ref_template=refs)),
                        inline_refs(EvaluateSpec.model_json_schema(ref_template=refs)),
                        inline_refs(ExportSpec.model_json_schema(ref_template=refs)),
                    ]
                }
            }
        },
    }


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its $defs written in place, so it stands alone inside the OpenAPI document."""
    defs = schema.pop("$defs", {})
    prefix = "#/components/schemas/"

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in defs:
                return resolve(defs[ref[len(prefix) :]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def _job_routes(router: APIRouter, ctx: AppContext) -> None:
    def job_or_404(job_id: str, owner: str):
        return _job_or_404(ctx, job_id, owner)

    def managed_or_404(job_id: str, owner: str):
        try:
            return ctx.managed_job(job_id, owner)
        except JobNotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}") from exc

    @router.get("/jobs")
    def list_jobs(
        owner: Owner,
        status_: Annotated[str | None, Query(alias="status")] = None,
        limit: int = 100,
        all_: Annotated[bool, Query(alias="all", description="Admins: everyone's jobs, each with its owner.")] = False,
    ):
        """Your jobs, newest first (optionally of one status); an admin's ?all=true lists everyone's."""
        if status_ is not None and status_ not in STATUSES:
            raise HTTPException(422, f"unknown status {status_!r}; statuses are {', '.join(STATUSES)}")
        if all_ and not ctx.is_admin(owner):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may list everyone's jobs (?all=true)")
        jobs = ctx.jobs.list_jobs(None if all_ else owner, status=status_, limit=max(1, min(limit, 1000)))
        return {"jobs": [ctx.public_job(job) for job in jobs]}

    @router.post("/jobs", status_code=status.HTTP_201_CREATED, openapi_extra={"requestBody": spec_request_schema()})
    def submit_job(owner: Owner, spec: dict[str, Any]):
        """Queue a job. A training spec as in `playground train --config`, with `data.train` an uploaded dataset's
        id (POST /api/datasets); a mapping with `model` (a finished job id) and `data` evaluates that model."""
        try:
            submission = ctx.submit(spec, owner)
        except QuotaError as exc:
            raise quota_http_error(exc) from exc
        except AccessError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        except (DataError, ModelNotFoundError, ValueError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        # Queued as asked; "warnings" says what to know first (a base model that cannot read the texts).
        return {**ctx.public_job(ctx.jobs.get(submission.job_id, owner=owner)), "warnings": submission.warnings}

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str, owner: Owner, history: bool = False):
        """One job: status, queue position, progress, ETA, error and hint; with ?history=true its metric history."""
        job = managed_or_404(job_id, owner)  # an admin follows anyone's job
        body = ctx.public_job(job)
        if history:
            body["history"] = [event.to_dict() for event in ctx.jobs.history(job.id, owner=job.owner)]
        return body

    @router.get("/jobs/{job_id}/report")
    def get_report(job_id: str, owner: Owner):
        """The report.json of a succeeded job."""
        job = job_or_404(job_id, owner)
        try:
            return ctx.report(job.id, owner)
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc

    @router.get("/jobs/{job_id}/log")
    def get_log(job_id: str, owner: Owner, lines: int = 200):
        """The end of the job's log."""
        job = managed_or_404(job_id, owner)
        return {"job_id": job.id, "log": ctx.jobs.log_tail(job.id, max(1, min(lines, 5000)), owner=job.owner)}

    @router.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: str, owner: Owner):
        """Cancel a job: a queued one at once, a running one at its next training step (an admin: anyone's)."""
        job = managed_or_404(job_id, owner)
        return ctx.public_job(ctx.jobs.cancel(job.id, owner=job.owner))


def _model_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.post("/models/{job_id}/predict")
    def predict(job_id: str, body: PredictRequest, owner: Owner):
        """Use the model of a succeeded training job. Classifiers: label, score and every label's probability per
        text. Taggers: entity spans (text, type, start, end, score) per text. Chat models: the reply to `messages`."""
        _job_or_404(ctx, job_id, owner)
        try:
            predictor = ctx.predictor(job_id, owner, body.variant)
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        request = body.model_dump(exclude_none=True, exclude={"variant"})
        if body.messages is not None:
            request["messages"] = [message.model_dump() for message in body.messages]
        try:
            answer = predictor.serve(request)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"job {job_id}: {exc}") from exc
        return {"model": job_id, **answer}

    @router.post("/models/{job_id}/export", status_code=status.HTTP_201_CREATED)
    def export(job_id: str, body: ExportRequest, owner: Owner):
        """Queue an export job: a bf16, int8, ONNX or pruned variant of the model of a succeeded training job,
        measured against the original on the job's test split. Its report lands in GET /api/models/{id}/variants."""
        _job_or_404(ctx, job_id, owner)
        try:
            submission = ctx.submit({"model": job_id, **body.model_dump(exclude_none=True)}, owner)
        except QuotaError as exc:
            raise quota_http_error(exc) from exc
        except AccessError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return ctx.public_job(ctx.jobs.get(submission.job_id, owner=owner))

    @router.get("/models/{job_id}/variants")
    def variants(job_id: str, owner: Owner):
        """The compression table: the original and each exported variant with size on disk, one-text latency p50,
        texts/s, speed-up over the original timed in the same run, and test metrics with their change."""
        job = _job_or_404(ctx, job_id, owner)
        exports = ctx.variants(job) if job.kind == TRAIN else {}
        reports = [ctx.report(export.id, owner) for export in exports.values()]
        jobs = {name: export.id for name, export in exports.items()}
        return {"model": job.id, "variants": compression_table(reports), "export_jobs": jobs}


def _dataset_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.get("/datasets", tags=["datasets"])
    def list_datasets(owner: Owner):
        """Your uploaded datasets, newest first."""
        return {"datasets": [dataset.to_dict() for dataset in ctx.datasets.list(owner)]}

    @router.post("/datasets", status_code=status.HTTP_201_CREATED, tags=["datasets"])
    def upload_dataset(
        owner: Owner, file: Annotated[UploadFile, File(description="CSV, TSV, JSON, JSONL or Parquet")]
    ):
        """Upload a labeled file; its id goes into a job spec's data.train (or validation / test)."""
        limit = max_upload_bytes()
        name = Path(file.filename or "data.csv").name
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            with path.open("wb") as out:
                shutil.copyfileobj(file.file, out, length=1 << 20)
            if path.stat().st_size > limit:
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE, f"{name} is larger than the {limit // 2**20} MB limit"
                )
            try:
                dataset, _ = ctx.datasets.register(owner, path, name)
            except QuotaError as exc:
                raise quota_http_error(exc, uploading=True) from exc
            except DataError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return JSONResponse(dataset.to_dict(), status_code=status.HTTP_201_CREATED)
