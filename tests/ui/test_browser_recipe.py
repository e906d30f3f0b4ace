"""The Train tab's recipe in a real browser: a preset fills in its knobs, every recipe control reaches the spec, and
the spec the page shows equals the one `playground train` builds from the command the page shows."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from engine.spec import JobSpec
from tests.ui.conftest import FIXTURES, Server
from tests.ui.test_browser import STEP_TIMEOUT_MS, choose, log_in, open_tab, set_number
from ui.cli import build_parser, spec_from_args


def train_tab_with_reviews(browser, server: Server):
    """A new browser context logged in as alice, reviews.csv uploaded and checked, on the Train tab."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    log_in(page, server, "alice")
    page.locator("#data-upload input[type=file]").set_input_files(str(FIXTURES / "reviews.csv"))
    page.locator("#data-summary").get_by_text("Ready to train").wait_for()
    open_tab(page, "Train")
    page.locator("#train-source").get_by_text("text from review_body").wait_for()
    return context, page


def _open(page, section_id: str, title: str) -> None:
    page.locator(f"#{section_id}").get_by_text(title, exact=True).first.click()


def _code(page, component_id: str) -> str:
    """The whole text of a Gradio Code box. CodeMirror renders only the lines near the window, so the window is made
    tall enough for the box and the box is brought into it."""
    page.set_viewport_size({"width": 1280, "height": 6000})
    box = page.locator(f"#{component_id} .cm-content")
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    return "\n".join(line.inner_text() for line in box.locator(".cm-line").all())


def _type(page, component_id: str, text: str) -> None:
    box = page.locator(f"#{component_id} textarea, #{component_id} input[type=text]").first
    box.fill(text)
    box.press("Tab")


@pytest.mark.slow
def test_every_recipe_control_reaches_the_spec_the_cli_builds_from_the_shown_command(
    server: Server, browser, artifacts: Path
):
    context, page = train_tab_with_reviews(browser, server)

    # The preset comes first and fills in what it means: 8 epochs, early stopping, a search around 1e-4.
    page.locator("#train-preset").get_by_text("Best quality", exact=True).click()
    from playwright.sync_api import expect

    expect(page.locator("#train-epochs input[type=number]")).to_have_value("8")
    page.locator("#train-advanced").get_by_text("Advanced settings").click()
    _open(page, "train-search", "Learning-rate search")
    expect(page.locator("#train-search-on input[type=checkbox]")).to_be_checked()
    expect(page.locator("#train-search-ensemble input[type=number]")).to_have_value("3")  # its 3 best trials
    _open(page, "train-group-optimizer", "Optimizer and schedule")
    choose(page, "train-optimizer", "adafactor")
    choose(page, "train-schedule", "cosine_with_restarts")
    set_number(page, "train-schedule-cycles", "3")
    set_number(page, "train-max-grad-norm", "0.5")
    _open(page, "train-group-eval-strategy", "Evaluation and early stopping")
    choose(page, "train-eval-strategy", "steps")
    set_number(page, "train-eval-steps", "7")
    set_number(page, "train-early-stopping-patience", "3")
    _open(page, "train-group-gradient-accumulation-steps", "Memory: accumulation and checkpointing")
    set_number(page, "train-gradient-accumulation-steps", "4")
    page.locator("#train-gradient-checkpointing input[type=checkbox]").check()
    _open(page, "train-group-dropout", "Regularisation")
    set_number(page, "train-dropout", "0.2")
    set_number(page, "train-label-smoothing", "0.1")
    _type(page, "train-class-weights", "rotten=2, fresh=1")
    page.locator("#train-freeze-embeddings").get_by_text("trained", exact=True).click()
    set_number(page, "train-freeze-layers", "2")
    _type(page, "train-search-batch-sizes", "8, 16")
    set_number(page, "train-search-trials", "4")
    page.locator("#train-method").get_by_text("IA3 (learned rescaling)", exact=True).click()

    source = page.locator("#train-source")
    source.get_by_text("Effective batch 16 x 4 = 64").wait_for()
    assert "estimated peak memory about" in source.inner_text()
    page.locator("#train-equivalent").get_by_text("The same job from the command line").click()
    page.locator("#train-cli").get_by_text("--freeze-layers").wait_for()
    page.locator("#train-cli").get_by_text("--search-batch-sizes").wait_for()
    page.screenshot(path=str(artifacts / "recipe-train.png"), full_page=True)

    shown = yaml.safe_load(_code(page, "train-spec"))
    from_page = JobSpec.from_dict(shown)
    params = from_page.params
    assert (params.optimizer, params.schedule, params.schedule_cycles, params.max_grad_norm) == (
        "adafactor",
        "cosine_with_restarts",
        3,
        0.5,
    )
    assert (params.eval_strategy, params.eval_steps, params.early_stopping_patience) == ("steps", 7, 3)
    assert params.gradient_accumulation_steps == 4 and params.gradient_checkpointing is True
    assert (params.dropout, params.label_smoothing, params.freeze_layers) == (0.2, 0.1, 2)
    assert params.class_weights == {"rotten": 2.0, "fresh": 1.0} and params.freeze_embeddings is False
    assert params.method == "ia3" and params.epochs == 8
    assert from_page.search.trials == 4 and from_page.search.batch_sizes == (8, 16) and from_page.search.ensemble == 3
    assert from_page.search.learning_rate == (1e-5, 1e-3)

    argv = shlex.split(_code(page, "train-cli").replace("\\\n", " "))
    from_cli = spec_from_args(build_parser().parse_args(argv[1:]))
    assert Path(from_cli.data.train).name == Path(from_page.data.train).name == "reviews.csv"
    same_file = {"data": from_cli.data.model_copy(update={"train": from_page.data.train})}
    assert from_cli.model_copy(update=same_file).model_dump() == from_page.model_dump()
    context.close()
