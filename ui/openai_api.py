"""OpenAI-compatible routes under /v1, beside the REST API: chat completions (whole, or streamed as server-sent
events), the caller's models, and /v1/classify and /v1/tag for classifiers and taggers.

A model is named by the id of a finished training job. Calls take the REST API's auth (ui/auth.py), so an OpenAI
client's api_key is an API token; errors come in OpenAI's {"error": {message, type, param, code}} shape, which its
clients raise as BadRequestError, NotFoundError and so on.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.export import VARIANTS
from engine.tasks import get_task
from ui.auth import Owner
from ui.context import AppContext
from ui.limits import (
    MAX_CHAT_CHARS,
    MAX_CHAT_TURNS,
    MAX_NEW_TOKENS,
    MAX_PREDICT_TEXTS,
    MAX_TEXT_CHARS,
    MAX_TOTAL_CHARS,
    OPENAI_PATHS,
)
from worker.api import JobNotFoundError
from worker.records import TRAIN, Job

if TYPE_CHECKING:
    from engine.predict import Predictor
    from engine.tasks.chat.generation import ReplyStream

log = logging.getLogger(__name__)

# The route for each interaction a task offers (engine.tasks.base.Playground): where a model of that task is used.
ENDPOINTS = {"chat": "/v1/chat/completions", "classify": "/v1/classify", "tag": "/v1/tag"}
MAX_STOP = 4  # stop strings per request, as OpenAI allows
MAX_SHOWN_PROBLEMS = 3  # validation problems a 400 lists
# Options that would change what a reply is; asked for, they get a 400 rather than a reply that silently lacks them.
UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs", "audio", "modalities")


class OpenAIError(Exception):
    """An error answered in OpenAI's shape: {"error": {message, type, param, code}} with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict[str, Any]:
        """The JSON the client reads."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ModelRef:
    """What a request's `model` names: a finished training job, or an exported variant of its model (JOB_ID@int8)."""

    job_id: str
    variant: str | None = None

    @property
    def served(self) -> str:
        """The id the answers carry as their `model`: the variant's when one served."""
        return f"{self.job_id}@{self.variant}" if self.variant else self.job_id


def parse_model_id(model: str) -> ModelRef:
    """The job (and variant) a `model` field names: JOB_ID, or JOB_ID@VARIANT for an exported variant."""
    text = (model or "").strip()
    if not text:
        raise OpenAIError(
            400, "model is empty; pass the id of a finished training job (GET /v1/models)", param="model"
        )
    job_id, _, variant = text.partition("@")
    if "@" in text and (not job_id.strip() or variant.strip() not in VARIANTS):
        raise OpenAIError(
            404,
            f"model {text!r}: a variant is named JOB_ID@VARIANT, VARIANT one of {', '.join(VARIANTS)}",
            param="model",
            code="model_not_found",
        )
    return ModelRef(job_id.strip(), variant.strip() or None)


class ChatMessage(BaseModel):
    """One turn of a conversation, as OpenAI clients send it (content a string or a list of text parts)."""

    model_config = ConfigDict(extra="ignore")  # "name" and other per-message fields do not change the reply

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    def text(self, index: int) -> str:
        """The message's text; parts other than text are refused."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        kinds = [part.get("type") for part in self.content]
        if any(kind != "text" for kind in kinds):
            other = next(kind for kind in kinds if kind != "text")
            raise OpenAIError(
                400, f"messages[{index}] has a {other!r} part; only text is served", param=f"messages[{index}]"
            )
        return "\n".join(str(part.get("text", "")) for part in self.content)

    def turn(self, index: int) -> dict[str, str]:
        """The {role, content} the chat template reads; a developer message is a system message to it."""
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text(index)}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """Body of POST /v1/chat/completions."""

    model_config = ConfigDict(extra="allow")  # clients send options like "user" that change nothing here

    model: str = Field(description="The id of a finished chat training job (GET /v1/models).")
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="Longest reply in tokens (default 256).")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="The same as max_tokens.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="0 answers greedily (default 0.7).")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling share (default 0.9).")
    n: int | None = Field(default=None, description="Replies per request: only 1.")
    stop: str | list[str] | None = Field(default=None, description="Up to 4 strings the reply ends before.")
    seed: int | None = Field(default=None, description="Sampled replies repeat with the same seed.")


class TextsRequest(BaseModel):
    """Body of POST /v1/classify and /v1/tag."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The id of a finished training job of the right task (GET /v1/models).")
    input: str | list[str] = Field(description="One text, or a list of texts.")


def check_texts(texts: list[str]) -> None:
    """Refuse texts over the request limits, naming the limit."""
    if not texts:
        raise OpenAIError(400, "input is an empty list; send a text or a list of texts", param="input")
    if len(texts) > MAX_PREDICT_TEXTS:
        raise OpenAIError(
            400, f"input holds {len(texts)} texts; the limit is {MAX_PREDICT_TEXTS} per request", param="input"
        )
    for i, text in enumerate(texts):
        if len(text) > MAX_TEXT_CHARS:
            raise OpenAIError(
                400, f"input[{i}] is {len(text)} characters; the limit is {MAX_TEXT_CHARS} per text", param="input"
            )
    _check_total(sum(len(text) for text in texts), "input")


