"""Playground tab: try a finished model on a text or a whole file, and share it as a read-only demo link."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.errors import DataError
from engine.report_views import readable_frame
from engine.tabular import read_table
from engine.tasks import default_task, get_task
from ui.context import AppContext
from ui.tabs import playground_variants
from ui.tabs.common import bind, download_dir, owner_of, user_error
from ui.tabs.data import FILE_TYPES
from ui.task_views import chat_messages, highlighted
from ui.views import job_choice, job_title, report_warnings, when
from worker.shares import Share, parse_expires_in

MAX_TEXT_CHARS = 20_000
LINE_COLUMNS = ["Label", "Score", "Line"]
SHARE_COLUMNS = ["Link", "Model", "Created", "Expires"]
SHARE_LIFETIMES = [("never", "never"), ("1 hour", "1h"), ("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d")]
# What a whole file of texts turns into, per playground interaction (a chat model answers conversations instead).
FILE_OUTPUT = {"classify": "csv", "tag": "jsonl"}
PREVIEW_ROWS = 20


@dataclass
class PlaygroundTab:
    """The model picker (other tabs open a model by setting it) and how to refresh its choices."""

    model: gr.Dropdown
    shares: list  # [share table, revoke picker], refreshed together with the model picker
    refresh_choices: Callable[..., tuple]  # (current, request) -> (model picker, share table, revoke picker)


@dataclass
class ChatSection:
    """The chat part of the page: both conversations, the message box and the generation settings."""

    section: gr.Column
    conversation: gr.Chatbot
    base_conversation: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    clear: gr.Button
    system_prompt: gr.Textbox
    temperature: gr.Slider
    top_p: gr.Slider
    max_new_tokens: gr.Slider
    compare: gr.Checkbox


def public_base(request: gr.Request | None) -> str:
    """The address the browser used to reach the app, for share links (honours reverse-proxy headers)."""
    headers = {k.lower(): v for k, v in dict(getattr(request, "headers", None) or {}).items()}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    scheme = headers.get("x-forwarded-proto") or getattr(getattr(request, "url", None), "scheme", None) or "http"
    return f"{scheme}://{host}"


# ---- callbacks ------------------------------------------------------------------------------------------------------


def share_listing(ctx: AppContext, owner: str, request: gr.Request | None):
    """The owner's active share links as a table, and the same links for the revoke picker."""
    base = public_base(request)
    rows, choices = [], []
    for share in ctx.shares.list(owner):
        url = f"{base}{share.path}"
        try:
            what = job_title(ctx.job(share.job_id, owner))
        except ValueError:
            what = share.job_id
        rows.append([f"[{url}]({url})", f"{share.job_id[:8]} · {what}", when(share.created_at), _expiry(share)])
        choices.append((f"{share.token[:10]}… · {share.job_id[:8]} · {when(share.created_at)}", share.token))
    return pd.DataFrame(rows, columns=SHARE_COLUMNS), gr.Dropdown(choices=choices, value=None)


def _expiry(share: Share) -> str:
    return "expired" if share.expired else (when(share.expires_at) if share.expires_at else "never")


def refresh_choices(ctx: AppContext, current: str | None, request: gr.Request):
    """Finished training runs of the owner, and their share links."""
    owner = owner_of(ctx, request)
    choices = [job_choice(j) for j in ctx.finished_jobs(owner, kind="train")]
    value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
    return gr.Dropdown(choices=choices, value=value), *share_listing(ctx, owner, request)


