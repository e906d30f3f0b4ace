"""Share pages: `/demo/<token>`, a minimal read-only playground for one model that opens without logging in.

Plain server-rendered HTML with a form, so it works in any browser, with or without JavaScript. An unknown or
revoked token gets the same 404 page, so a link that was switched off tells nothing about what it pointed to; an
expired one gets a 404 that says it expired. Predictions are rate limited per link (ui/ratelimit.py): over the limit
the answer is 429 with Retry-After.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from engine.tasks import Task, default_task, get_task
from ui.context import AppContext
from ui.ratelimit import RateLimiter, share_rate_per_minute
from ui.task_views import spans_html
from ui.views import file_name
from worker.api import JobNotFoundError
from worker.records import Job
from worker.shares import Share

MAX_DEMO_CHARS = 5000
DEMO_NEW_TOKENS = 200
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 720px; margin: 40px auto;
  padding: 0 16px; color: #1f2937; line-height: 1.5; }}
h1 {{ font-size: 1.6em; margin-bottom: 4px; }}
.about {{ color: #4b5563; margin-top: 0; }}
textarea {{ width: 100%; box-sizing: border-box; font: inherit; padding: 10px; border: 1px solid #cbd5e1;
  border-radius: 8px; min-height: 110px; }}
button {{ margin-top: 10px; background: #2563eb; color: #fff; border: 0; border-radius: 8px; padding: 10px 22px;
  font: inherit; font-weight: 600; cursor: pointer; }}
.result {{ margin-top: 24px; }}
.row {{ display: flex; align-items: center; gap: 12px; margin: 6px 0; }}
.name {{ width: 30%; overflow-wrap: anywhere; font-weight: 600; }}
.bar {{ flex: 1; background: #e5e7eb; border-radius: 6px; height: 22px; overflow: hidden; }}
.fill {{ background: #2563eb; height: 100%; }}
.top .fill {{ background: #16a34a; }}
.pct {{ width: 64px; text-align: right; font-variant-numeric: tabular-nums; }}
footer {{ margin-top: 40px; font-size: 0.85em; color: #6b7280; }}
.error {{ color: #b91c1c; }}
.tagged {{ font-size: 1.1em; line-height: 2.2; white-space: pre-wrap; }}
mark.entity {{ border-radius: 6px; padding: 2px 4px; }}
mark.entity .type {{ font-size: 0.7em; font-weight: 700; margin-left: 4px; color: #374151; }}
.served {{ color: #6b7280; font-size: 0.85em; }}
.reply {{ white-space: pre-wrap; background: #f3f4f6; border-radius: 8px; padding: 12px; }}
</style></head>
<body>{body}
<footer>{footer}</footer>
</body></html>
"""


class DemoRequest(BaseModel):
    """JSON body of the demo's predict endpoint."""

    text: str = Field(min_length=1, max_length=MAX_DEMO_CHARS)


def demo_router(ctx: AppContext) -> APIRouter:
    """Routes of the share pages."""
    router = APIRouter()
    limiter = RateLimiter()  # this process's count of each link's predictions
    default_rate = share_rate_per_minute()

    def shared_job(token: str) -> tuple[Share | None, Job | None]:
        share = ctx.shares.unrevoked(token)
        if share is None or share.expired:
            return share, None
        try:
            job = ctx.finished_model(share.job_id, share.owner)
        except (JobNotFoundError, ValueError):
            return share, None
        if not share.names_training_file:  # the page names the training file only when its owner said so
            job = replace(job, spec={**(job.spec or {}), "data": {}})
        return share, job if (ctx.local_model_dir(job) / "config.json").is_file() else None

    def wait_seconds(share: Share) -> int:
        """0 when the link may answer one more prediction now, else whole seconds to wait."""
        return math.ceil(limiter.take(share.token, share.rate_per_minute or default_rate))

    @router.get("/demo/{token}", response_class=HTMLResponse, include_in_schema=False)
    def demo_page(token: str) -> HTMLResponse:
        share, job = shared_job(token)
        if job is None:
            return _not_found(share)
        return _page(job, ctx, text="")

    @router.post("/demo/{token}", response_class=HTMLResponse, include_in_schema=False)
    def demo_classify(token: str, text: Annotated[str, Form(max_length=MAX_DEMO_CHARS)] = "") -> HTMLResponse:
        share, job = shared_job(token)
        if job is None:
            return _not_found(share)
        if not text.strip():
            return _page(job, ctx, text="", error="Type a text first.")
        if wait := wait_seconds(share):
            error = f"This demo is busy: it answers at most {share.rate_per_minute or default_rate} texts a minute."
            page = _page(job, ctx, text=text, error=f"{error} Try again in {wait} s.")
            return HTMLResponse(page.body, 429, headers={**_NO_STORE, "Retry-After": str(wait)})
        predictor = ctx.predictors.get(ctx.local_model_dir(job))
        answer = predictor.serve({**_task(job).request_for_text(text), "max_new_tokens": DEMO_NEW_TOKENS})
        return _page(job, ctx, text=text, answer=answer)

    @router.post("/demo/{token}/predict", include_in_schema=False)
    def demo_predict(token: str, body: DemoRequest) -> JSONResponse:
        share, job = shared_job(token)
        if job is None:
            return JSONResponse({"detail": _gone_words(share), "expired": _expired(share)}, 404, headers=_NO_STORE)
        if wait := wait_seconds(share):
            limit = share.rate_per_minute or default_rate
            detail = f"this demo link answers at most {limit} predictions a minute; try again in {wait} s"
            return JSONResponse({"detail": detail}, 429, headers={**_NO_STORE, "Retry-After": str(wait)})
        predictor = ctx.predictors.get(ctx.local_model_dir(job))
        answer = predictor.serve({**_task(job).request_for_text(body.text), "max_new_tokens": DEMO_NEW_TOKENS})
        # One text in, one answer out: the predictions list of a classifier and the spans of a tagger unwrap.
        served = answer.get("variant")
        for key in ("predictions", "entities"):
            if key in answer:
                answer = answer[key][0] if key == "predictions" else {"entities": answer[key][0]}
        answer.pop("task", None)
        if served:  # a share serves the model as trained; the answer says so, as the Playground's do
            answer["variant"] = served
        return JSONResponse(answer, headers=_NO_STORE)

    return router