def check_chat(body: ChatCompletionRequest) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The conversation and the generation options of a chat request, refused when over a limit."""
    unsupported = [name for name in UNSUPPORTED if (body.model_extra or {}).get(name)]
    if unsupported:
        raise OpenAIError(400, f"{unsupported[0]!r} is not supported by this server", param=unsupported[0])
    if body.n not in (None, 1):
        raise OpenAIError(400, f"n is {body.n}; this server gives one reply per request (n=1)", param="n")
    if not body.messages:
        raise OpenAIError(400, "messages is empty; send at least one {role, content}", param="messages")
    if len(body.messages) > MAX_CHAT_TURNS:
        raise OpenAIError(
            400,
            f"messages holds {len(body.messages)} messages; the limit is {MAX_CHAT_TURNS} per conversation",
            param="messages",
        )
    turns = [message.turn(i) for i, message in enumerate(body.messages)]
    for i, turn in enumerate(turns):
        if len(turn["content"]) > MAX_CHAT_CHARS:
            raise OpenAIError(
                400,
                f"messages[{i}] is {len(turn['content'])} characters; the limit is {MAX_CHAT_CHARS} per message",
                param=f"messages[{i}].content",
            )
    _check_total(sum(len(turn["content"]) for turn in turns), "messages")
    return turns, _generation_options(body)


def _generation_options(body: ChatCompletionRequest) -> dict[str, Any]:
    # Only what the request gives: the rest keeps Predictor.stream_chat's defaults, the playground's own.
    name = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    limit = getattr(body, name)
    if limit is not None and limit > MAX_NEW_TOKENS:
        raise OpenAIError(400, f"{name} is {limit}; the limit is {MAX_NEW_TOKENS} tokens per reply", param=name)
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > MAX_STOP:
        raise OpenAIError(400, f"stop holds {len(stop)} strings; the limit is {MAX_STOP}", param="stop")
    given = {"max_new_tokens": limit, "temperature": body.temperature, "top_p": body.top_p, "seed": body.seed}
    return {key: value for key, value in given.items() if value is not None} | ({"stop": stop} if stop else {})


def _check_total(chars: int, param: str) -> None:
    if chars > MAX_TOTAL_CHARS:
        raise OpenAIError(
            413,
            f"{param} holds {chars} characters in all; the limit is {MAX_TOTAL_CHARS} per request",
            param=param,
            code="request_too_large",
        )


def install(app: FastAPI, ctx: AppContext) -> None:
    """Serve the /v1 routes on `app`, with OpenAI-shaped errors there; the other routes keep FastAPI's."""
    app.include_router(openai_router(ctx))
    app.add_exception_handler(OpenAIError, _openai_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def openai_router(ctx: AppContext) -> APIRouter:
    """The /v1 routes; every one is scoped to the caller, like the REST API."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    _model_routes(router, ctx)
    _chat_routes(router, ctx)
    _text_routes(router, ctx)
    return router


def _model_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.get("/models")
    def list_models(owner: Owner):
        """Your finished training jobs, each a model to name in the other /v1 routes."""
        cards = []
        for job in ctx.finished_jobs(owner, kind=TRAIN):
            cards.append(_model_card(job))
            # Each exported variant is a model of its own to name: JOB_ID@int8.
            cards += [_model_card(job, variant) for variant in ctx.variants(job)]
        return {"object": "list", "data": cards}

    @router.get("/models/{model_id}")
    def get_model(model_id: str, owner: Owner):
        """One of your models."""
        return _model_card(_finished_job(ctx, parse_model_id(model_id), owner))


def _chat_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.post("/chat/completions")
    def chat_completions(body: ChatCompletionRequest, owner: Owner):
        """The reply of a fine-tuned chat model to `messages`: a chat.completion, or with `stream` server-sent
        chat.completion.chunk events ending in `data: [DONE]`."""
        turns, options = check_chat(body)
        ref = parse_model_id(body.model)
        stream = _open_reply(_predictor(ctx, ref, owner, "chat"), turns, options)
        base = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": ref.served}
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not hold events back
            return StreamingResponse(_events(stream, base, usage), media_type="text/event-stream", headers=headers)
        content = "".join(stream)
        return {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": stream.finish_reason,
                }
            ],
            "usage": _usage(stream),
        }


def _text_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.post("/classify")
    def classify(body: TextsRequest, owner: Owner):
        """A classifier's label, its probability and every label's probability for each input text."""
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_texts(texts)
        ref = parse_model_id(body.model)
        results = _predictor(ctx, ref, owner, "classify").classify(texts)
        return {"object": "list", "model": ref.served, "data": [{"index": i, **r} for i, r in enumerate(results)]}

    @router.post("/tag")
    def tag(body: TextsRequest, owner: Owner):
        """A tagger's entity spans (text, type, start, end, score) for each input text."""
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_texts(texts)
        ref = parse_model_id(body.model)
        results = _predictor(ctx, ref, owner, "tag").tag(texts)
        return {
            "object": "list",
            "model": ref.served,
            "data": [{"index": i, "entities": spans} for i, spans in enumerate(results)],
        }


def _finished_job(ctx: AppContext, ref: ModelRef, owner: str) -> Job:
    try:
        return ctx.finished_model(ref.job_id, owner)
    except JobNotFoundError as exc:  # someone else's job too: it answers exactly like one that does not exist
        raise OpenAIError(
            404, f"no model {ref.job_id!r}; GET /v1/models lists yours", param="model", code="model_not_found"
        ) from exc
    except ValueError as exc:  # an evaluation job, or one that has not succeeded
        raise OpenAIError(409, str(exc), param="model", code="model_not_ready") from exc


def _predictor(ctx: AppContext, ref: ModelRef, owner: str, interaction: str) -> Predictor:
    """The loaded model `ref` names, refused unless its task is used through `interaction` (chat, classify, tag)."""
    job = _finished_job(ctx, ref, owner)
    task = get_task(job.spec.get("task"))
    if task.playground != interaction:
        raise OpenAIError(
            400,
            f"model {ref.served} is a {task.name} model; use {ENDPOINTS[task.playground]} for it, "
            f"not {ENDPOINTS[interaction]}",
            param="model",
            code="wrong_endpoint",
        )
    try:
        return ctx.predictor(job.id, owner, ref.variant)
    except ValueError as exc:  # the model files are gone, or no such variant was exported
        raise OpenAIError(409, ctx.public_text(str(exc)), param="model", code="model_not_ready") from exc


def _open_reply(predictor: Predictor, turns: list[dict[str, str]], options: dict[str, Any]) -> ReplyStream:
    try:
        stream = predictor.stream_chat(turns, **options)
    except ValueError as exc:  # a conversation the model's chat template refuses (two system turns, say)
        raise OpenAIError(400, f"messages: {exc}", param="messages") from exc
    if stream.context_length and stream.prompt_tokens + stream.max_new_tokens > stream.context_length:
        raise OpenAIError(
            400,
            f"the messages are {stream.prompt_tokens} tokens and the reply may be {stream.max_new_tokens}; the model "
            f"reads at most {stream.context_length} tokens in all: send fewer or shorter messages, or a lower "
            "max_tokens",
            param="messages",
            code="context_length_exceeded",
        )
    return stream


async def _events(stream: ReplyStream, base: dict[str, Any], include_usage: bool) -> AsyncIterator[str]:
    """The reply as chat.completion.chunk events: the role first, then the text piece by piece, then why it ended."""

    def chunk(delta: dict[str, str], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**base, "object": "chat.completion.chunk", "choices": [choice]})

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for piece in iterate_in_threadpool(stream):
            yield chunk({"content": piece})
        yield chunk({}, stream.finish_reason)
        if include_usage:
            yield _sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": _usage(stream)})
        yield "data: [DONE]\n\n"
    except Exception as exc:  # the 200 has gone out: the client can only learn of the failure from an event
        log.exception("generation failed for %s", base["model"])
        error = OpenAIError(500, f"generation failed: {exc}", type_="server_error").body()
        yield _sse(error)
    finally:
        stream.close()  # a client that hung up stops the generation at its next token


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _usage(stream: ReplyStream) -> dict[str, int]:
    return {
        "prompt_tokens": stream.prompt_tokens,
        "completion_tokens": stream.new_tokens,
        "total_tokens": stream.prompt_tokens + stream.new_tokens,
    }


