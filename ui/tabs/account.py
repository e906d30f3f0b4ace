"""API tokens: a user makes, lists and revokes the tokens their scripts send to the REST API instead of a password
(`Authorization: Bearer fp-...`, or an OpenAI client's api_key). Shown at the bottom of the Jobs tab.

Everything shown is read from the token store for the user behind the request; a new token's secret is only ever in
the one answer that made it (the store keeps its hash), so it is shown once, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ui.context import AppContext
from ui.tabs.common import bind, owner_of, user_error
from ui.views import when
from worker.tokens import MAX_NAME_CHARS, ApiToken

TOKEN_COLUMNS = ["Name", "Created", "Last used", "Revoked"]
SHOWN_ONCE = (
    "**Copy this token now: it will not be shown again.** Send it as `Authorization: Bearer <token>` "
    "(or as an OpenAI client's `api_key`). Lost it? Revoke it below and make a new one."
)
INTRO = "Tokens let scripts call the REST API (`/api/...`, `/v1/...`) as you, without your password."
SINGLE_USER = " This server runs for one user, so calls need no token yet; they work once logins are switched on."


@dataclass
class AccountSection:
    """The API tokens section: its listing (the table and the revoke picker) and how to fill it."""

    table: gr.Dataframe
    revoke_pick: gr.Dropdown
    secret: gr.Textbox
    refresh: Callable[..., tuple]  # (request) -> (table, revoke picker)


def token_listing(tokens: list[ApiToken]) -> tuple[pd.DataFrame, gr.Dropdown]:
    """The tokens as a table (revoked ones too, marked), and the ones still working for the revoke picker."""
    rows = [
        [t.name or "(no name)", when(t.created_at), when(t.last_used_at) or "never", when(t.revoked_at) or "no"]
        for t in tokens
    ]
    working = [t for t in tokens if not t.revoked]
    choices = [(f"{t.name or '(no name)'} · made {when(t.created_at)} · {t.id}", t.id) for t in working]
    return pd.DataFrame(rows, columns=TOKEN_COLUMNS), gr.Dropdown(choices=choices, value=None)


def list_tokens(ctx: AppContext, request: gr.Request):
    """The user's tokens, newest first, and the picker of those that can be revoked."""
    owner = owner_of(ctx, request)
    return token_listing(ctx.tokens.list(owner, include_revoked=True))


def create_token(ctx: AppContext, name: str | None, request: gr.Request):
    """Make a token for the user: the listing, the secret (shown this once) with its note, and an empty name box."""
    owner = owner_of(ctx, request)
    try:
        _, secret = ctx.tokens.create(owner, name or "")
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    return *list_tokens(ctx, request), gr.Textbox(value=secret, visible=True), SHOWN_ONCE, ""


def revoke_token(ctx: AppContext, token_id: str | None, request: gr.Request):
    """Switch one of the user's tokens off: calls with it answer 401 from now on. The last secret shown is hidden."""
    owner = owner_of(ctx, request)
    if not token_id:
        raise user_error("no token picked; pick the token to revoke first")
    if not ctx.tokens.revoke(token_id, owner):
        raise user_error(f"no working token {token_id!r} of yours; it may be revoked already (see the list)")
    gr.Info("token revoked")
    return *list_tokens(ctx, request), gr.Textbox(value="", visible=False), ""


def build(ctx: AppContext) -> AccountSection:
    """Lay out the API tokens section (an accordion, closed) and wire its events."""
    with gr.Accordion("API tokens", open=False, elem_id="account-tokens") as section:
        gr.Markdown(INTRO + ("" if ctx.users.enabled else SINGLE_USER))
        table = gr.Dataframe(
            value=pd.DataFrame(columns=TOKEN_COLUMNS), label="Your tokens", interactive=False, elem_id="tokens-table"
        )
        with gr.Row(equal_height=True):
            name = gr.Textbox(
                label="Name of a new token",
                placeholder="what it is for, e.g. nightly-eval script",
                max_length=MAX_NAME_CHARS,
                scale=3,
                elem_id="tokens-name",
            )
            create = gr.Button("Create token", variant="primary", scale=1, elem_id="tokens-create")
        secret = gr.Textbox(
            label="Your new token", interactive=False, visible=False, buttons=["copy"], elem_id="tokens-secret"
        )
        note = gr.Markdown(elem_id="tokens-note")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown(label="Token to revoke", choices=[], value=None, scale=3, elem_id="tokens-pick")
            revoke = gr.Button("Revoke", variant="stop", scale=1, elem_id="tokens-revoke")
    listing = [table, pick]
    refresh = bind(ctx, list_tokens)
    section.expand(refresh, None, listing, api_visibility="private")
    create.click(bind(ctx, create_token), [name], [*listing, secret, note, name], api_visibility="private")
    revoke.click(bind(ctx, revoke_token), [pick], [*listing, secret, note], api_visibility="private")
    return AccountSection(table, pick, secret, refresh)
