"""Playground tab: try a finished model on a text or a whole file, and share it as a read-only demo link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.errors import DataError
from engine.tabular import read_table
from ui.context import AppContext
from ui.tabs.common import download_dir, owner_of, user_error
from ui.tabs.data import FILE_TYPES
from ui.views import job_choice, job_title, when

MAX_TEXT_CHARS = 20_000
SHARE_COLUMNS = ["Link", "Model", "Created"]


@dataclass
class PlaygroundTab:
    """The model picker (other tabs open a model by setting it) and how to refresh its choices."""

    model: gr.Dropdown
    shares: list  # [share table, revoke picker], refreshed together with the model picker
    refresh_choices: Callable[..., tuple]  # (current, request) -> (model picker, share table, revoke picker)


def public_base(request: gr.Request | None) -> str:
    """The address the browser used to reach the app, for share links (honours reverse-proxy headers)."""
    headers = {k.lower(): v for k, v in dict(getattr(request, "headers", None) or {}).items()}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    scheme = headers.get("x-forwarded-proto") or getattr(getattr(request, "url", None), "scheme", None) or "http"
    return f"{scheme}://{host}"


def build(ctx: AppContext) -> PlaygroundTab:
    """Lay out the Playground tab and wire its events."""
    with gr.Row():
        model = gr.Dropdown(
            label="Model (a finished training run)",
            choices=[],
            value=None,
            allow_custom_value=True,
            scale=4,
            elem_id="playground-model",
        )
        refresh = gr.Button("↻", size="sm", scale=0, min_width=40, elem_id="playground-refresh")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            text = gr.Textbox(
                label="Type or paste a text",
                lines=4,
                max_length=MAX_TEXT_CHARS,
                placeholder="A tender, funny film with a terrific cast.",
                elem_id="playground-text",
            )
            classify_button = gr.Button("Classify", variant="primary", elem_id="playground-classify")
        with gr.Column(scale=2):
            result = gr.Label(label="Probability of each label", elem_id="playground-result")
    with gr.Accordion("Classify a whole file", open=False, elem_id="playground-file-section"):
        with gr.Row():
            file_in = gr.File(label="File of texts", file_types=FILE_TYPES, height=110, elem_id="playground-file")
            with gr.Column():
                column = gr.Dropdown(
                    label="Column with the texts (guessed when empty)", choices=[], allow_custom_value=True
                )
                predict_button = gr.Button("Predict every row", elem_id="playground-predict-file")
            file_out = gr.File(label="Predictions (CSV)", interactive=False, elem_id="playground-predictions")
        predictions_preview = gr.Dataframe(label="First predictions", interactive=False, wrap=True, max_height=260)
    with gr.Accordion("Share a demo of this model", open=False, elem_id="playground-share-section"):
        gr.Markdown(
            "A share link opens a small page where anyone with the link can try this model, **without logging in**. "
            "They cannot see your data, jobs or other models. Revoke a link to switch it off."
        )
        share_button = gr.Button("Create a share link", elem_id="playground-share")
        share_message = gr.Markdown(elem_id="playground-share-message")
        shares = gr.Dataframe(
            value=pd.DataFrame(columns=SHARE_COLUMNS),
            label="Your active share links",
            datatype=["markdown", "str", "str"],
            interactive=False,
            wrap=True,
            elem_id="playground-shares",
        )
        with gr.Row():
            revoke_pick = gr.Dropdown(
                label="Link to revoke", choices=[], allow_custom_value=True, scale=4, elem_id="playground-revoke-pick"
            )
            revoke_button = gr.Button("Revoke", variant="stop", scale=0, min_width=120, elem_id="playground-revoke")

    def share_listing(owner: str, request: gr.Request | None):
        base = public_base(request)
        rows, choices = [], []
        for share in ctx.shares.list(owner):
            url = f"{base}{share.path}"
            try:
                what = job_title(ctx.job(share.job_id, owner))
            except ValueError:
                what = share.job_id
            rows.append([f"[{url}]({url})", f"{share.job_id[:8]} · {what}", when(share.created_at)])
            choices.append((f"{share.token[:10]}… · {share.job_id[:8]} · {when(share.created_at)}", share.token))
        return pd.DataFrame(rows, columns=SHARE_COLUMNS), gr.Dropdown(choices=choices, value=None)

    def refresh_choices(current: str | None, request: gr.Request):
        """Finished training runs of the owner, and their share links."""
        owner = owner_of(ctx, request)
        choices = [job_choice(j) for j in ctx.finished_jobs(owner, kind="train")]
        value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
        return gr.Dropdown(choices=choices, value=value), *share_listing(owner, request)

    def classify(job_id: str | None, sentence: str, request: gr.Request):
        """Every label's probability for one text, from the picked model."""
        owner = owner_of(ctx, request)
        if not (sentence or "").strip():
            raise user_error("Type a text to classify first.")
        try:
            predictor = ctx.predictor(job_id, owner)
        except ValueError as exc:
            raise user_error(str(exc)) from exc
        return predictor.classify([sentence[:MAX_TEXT_CHARS]])[0]["scores"]

    def file_columns(path: str | None):
        if not path:
            return gr.Dropdown(choices=[], value=None)
        try:
            frame = read_table(path).frame
        except DataError as exc:
            raise user_error(str(exc)) from exc
        return gr.Dropdown(choices=[str(c) for c in frame.columns], value=None)

    def predict_file(job_id: str | None, path: str | None, text_column: str | None, request: gr.Request):
        """Classify every row of an uploaded file; returns a CSV with the prediction and each label's probability."""
        from engine.predict import predict_file as predict_rows

        owner = owner_of(ctx, request)
        if not path:
            raise user_error("Upload a file of texts first.")
        try:
            predictor = ctx.predictor(job_id, owner)
            output = download_dir() / f"{Path(path).stem}-predictions.csv"
            predict_rows(predictor, path, output, text_column=text_column or None)
        except (DataError, ValueError) as exc:
            raise user_error(str(exc)) from exc
        return str(output), pd.read_csv(output).head(20)

    def create_share(job_id: str | None, request: gr.Request):
        """A new share link for the picked model; returns the link and the updated list."""
        owner = owner_of(ctx, request)
        try:
            record = ctx.finished_model(job_id, owner)
        except ValueError as exc:
            raise user_error(str(exc)) from exc
        share = ctx.shares.create(owner, record.id)
        url = f"{public_base(request)}{share.path}"
        message = f"✓ **Share link created:** [{url}]({url}) (anyone with it can try this model)"
        return message, *share_listing(owner, request)

    def revoke_share(token: str | None, request: gr.Request):
        """Switch a share link off; it answers 'not found' from now on."""
        owner = owner_of(ctx, request)
        if not token:
            raise user_error("Pick a link to revoke first.")
        if not ctx.shares.revoke(token, owner):
            raise user_error("That link is not one of your active links.")
        return "Link revoked: it now answers “not found”.", *share_listing(owner, request)

    refresh.click(refresh_choices, [model], [model, shares, revoke_pick], api_name="list_models")
    gr.on(
        [classify_button.click, text.submit],
        classify,
        [model, text],
        [result],
        api_name="classify",
        concurrency_limit=2,
    )
    file_in.upload(file_columns, [file_in], [column], api_visibility="private")
    predict_button.click(
        predict_file, [model, file_in, column], [file_out, predictions_preview], api_name="predict_file"
    )
    share_button.click(create_share, [model], [share_message, shares, revoke_pick], api_name="create_share")
    revoke_button.click(revoke_share, [revoke_pick], [share_message, shares, revoke_pick], api_name="revoke_share")
    return PlaygroundTab(model, [shares, revoke_pick], refresh_choices)