def _model_card(job: Job, variant: str | None = None) -> dict[str, Any]:
    made = job.finished_at or job.created_at
    return {
        "id": ModelRef(job.id, variant).served,
        "variant": variant or "original",
        "object": "model",
        "created": int(made.replace(tzinfo=UTC).timestamp()),
        "owned_by": job.owner,
        "task": job.spec.get("task"),
    }


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PATHS)


async def _openai_error(request: Request, exc: OpenAIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: StarletteHTTPException):
    if not _is_openai(request):
        return await http_exception_handler(request, exc)
    codes = {401: "invalid_api_key", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed"}
    error = OpenAIError(exc.status_code, str(exc.detail), code=codes.get(exc.status_code))
    return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError):
    if not _is_openai(request):
        return await request_validation_exception_handler(request, exc)
    problems = jsonable_encoder(exc.errors())[:MAX_SHOWN_PROBLEMS]  # 1000 bad inputs need not make 1000 lines
    where = [".".join(str(part) for part in problem.get("loc", ())[1:]) for problem in problems]
    if problems and problems[0].get("type") == "json_invalid":
        message = f"the body is not valid JSON ({problems[0].get('ctx', {}).get('error', 'cannot parse it')})"
    elif where == [""]:  # the body as a whole: none, or not an object (curl without -H 'Content-Type: ...')
        message = "send a JSON object as the body, with 'Content-Type: application/json'"
    else:
        message = "; ".join(f"{at}: {problem.get('msg')}" for at, problem in zip(where, problems, strict=True))
    param = (where[0] or None) if where else None
    return JSONResponse(OpenAIError(400, message, param=param).body(), status_code=400)
