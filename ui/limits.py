"""Request limits for the whole web app: a body over its limit is refused with 413 before it is read whole, and
the sizes a prediction request may have (texts, characters, turns, tokens), shared by /api and /v1."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from engine.paths import max_upload_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What one prediction request may hold. A model reads a few hundred tokens of a text, so these only keep a single
# request from holding a worker thread (and the memory of its batch) for minutes.
MAX_PREDICT_TEXTS = 1000  # texts to classify or tag in one request
MAX_TEXT_CHARS = 20_000  # characters of one text to classify or tag
MAX_TOTAL_CHARS = 200_000  # characters of all the texts, or all the messages, of one request
MAX_CHAT_TURNS = 100  # messages in one conversation
MAX_CHAT_CHARS = 20_000  # characters of one message
MAX_NEW_TOKENS = 1024  # tokens of one reply

# Where files are uploaded (REST and Gradio's own upload route): the data-file limit, plus room for the form.
UPLOAD_PATHS = ("/api/datasets", "/gradio_api/upload", "/upload")
FORM_OVERHEAD = 1 << 20
OPENAI_PATHS = ("/v1/",)  # the OpenAI-compatible routes (ui/openai_api.py), whose errors have their own shape
# A refused body is read and dropped up to this much before the 413 goes out: a client still sending when the server
# closes gets a broken pipe instead of the answer (nginx's lingering close does the same). Larger bodies are cut off.
DRAIN_LIMIT = 64 << 20


def max_body_bytes() -> int:
    """Largest JSON or form body anywhere else (`PLAYGROUND_MAX_BODY_MB`, default 2 MB): specs, texts, chats."""
    return int(float(os.environ.get("PLAYGROUND_MAX_BODY_MB", "2")) * 1024 * 1024)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware that answers 413 to a body longer than its route's limit, by Content-Length or as it streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"].startswith(UPLOAD_PATHS)
        openai_shape = scope["path"].startswith(OPENAI_PATHS)
        limit = max_upload_bytes() + FORM_OVERHEAD if upload else max_body_bytes()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            if headers.get(b"expect", b"").lower() != b"100-continue":  # such a client waits for the answer unsent
                await _drain(receive, 0)
            await _refuse(send, limit, upload, openai_shape)
            return
        received, started, ended = 0, False, False

        async def counted() -> Message:
            nonlocal received, ended
            message = await receive()
            received += len(message.get("body", b""))
            ended = message["type"] != "http.request" or not message.get("more_body", False)
            if received > limit:
                raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                if not ended:  # a receive after the last chunk would wait for the client to hang up
                    await _drain(receive, received)
                await _refuse(send, limit, upload, openai_shape)


async def _drain(receive: Receive, received: int) -> None:
    """Read and drop the rest of a refused body, up to DRAIN_LIMIT, so that the client is reading when 413 comes."""
    while received < DRAIN_LIMIT:
        message = await receive()
        received += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _refuse(send: Send, limit: int, upload: bool, openai_shape: bool = False) -> None:
    what = "file" if upload else "request body"
    knob = "PLAYGROUND_MAX_UPLOAD_MB" if upload else "PLAYGROUND_MAX_BODY_MB"
    size = (limit - FORM_OVERHEAD if upload else limit) / 2**20
    detail = f"the {what} is larger than the {size:.3g} MB limit; send less, or raise {knob} on the server"
    answer: dict[str, Any] = {"detail": detail}
    if openai_shape:  # the /v1 routes answer in the OpenAI error shape that their clients read
        answer = {"error": {"message": detail, "type": "invalid_request_error", "param": None, "code": "too_large"}}
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