def _task(job: Job) -> Task:
    try:
        return get_task((job.spec or {}).get("task"))
    except ValueError:
        return default_task()


def _about(job: Job, ctx: AppContext) -> str:
    spec = job.spec or {}
    labels = [html.escape(label) for label in _labels(job, ctx)]
    data = file_name((spec.get("data") or {}).get("train"))
    base = html.escape(str(spec.get("base_model", "")).split("/")[-1])
    trained = f" on <em>{html.escape(data)}</em>" if data else ""
    return _task(job).about(base, trained, labels)


def _labels(job: Job, ctx: AppContext) -> list[str]:
    config = ctx.local_model_dir(job) / "config.json"
    id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label") or {}
    labels = [id2label[key] for key in sorted(id2label, key=int)]
    task = _task(job)
    return task.shown_labels(labels)


def _page(
    job: Job,
    ctx: AppContext,
    *,
    text: str,
    answer: dict | None = None,
    error: str = "",
) -> HTMLResponse:
    task = _task(job)
    prompt, action, button_id = task.demo_prompt
    answer = answer or {}
    spans = answer["entities"][0] if "entities" in answer else None
    reply = answer.get("reply")
    scores = answer["predictions"][0]["scores"] if "predictions" in answer else None
    parts = [
        "<h1>Try this model</h1>",
        f'<p class="about">{_about(job, ctx)}</p>',
        '<form method="post">',
        f'<label for="text">{prompt}</label>',
        f'<textarea id="text" name="text" maxlength="{MAX_DEMO_CHARS}" required>{html.escape(text)}</textarea>',
        f'<button type="submit" id="{button_id}">{action}</button>',
        "</form>",
    ]
    if error:
        parts.append(f'<p class="error">{html.escape(error)}</p>')
    if spans is not None:
        found = f"{len(spans)} entit{'y' if len(spans) == 1 else 'ies'} found" if spans else "No entity found"
        parts.append(
            f'<section class="result" id="result"><h2>{found}</h2>'
            f'<p class="tagged">{spans_html(text, spans, _labels(job, ctx))}</p></section>'
        )
    if reply is not None:
        parts.append(
            '<section class="result" id="result"><h2>Reply</h2>'
            f'<div class="reply">{html.escape(reply)}</div></section>'
        )
    if scores:
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        rows = []
        for rank, (label, share) in enumerate(ranked):
            rows.append(
                f'<div class="row{" top" if rank == 0 else ""}" data-label="{html.escape(label)}">'
                f'<span class="name">{html.escape(label)}</span>'
                f'<span class="bar"><span class="fill" style="display:block;width:{share * 100:.1f}%"></span></span>'
                f'<span class="pct">{share:.1%}</span></div>'
            )
        top = html.escape(ranked[0][0])
        parts.append(
            f'<section class="result" id="result"><h2>Prediction: {top}</h2>'
            f"<p>Probability of each label:</p>{''.join(rows)}</section>"
        )
    variant = answer.get("variant")
    if variant:
        served = "the original model, as trained" if variant == "original" else f"the {variant} variant"
        parts.append(f'<p class="served" id="served">Served by {html.escape(served)}.</p>')
    footer = "A read-only demo made with Finetune Playground. What you type is used for this answer and not stored."
    page = _PAGE.format(title="Try this model · Finetune Playground", body="\n".join(parts), footer=footer)
    return HTMLResponse(page, headers=_NO_STORE)


def _expired(share: Share | None) -> bool:
    return share is not None and share.expired


def _gone_words(share: Share | None) -> str:
    if _expired(share):
        return f"this demo link expired on {share.expires_at:%Y-%m-%d %H:%M} UTC; ask its owner for a new one"
    return "this demo link does not exist or was revoked"


def _not_found(share: Share | None = None) -> HTMLResponse:
    if _expired(share):
        title = "Demo link expired"
        body = (
            f"<h1>{title}</h1><p>This demo link expired on {share.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Ask its owner for a new link.</p>"
        )
    else:
        title = "Demo not found"
        body = (
            f"<h1>{title}</h1><p>This demo link does not exist or was switched off by its owner. "
            "Ask them for a new link.</p>"
        )
    page = _PAGE.format(title=title, body=body, footer="Finetune Playground")
    return HTMLResponse(page, status_code=404, headers=_NO_STORE)