def classify(
    ctx: AppContext,
    job_id: str | None,
    sentence: str,
    per_line: bool = False,
    request: gr.Request = None,
    variant: str | None = None,  # last, so that calls from before variants existed keep their meaning
):
    """Every label's probability for the text (or, one text per line, for its first line), a row per line, and the
    variant that answered."""
    owner = owner_of(ctx, request)
    if not (sentence or "").strip():
        raise user_error("Type a text to classify first.")
    try:
        predictor = ctx.predictor(job_id, owner, variant)
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    lines = [line.strip() for line in sentence[:MAX_TEXT_CHARS].splitlines() if line.strip()]
    if not per_line:
        if len(lines) > 1:
            gr.Info(f"{len(lines)} lines were read as one text; tick 'One text per line' to classify each line.")
        scores = predictor.classify([sentence[:MAX_TEXT_CHARS]])[0]["scores"]
        return scores, pd.DataFrame(columns=LINE_COLUMNS), predictor.variant
    results = predictor.classify(lines)
    rows = [
        [result["label"], f"{result['scores'][result['label']]:.3f}", line]
        for line, result in zip(lines, results, strict=True)
    ]
    return results[0]["scores"], pd.DataFrame(rows, columns=LINE_COLUMNS), predictor.variant


def file_columns(path: str | None):
    """The columns of an uploaded file, for the text-column picker (none picked: the column is guessed)."""
    if not path:
        return gr.Dropdown(choices=[], value=None)
    try:
        frame = read_table(path).frame
    except DataError as exc:
        raise user_error(str(exc)) from exc
    return gr.Dropdown(choices=[str(c) for c in frame.columns], value=None)


def predict_file(
    ctx: AppContext,
    job_id: str | None,
    path: str | None,
    text_column: str | None,
    request: gr.Request,
    variant: str | None = None,
):
    """Classify every row of an uploaded file with the picked variant; a CSV with each label's probability."""
    from engine.predict import predict_file as predict_rows

    owner = owner_of(ctx, request)
    if not path:
        raise user_error("Upload a file of texts first.")
    try:
        predictor = ctx.predictor(job_id, owner, variant)
        suffix = FILE_OUTPUT.get(predictor.task_info.playground)
        if suffix is None:
            raise ValueError(f"a {predictor.task} model answers conversations; use the chat above, not a file")
        output = download_dir() / f"{Path(path).stem}-predictions.{suffix}"
        predict_rows(predictor, path, output, text_column=text_column or None)
    except (DataError, ValueError) as exc:
        raise user_error(str(exc)) from exc
    if suffix == "csv":  # the predicted label and its scores first, the long texts last
        return str(output), readable_frame(pd.read_csv(output).head(PREVIEW_ROWS))
    preview = pd.read_json(output, lines=True, nrows=PREVIEW_ROWS)
    preview["entities"] = [
        ", ".join(f"{span['text']} ({span['type']})" for span in spans) for spans in preview["entities"]
    ]
    return str(output), preview


def model_task(ctx: AppContext, job_id: str | None, request: gr.Request):
    """Show the part of the page that fits the picked model's task: classify, tag or chat."""
    owner = owner_of(ctx, request)
    kind, warnings = default_task().playground, []
    if job_id:
        try:
            job = ctx.job(job_id, owner)
            kind, warnings = get_task((job.spec or {}).get("task")).playground, report_warnings(job)
        except ValueError:
            kind = default_task().playground
    return (
        gr.Row(visible=kind == "classify"),
        gr.Row(visible=kind == "tag"),
        gr.Column(visible=kind == "chat"),
        gr.Accordion(visible=kind in FILE_OUTPUT),
        [],
        [],
        "\n\n".join(f"⚠ **Read this before you trust its answers.** {warning}" for warning in warnings),
    )


def tag(ctx: AppContext, job_id: str | None, sentence: str, request: gr.Request, variant: str | None = None):
    """The entities the picked tagger (or its picked variant) finds in one text, as highlighted spans."""
    owner = owner_of(ctx, request)
    if not (sentence or "").strip():
        raise user_error("Type a text to tag first.")
    try:
        predictor = ctx.predictor(job_id, owner, variant)
        spans = predictor.tag([sentence[:MAX_TEXT_CHARS]])[0]
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    return highlighted(sentence[:MAX_TEXT_CHARS], spans), predictor.variant


