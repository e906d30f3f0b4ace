"""The web app's Gradio Blocks: five tabs (Data, Train, Jobs, Report, Playground) and the admins' System tab,
assembled and wired together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ui.context import AppContext
from ui.tabs import account, data, jobs, playground, report, system, train
from ui.tabs.common import owner_of

TITLE = "Finetune Playground"
CSS = (Path(__file__).parent / "static" / "app.css").read_text(encoding="utf-8")
THEME = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
STEPS = (
    "**1 · Data**: upload labeled examples → **2 · Train**: pick a model and start → **3 · Jobs**: watch it learn → "
    "**4 · Report**: see how good it is → **5 · Playground**: try it and share it"
)


@dataclass
class Page:
    """The assembled tabs, and the page parts that wire them together."""

    tabs: gr.Tabs
    user: gr.Markdown
    data: data.DataTab
    train: train.TrainTab
    jobs: jobs.JobsTab
    report: report.ReportTab
    playground: playground.PlaygroundTab
    train_page: gr.Tab
    report_page: gr.Tab
    playground_page: gr.Tab


def build_blocks(ctx: AppContext) -> gr.Blocks:
    """The whole web app for one AppContext."""
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as blocks:
        page = _layout(ctx)
        _wire_page_load(ctx, blocks, page)
        _wire_navigation(page)
    # Callbacks only read the store or run a cached model, so several may run at once (Gradio's default is one per
    # event, which would make every user's timer tick wait for everyone else's).
    blocks.queue(default_concurrency_limit=8)
    return blocks


def _layout(ctx: AppContext) -> Page:
    with gr.Row(elem_classes=["pg-header"]):
        gr.Markdown(f"## {TITLE}", elem_classes=["pg-title"])
        user = gr.Markdown("", elem_id="pg-user", elem_classes=["pg-user"])
    gr.Markdown(STEPS, elem_classes=["pg-steps"])
    with gr.Tabs(selected="data") as tabs:
        with gr.Tab("1 · Data", id="data", elem_id="tab-data"):
            data_tab = data.build(ctx)
        with gr.Tab("2 · Train", id="train", elem_id="tab-train") as train_page:
            train_tab = train.build(ctx, data_tab)
        with gr.Tab("3 · Jobs", id="jobs", elem_id="tab-jobs"):
            jobs_tab = jobs.build(ctx)
            account.build(ctx)  # API tokens, for the scripts that follow these jobs over REST
        with gr.Tab("4 · Report", id="report", elem_id="tab-report") as report_page:
            report_tab = report.build(ctx)
        with gr.Tab("5 · Playground", id="playground", elem_id="tab-playground") as playground_page:
            playground_tab = playground.build(ctx)
        with gr.Tab("System", id="system", elem_id="tab-system") as system_page:
            system_tab = system.build(ctx)  # admins only; others see a note
        system_page.select(system_tab.refresh, None, system_tab.outputs, api_visibility="private")
    return Page(
        tabs, user, data_tab, train_tab, jobs_tab, report_tab, playground_tab, train_page, report_page, playground_page
    )


def whoami(ctx: AppContext, request: gr.Request) -> str:
    """The header line: who is signed in, or that the app runs for one local user."""
    owner = owner_of(ctx, request)
    if ctx.users.enabled:
        return f"Signed in as **{owner}** · [Log out](logout)"
    return f"Single-user mode · jobs belong to **{owner}**"


def _wire_page_load(ctx: AppContext, blocks: gr.Blocks, page: Page) -> None:
    data_tab, train_tab, jobs_tab = page.data, page.train, page.jobs

    def on_load(dataset_id, remembered_job, request: gr.Request):
        # Everything the page shows comes from the store, so a reload (or a restarted server) shows it all again.
        table, picker, job_ids = jobs_tab.list_jobs(request)
        picked = remembered_job if remembered_job in job_ids else (job_ids[0] if job_ids else None)
        return (
            whoami(ctx, request),
            *data_tab.on_load(dataset_id, request),
            *train_tab.refresh_choices(request),
            table,
            gr.Dropdown(choices=picker.choices, value=picked),
            job_ids,
            *page.report.refresh_choices(None, request),
            *page.playground.refresh_choices(None, request),
        )

    shown = [data_tab.preview, data_tab.text_column, data_tab.label_column, data_tab.summary, data_tab.chart]
    blocks.load(
        on_load,
        [data_tab.dataset, jobs_tab.remembered_job],
        [
            page.user,
            data_tab.dataset,
            *shown,
            train_tab.validation_dataset,
            train_tab.test_dataset,
            *jobs_tab.listing,
            page.report.job,
            page.report.compare,
            page.playground.model,
            *page.playground.shares,
        ],
        api_visibility="private",
    ).then(data_tab.task_view, [data_tab.dataset], data_tab.task_outputs, api_visibility="private")
    # The browser's stored settings are not read yet while the page loads: they are put back when the tab opens.
    page.train_page.select(*train_tab.restore, api_visibility="private")


def follow_new_job(job_id: str):
    """After a job is queued, the Jobs tab opens on it."""
    if not job_id:
        return gr.skip(), gr.skip()
    return gr.Tabs(selected="jobs"), job_id


def _wire_navigation(page: Page) -> None:
    train_tab, jobs_tab, report_tab, playground_tab = page.train, page.jobs, page.report, page.playground
    train_choices = (train_tab.refresh_choices, None, [train_tab.validation_dataset, train_tab.test_dataset])
    report_choices = (report_tab.refresh_choices, [report_tab.job], [report_tab.job, report_tab.compare])
    playground_choices = (
        playground_tab.refresh_choices,
        [playground_tab.model],
        [playground_tab.model, *playground_tab.shares],
    )
    page.data.dataset.change(*train_choices, api_visibility="private")
    train_tab.submitted_job.change(
        follow_new_job, [train_tab.submitted_job], [page.tabs, jobs_tab.job], api_visibility="private"
    )
    jobs_tab.open_report.click(
        lambda job_id: (gr.Tabs(selected="report"), job_id),
        [jobs_tab.job],
        [page.tabs, report_tab.job],
        api_visibility="private",
    ).then(*report_choices, api_visibility="private")
    jobs_tab.open_playground.click(
        lambda job_id: (gr.Tabs(selected="playground"), job_id),
        [jobs_tab.job],
        [page.tabs, playground_tab.model],
        api_visibility="private",
    ).then(*playground_choices, api_visibility="private")
    page.report_page.select(*report_choices, api_visibility="private")
    page.playground_page.select(*playground_choices, api_visibility="private")
    page.train_page.select(*train_choices, api_visibility="private")
