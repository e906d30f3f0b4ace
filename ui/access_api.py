"""REST routes of access and limits: share links with an expiry and a rate limit, the caller's quota, and deleting
finished jobs and datasets to get back under it. Installed on the /api router by ui/server.py.

Quota errors become HTTP answers here too: 429 for too many jobs at once, 413 for an upload over the disk quota and
403 for a job submitted while over it; each message names the limit and how to get under it.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ui.auth import Owner
from ui.context import AppContext
from ui.ratelimit import share_rate_per_minute
from worker.api import JobNotFoundError
from worker.quotas import DiskQuotaError, QuotaError, TooManyJobsError
from worker.records import QUEUED, RUNNING, iso
from worker.shares import MAX_RATE_PER_MINUTE, Share, parse_expires_in


class ShareRequest(BaseModel):
    """Body of POST /api/models/{id}/shares."""

    model_config = ConfigDict(extra="forbid")

    expires_in: str | float | None = Field(
        default=None, description="How long the link works: '12h', '7d' or a number of hours; default: never expires."
    )
    rate_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RATE_PER_MINUTE,
        description="Predictions the link answers per minute; default PLAYGROUND_SHARE_RATE_PER_MINUTE (30).",
    )
    names_training_file: bool = Field(default=False, description="Say on the page which file the model learned.")


def quota_http_error(exc: QuotaError, *, uploading: bool = False) -> HTTPException:
    """The HTTP answer to a quota error: 429 (too many jobs), 413 (upload over the disk quota) or 403 (job over it)."""
    if isinstance(exc, TooManyJobsError):
        return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc))
    if isinstance(exc, DiskQuotaError) and uploading:
        return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc))
    return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))


def share_record(share: Share, base: str = "") -> dict:
    """A share link as the REST API shows it to its owner."""
    return {
        "token": share.token,
        "url": f"{base}{share.path}",
        "job_id": share.job_id,
        "created_at": iso(share.created_at),
        "expires_at": iso(share.expires_at),
        "expired": share.expired,
        "rate_per_minute": share.rate_per_minute or share_rate_per_minute(),
        "names_training_file": share.names_training_file,
    }


def access_routes(router: APIRouter, ctx: AppContext) -> None:
    """Share links, the caller's quota, and deleting finished jobs and datasets."""
    _share_routes(router, ctx)
    _cleanup_routes(router, ctx)

    @router.get("/quota", tags=["quota"])
    def quota(owner: Owner):
        """Your limits and what you use of them (a limit of null: none)."""
        limits = ctx.quotas.quotas
        active = len(ctx.jobs.store.list(owner, (QUEUED, RUNNING), 1000))
        disk = ctx.quotas.disk_used(owner) if limits.max_disk_bytes is not None else None
        return {
            "active_jobs": active,
            "max_active_jobs": limits.max_active_jobs,
            "disk_bytes": disk,
            "max_disk_bytes": limits.max_disk_bytes,
        }


def _share_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.post("/models/{job_id}/shares", status_code=status.HTTP_201_CREATED, tags=["shares"])
    def create_share(job_id: str, request: Request, owner: Owner, body: ShareRequest | None = None):
        """A share link of your finished model: a page anyone with the link may try it on, without logging in."""
        body = body or ShareRequest()
        try:
            job = ctx.finished_model(job_id, owner)
            lifetime = parse_expires_in(body.expires_in)
        except JobNotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}") from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        share = ctx.shares.create(
            owner,
            job.id,
            names_training_file=body.names_training_file,
            expires_in=lifetime,
            rate_per_minute=body.rate_per_minute,
        )
        return share_record(share, str(request.base_url).rstrip("/"))

    @router.get("/shares", tags=["shares"])
    def list_shares(request: Request, owner: Owner):
        """Your share links that are not revoked, newest first (expired ones say so)."""
        base = str(request.base_url).rstrip("/")
        return {"shares": [share_record(share, base) for share in ctx.shares.list(owner)]}

    @router.delete("/shares/{token}", tags=["shares"])
    def revoke_share(token: str, owner: Owner):
        """Switch one of your links off: it answers 404 from now on."""
        if not ctx.shares.revoke(token, owner):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no active share link of yours with that token")
        return {"revoked": True}


def _cleanup_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.delete("/jobs/{job_id}")
    def delete_job(job_id: str, owner: Owner):
        """Delete a finished job with its folder (model, report, log), to free disk space (an admin: anyone's).

        409 while a waiting or running job uses its model, or while it has exported variants (delete those first).
        """
        try:
            job = ctx.managed_job(job_id, owner)
            ctx.jobs.delete(job.id, owner=job.owner)  # the one deletion the CLI and the Jobs tab use too
        except JobNotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}") from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return {"id": job.id, "deleted": True}

    @router.delete("/datasets/{dataset_id}", tags=["datasets"])
    def delete_dataset(dataset_id: str, owner: Owner):
        """Delete one of your uploaded datasets (its record and file), to free disk space; 409 while a job uses it."""
        try:
            ctx.delete_dataset(dataset_id, owner)
        except LookupError as exc:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no dataset {dataset_id!r}; GET /api/datasets lists them"
            ) from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return {"id": dataset_id, "deleted": True}
