"""The API tokens section's callbacks, called directly on a real AppContext (SQLite store, users alice and bob): a new
token's secret is shown once and opens the REST API as its owner until revoked; nobody sees another user's tokens."""

from __future__ import annotations

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ui.context import AppContext
from ui.server import api_router
from ui.tabs import account

ALICE = gr.Request(username="alice")
BOB = gr.Request(username="bob")


def quota_status(ctx: AppContext, secret: str) -> int:
    """The status of GET /api/quota sent with the token, as a script would send it."""
    app = FastAPI()
    app.state.ctx = ctx
    app.include_router(api_router(ctx))
    return TestClient(app).get("/api/quota", headers={"Authorization": f"Bearer {secret}"}).status_code


def test_a_new_token_is_shown_once_and_opens_the_api_as_its_owner(ctx: AppContext):
    table, pick, secret_box, note, name = account.create_token(ctx, "nightly eval", ALICE)
    secret = secret_box.value
    assert secret.startswith("fp-") and secret_box.visible is True
    assert "will not be shown again" in note and name == ""  # the name box is emptied for the next one
    assert table.values.tolist() == [["nightly eval", table.iloc[0]["Created"], "never", "no"]]
    assert ctx.tokens.owner_of(secret) == "alice"
    assert quota_status(ctx, secret) == 200

    listed, picker = account.list_tokens(ctx, ALICE)  # what the page shows later: never the secret again
    assert secret not in listed.to_string() and all(secret not in label for label, _ in picker.choices)
    assert listed.iloc[0]["Last used"] != "never"  # the API call above was recorded
    assert [value for _, value in picker.choices] == [token.id for token in ctx.tokens.list("alice")]


def test_revoking_a_token_makes_it_fail_and_only_its_owner_may(ctx: AppContext):
    _, _, secret_box, _, _ = account.create_token(ctx, "ci", ALICE)
    secret = secret_box.value
    (token,) = ctx.tokens.list("alice")
    with pytest.raises(gr.Error, match="no working token"):
        account.revoke_token(ctx, token.id, BOB)  # bob cannot switch alice's token off
    assert ctx.tokens.owner_of(secret) == "alice"
    with pytest.raises(gr.Error, match="no token picked"):
        account.revoke_token(ctx, None, ALICE)

    table, picker, hidden, note = account.revoke_token(ctx, token.id, ALICE)
    assert ctx.tokens.owner_of(secret) is None
    assert quota_status(ctx, secret) == 401
    assert table.iloc[0]["Revoked"] != "no" and picker.choices == []  # still listed, marked; no longer revocable
    assert hidden.visible is False and note == ""
    with pytest.raises(gr.Error, match="no working token"):
        account.revoke_token(ctx, token.id, ALICE)


def test_another_users_tokens_are_not_listed(ctx: AppContext):
    account.create_token(ctx, "alice's script", ALICE)
    table, picker = account.list_tokens(ctx, BOB)
    assert table.empty and picker.choices == []
    account.create_token(ctx, "bob's script", BOB)
    table, _ = account.list_tokens(ctx, BOB)
    assert table["Name"].tolist() == ["bob's script"]


def test_a_name_over_the_limit_is_refused_and_nothing_is_made(ctx: AppContext):
    with pytest.raises(gr.Error, match="the limit is 100"):
        account.create_token(ctx, "x" * 101, ALICE)
    assert ctx.tokens.list("alice", include_revoked=True) == []


def test_the_section_builds_inside_the_page(ctx: AppContext):
    with gr.Blocks():
        section = account.build(ctx)
    table, picker = section.refresh(ALICE)
    assert table.empty and picker.choices == [] and section.secret.visible is False