def chat(
    ctx: AppContext,
    job_id: str | None,
    text: str,
    history: list,
    base_history: list,
    system: str,
    temperature_: float,
    top_p_: float,
    max_new: int,
    with_base: bool,
    request: gr.Request,
) -> Iterator[tuple[str, list, list]]:
    """Answer the message with the fine-tuned model, token by token; with the base model too when comparing."""
    owner = owner_of(ctx, request)
    if not (text or "").strip():
        raise user_error("Type a message first.")
    try:
        record = ctx.finished_model(job_id, owner)
        predictors = [ctx.predictor(record.id, owner)]
        if with_base:
            predictors.append(ctx.base_predictor(record))
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    text = text[:MAX_TEXT_CHARS]
    options = {"max_new_tokens": int(max_new), "temperature": float(temperature_), "top_p": float(top_p_)}
    chats = [list(history or []), list(base_history or [])]
    for chat_history, predictor in zip(chats, predictors, strict=False):
        messages = [*chat_messages(chat_history, system), {"role": "user", "content": text}]
        chat_history += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        for piece in predictor.stream_chat(messages, **options):
            chat_history[-1]["content"] += piece
            yield "", chats[0], chats[1]
    yield "", chats[0], chats[1]


def create_share(
    ctx: AppContext,
    job_id: str | None,
    names_training_file: bool = False,
    request: gr.Request = None,
    expires_in: str | None = None,  # last, so that calls from before expiry existed keep their meaning
):
    """A new share link for the picked model, expiring after `expires_in` ('1d'; never by default); returns the
    link and the updated list."""
    owner = owner_of(ctx, request)
    try:
        record = ctx.finished_model(job_id, owner)
        lifetime = parse_expires_in(expires_in)
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    share = ctx.shares.create(owner, record.id, names_training_file=bool(names_training_file), expires_in=lifetime)
    url = f"{public_base(request)}{share.path}"
    until = f" until {when(share.expires_at)}" if share.expires_at else ""
    message = f"✓ **Share link created:** [{url}]({url}) (anyone with it can try this model{until})"
    return message, *share_listing(ctx, owner, request)


def revoke_share(ctx: AppContext, token: str | None, request: gr.Request):
    """Switch a share link off; it answers 'not found' from now on."""
    owner = owner_of(ctx, request)
    if not token:
        raise user_error("Pick a link to revoke first.")
    if not ctx.shares.revoke(token, owner):
        raise user_error("That link is not one of your active links.")
    return "Link revoked: it now answers “not found”.", *share_listing(ctx, owner, request)


# ---- layout ---------------------------------------------------------------------------------------------------------


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
        variant = playground_variants.picker()
        refresh = gr.Button("↻", size="sm", scale=0, min_width=40, elem_id="playground-refresh")
    warning = gr.Markdown(elem_id="playground-warning")
    served = gr.State()  # the variant that answered last, for the line under the answer
    classify_section, text, per_line, classify_button, result, lines, classify_served = _classify_section()
    tag_section, tag_text, tag_button, entities, tag_served = _tag_section()
    chat_ui = _chat_section()
    file_section, file_in, column, predict_button, file_out, predictions_preview = _file_section()
    share_button, (names_file, expires), share_message, shares, revoke_pick, revoke_button = _share_section()

    refresh_bound = bind(ctx, refresh_choices)
    refresh.click(refresh_bound, [model], [model, shares, revoke_pick], api_name="list_models")
    playground_variants.wire(ctx, model, variant, refresh, [classify_served, tag_served])
    gr.on(
        [classify_button.click, text.submit],
        bind(ctx, classify),
        [model, text, per_line, variant],
        [result, lines, served],
        api_name="classify",
        concurrency_limit=2,
    ).then(playground_variants.served_line, [served], [classify_served], api_visibility="private")
    per_line.change(lambda on: gr.Dataframe(visible=on), [per_line], [lines], api_visibility="private")
    sections = [classify_section, tag_section, chat_ui.section, file_section]
    conversations = [chat_ui.conversation, chat_ui.base_conversation]
    model.change(bind(ctx, model_task), [model], [*sections, *conversations, warning], api_visibility="private")
    gr.on(
        [tag_button.click, tag_text.submit],
        bind(ctx, tag),
        [model, tag_text, variant],
        [entities, served],
        api_name="tag",
        concurrency_limit=2,
    ).then(playground_variants.served_line, [served], [tag_served], api_visibility="private")
    _wire_chat(ctx, model, chat_ui)
    file_in.upload(file_columns, [file_in], [column], api_visibility="private")
    predict_button.click(
        bind(ctx, predict_file),
        [model, file_in, column, variant],
        [file_out, predictions_preview],
        api_name="predict_file",
    )
    share_outputs = [share_message, shares, revoke_pick]
    share_button.click(bind(ctx, create_share), [model, names_file, expires], share_outputs, api_name="create_share")
    revoke_button.click(bind(ctx, revoke_share), [revoke_pick], share_outputs, api_name="revoke_share")
    return PlaygroundTab(model, [shares, revoke_pick], refresh_bound)


