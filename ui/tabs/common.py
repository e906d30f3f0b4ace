"""Helpers every tab uses: callbacks bound to the app context, who is asking, downloads, field bounds."""

from __future__ import annotations

import functools
import inspect
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic.fields import FieldInfo

from ui.context import AppContext

# Files handed to the browser are copied here first (Gradio then serves its own copy); old ones are swept.
_DOWNLOADS = "playground-downloads"
_DOWNLOAD_TTL_SECONDS = 3600


def bind(ctx: AppContext, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn(ctx, ...)` as a Gradio callback: ctx filled in, the other parameters left as they are for Gradio to read.

    Gradio reads a callback's parameter names (its API's input names), its `gr.Request` parameter and whether it is
    a generator (a streaming reply); the wrapper keeps all three, so callbacks can be top-level, testable functions.
    """
    signature = inspect.signature(fn)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def bound(*args: Any, **kwargs: Any) -> Any:
            yield from fn(ctx, *args, **kwargs)

    else:

        @functools.wraps(fn)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return fn(ctx, *args, **kwargs)

    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return bound


def named_inputs(names: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn `fn(ctx, values, request)` into a callback with one named parameter per input, `(ctx, *names,
    request=None)`: Gradio's API shows each input by name, and the inputs are listed once, in `names`."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        parameters = [
            inspect.Parameter("ctx", kind),
            *(inspect.Parameter(name, kind, default=None) for name in names),
            inspect.Parameter("request", kind, default=None, annotation=gr.Request),
        ]
        signature = inspect.Signature(parameters)

        @functools.wraps(fn)
        def called(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = bound.arguments
            return fn(given["ctx"], {name: given[name] for name in names}, given["request"])

        called.__signature__ = signature  # type: ignore[attr-defined]
        called.__annotations__ = {"request": gr.Request}
        del called.__wrapped__  # inspect.signature must read the signature above, not fn's own
        return called

    return wrap


def user_error(message: str) -> gr.Error:
    """An error the user can fix: shown on the page, not logged with a traceback on the server."""
    return gr.Error(message, print_exception=False, title="Can't do that yet")


def owner_of(ctx: AppContext, request: gr.Request | None) -> str:
    """The owner behind a Gradio request; an error when nobody is logged in but logins are required."""
    try:
        return ctx.owner(getattr(request, "username", None) if request is not None else None)
    except ValueError as exc:
        raise user_error(str(exc)) from exc


def download_dir() -> Path:
    """A fresh folder for one download, in the system temp dir (which Gradio may serve from)."""
    root = Path(tempfile.gettempdir()) / _DOWNLOADS
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _DOWNLOAD_TTL_SECONDS
    for old in root.iterdir():
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def copy_for_download(source: Path, name: str | None = None) -> str:
    """Copy a file into a fresh download folder and return the copy's path."""
    target = download_dir() / (name or source.name)
    shutil.copyfile(source, target)
    return str(target)


def bounds(field: FieldInfo, step: float) -> tuple[float | None, float | None]:
    """(minimum, maximum) a widget may offer for a pydantic field: ge/le as they are, gt/lt one step inside."""
    low = high = None
    for rule in field.metadata:
        if getattr(rule, "ge", None) is not None:
            low = rule.ge
        if getattr(rule, "gt", None) is not None:
            low = rule.gt + step
        if getattr(rule, "le", None) is not None:
            high = rule.le
        if getattr(rule, "lt", None) is not None:
            high = rule.lt - step
    return low, high


def help_text(field: FieldInfo) -> str:
    """A field's description, the help text shown under its widget."""
    return field.description or ""


def owned_report(ctx: AppContext, job_id: str | None, request: gr.Request) -> dict:
    """The report.json of one of the user's jobs; empty when none is picked or it cannot be read."""
    if not job_id:
        return {}
    try:
        return ctx.report(job_id, owner_of(ctx, request))
    except ValueError:
        return {}