def _wire_chat(ctx: AppContext, model: gr.Dropdown, chat_ui: ChatSection) -> None:
    """The chat's events: send a message (streamed), start over, show the base model beside it."""
    settings = [chat_ui.system_prompt, chat_ui.temperature, chat_ui.top_p, chat_ui.max_new_tokens, chat_ui.compare]
    conversations = [chat_ui.conversation, chat_ui.base_conversation]
    gr.on(
        [chat_ui.send.click, chat_ui.message.submit],
        bind(ctx, chat),
        [model, chat_ui.message, *conversations, *settings],
        [chat_ui.message, *conversations],
        api_name="chat",
        concurrency_limit=2,
    )
    chat_ui.clear.click(lambda: ([], []), None, conversations, api_visibility="private")
    chat_ui.compare.change(
        lambda on: gr.Chatbot(visible=on), [chat_ui.compare], [chat_ui.base_conversation], api_visibility="private"
    )


def _classify_section() -> tuple[gr.Row, gr.Textbox, gr.Checkbox, gr.Button, gr.Label, gr.Dataframe, gr.Markdown]:
    """One text (or one per line) in, every label's probability out (shown for classifiers)."""
    with gr.Row(equal_height=False, elem_id="playground-classify-section") as section:
        with gr.Column(scale=3):
            text = gr.Textbox(
                label="Type or paste a text",
                lines=4,
                max_length=MAX_TEXT_CHARS,
                placeholder="A tender, funny film with a terrific cast.",
                elem_id="playground-text",
            )
            per_line = gr.Checkbox(
                value=False,
                label="One text per line",
                info="Classify each line on its own, as for a list of reviews pasted from a spreadsheet.",
                elem_id="playground-per-line",
            )
            button = gr.Button("Classify", variant="primary", elem_id="playground-classify")
        with gr.Column(scale=2):
            result = gr.Label(label="Probability of each label", elem_id="playground-result")
            served = playground_variants.served_note("playground-served")
            lines = gr.Dataframe(
                value=pd.DataFrame(columns=LINE_COLUMNS),
                label="One line each",
                interactive=False,
                wrap=True,
                visible=False,
                elem_id="playground-lines",
            )
    return section, text, per_line, button, result, lines, served


def _tag_section() -> tuple[gr.Row, gr.Textbox, gr.Button, gr.HighlightedText, gr.Markdown]:
    """One text in, its entities highlighted (shown for taggers)."""
    with gr.Row(equal_height=False, visible=False, elem_id="playground-tag-section") as section:
        with gr.Column(scale=3):
            text = gr.Textbox(
                label="Type or paste a text to find its entities",
                lines=4,
                max_length=MAX_TEXT_CHARS,
                placeholder="Maria Schmidt flew from Berlin to Madrid with Lufthansa.",
                elem_id="playground-tag-text",
            )
            button = gr.Button("Find entities", variant="primary", elem_id="playground-tag")
        with gr.Column(scale=3):
            entities = gr.HighlightedText(
                label="Entities found", combine_adjacent=False, show_legend=True, elem_id="playground-entities"
            )
            served = playground_variants.served_note("playground-tag-served")
    return section, text, button, entities, served


def _chat_section() -> ChatSection:
    """A conversation with the model, optionally beside the base model's (shown for chat models)."""
    with gr.Column(visible=False, elem_id="playground-chat-section") as section, gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row():
                conversation = gr.Chatbot(label="Fine-tuned model", height=420, elem_id="playground-chat")
                base_conversation = gr.Chatbot(
                    label="Base model (not fine-tuned)", height=420, visible=False, elem_id="playground-chat-base"
                )
            message = gr.Textbox(
                label="Your message",
                placeholder="Ask something and press Enter",
                max_length=MAX_TEXT_CHARS,
                elem_id="playground-chat-message",
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="playground-chat-send")
                clear = gr.Button("New conversation", elem_id="playground-chat-clear")
        with gr.Column(scale=1, min_width=240):
            system_prompt = gr.Textbox(label="System prompt (optional)", lines=3, elem_id="playground-chat-system")
            temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature", info="0 answers greedily.")
            top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p", info="Share of likely words kept.")
            max_new_tokens = gr.Slider(16, 1024, value=256, step=16, label="Max new tokens")
            compare = gr.Checkbox(
                label="Compare with the base model",
                info="The base model answers the same messages beside it.",
                elem_id="playground-chat-compare",
            )
    return ChatSection(
        section,
        conversation,
        base_conversation,
        message,
        send,
        clear,
        system_prompt,
        temperature,
        top_p,
        max_new_tokens,
        compare,
    )


def _file_section() -> tuple[gr.Accordion, gr.File, gr.Dropdown, gr.Button, gr.File, gr.Dataframe]:
    """A whole file of texts in, a file of predictions out (classifiers and taggers)."""
    with gr.Accordion("Classify or tag a whole file", open=False, elem_id="playground-file-section") as section:
        with gr.Row():
            file_in = gr.File(label="File of texts", file_types=FILE_TYPES, height=110, elem_id="playground-file")
            with gr.Column():
                column = gr.Dropdown(
                    label="Column with the texts (guessed when empty)", choices=[], allow_custom_value=True
                )
                predict_button = gr.Button("Predict every row", elem_id="playground-predict-file")
            file_out = gr.File(
                label="Predictions (CSV; JSONL with an entities list per row for taggers)",
                interactive=False,
                elem_id="playground-predictions",
            )
        preview = gr.Dataframe(label="First predictions", interactive=False, wrap=True, max_height=260)
    return section, file_in, column, predict_button, file_out, preview


def _share_section() -> tuple[gr.Button, tuple, gr.Markdown, gr.Dataframe, gr.Dropdown, gr.Button]:
    """Create a read-only demo link of the model (its options: name the file, lifetime), list the links, revoke."""
    with gr.Accordion("Share a demo of this model", open=False, elem_id="playground-share-section"):
        gr.Markdown(
            "A share link opens a small page where anyone with the link can try this model, **without logging in**. "
            "They cannot see your data, jobs or other models. Revoke a link to switch it off."
        )
        names_file = gr.Checkbox(
            value=False,
            label="Say on the page which file the model was trained on",
            info="Off: visitors see the model's task, base model and labels, not your file's name.",
            elem_id="playground-share-names-file",
        )
        expires = gr.Dropdown(
            SHARE_LIFETIMES, value="never", label="Link expires after", elem_id="playground-share-expires"
        )
        share_button = gr.Button("Create a share link", elem_id="playground-share")
        share_message = gr.Markdown(elem_id="playground-share-message")
        shares = gr.Dataframe(
            value=pd.DataFrame(columns=SHARE_COLUMNS),
            label="Your active share links",
            datatype=["markdown", "str", "str", "str"],
            interactive=False,
            wrap=True,
            elem_id="playground-shares",
        )
        with gr.Row():
            revoke_pick = gr.Dropdown(
                label="Link to revoke", choices=[], allow_custom_value=True, scale=4, elem_id="playground-revoke-pick"
            )
            revoke_button = gr.Button("Revoke", variant="stop", scale=0, min_width=120, elem_id="playground-revoke")
    return share_button, (names_file, expires), share_message, shares, revoke_pick, revoke_button
