"""The whole path in a real browser: upload, map columns, train, watch, read the report, try the model, share it.

Screenshots of every step go to test-artifacts/ui/ (git-ignored), for a person to look at when a step fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ui.conftest import FIXTURES, USERS, Server

STEP_TIMEOUT_MS = 30_000
TRAINING_TIMEOUT_MS = 240_000


def log_in(page, server: Server, user: str) -> None:
    page.goto(server.url)
    page.locator("input[data-testid=textbox]").fill(user)
    page.locator("input[type=password]").fill(USERS[user])
    page.get_by_role("button", name="Login").click()
    page.locator("#tab-data").wait_for(state="attached", timeout=STEP_TIMEOUT_MS)


def choose(page, component_id: str, option: str, *, prefix: bool = False) -> None:
    """Pick an option of a Gradio dropdown the way a person does: open it, click the option (or the one starting
    with `option` when `prefix`)."""
    box = page.locator(f"#{component_id} input[role=combobox]")
    box.click()
    listbox = page.locator(f"#{box.get_attribute('aria-controls')}")
    if prefix:
        listbox.locator(f'[role=option][aria-label^="{option}"]').click()
    else:
        listbox.get_by_role("option", name=option, exact=True).click()


def set_number(page, component_id: str, value: str) -> None:
    """Type a number into a slider's or number field's box and leave it, so that Gradio takes the value.

    Checked and typed again if needed: a widget in an accordion that has just opened can still be mounting, and
    then resets itself to its default right after the first keystrokes.
    """
    box = page.locator(f"#{component_id} input[type=number]")
    for _ in range(5):
        box.fill(value)
        box.press("Tab")
        page.wait_for_timeout(400)
        if box.input_value() == value:
            return
    raise AssertionError(f"{component_id} keeps the value {box.input_value()!r} instead of {value!r}")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


@pytest.mark.slow
def test_upload_train_report_playground_and_share(server: Server, browser, artifacts: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)

    def shot(name: str) -> None:
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

    log_in(page, server, "alice")

    # 1. Data: upload a CSV whose columns are review_body / verdict, map them, read the checks.
    page.locator("#data-upload input[type=file]").set_input_files(str(FIXTURES / "reviews.csv"))
    summary = page.locator("#data-summary")
    summary.get_by_text("Ready to train").wait_for()
    choose(page, "data-label-column", "review_body")  # a wrong mapping first: the page says what is wrong
    summary.get_by_text("can't be used for training yet").wait_for()
    assert "both 'review_body'" in summary.inner_text()
    choose(page, "data-text-column", "review_body")
    choose(page, "data-label-column", "verdict")
    summary.get_by_text("Ready to train").wait_for()
    text = summary.inner_text()
    assert "240 usable rows" in text and "review_body" in text and "verdict" in text
    assert "fresh (120)" in text and "rotten (120)" in text
    shot("1-data")

    # 2. Train: one quick epoch; the settings come from sliders and number fields.
    open_tab(page, "Train")
    page.locator("#train-source").get_by_text("text from review_body").wait_for()
    set_number(page, "train-epochs", "1")
    set_number(page, "train-batch-size", "8")
    set_number(page, "train-learning-rate", "0.0005")
    page.locator("#train-advanced").get_by_text("Advanced settings").click()
    set_number(page, "train-max-length", "64")
    page.locator("#train-equivalent").get_by_text("The same job from the command line").click()
    page.locator("#train-cli").get_by_text("--max-length").wait_for()
    assert "--label-column verdict" in page.locator("#train-cli").inner_text()
    shot("2-train")
    page.locator("#train-submit").click()

    # 3. Jobs: the page switches to the new job and follows it until it has finished.
    detail = page.locator("#jobs-detail")
    detail.get_by_text("train minilm-l6 on reviews.csv, 1 epoch").wait_for()
    job_id = re.search(r"job ([0-9a-f]{16})", detail.inner_text()).group(1)
    detail.get_by_text("finished").wait_for(timeout=TRAINING_TIMEOUT_MS)
    page.locator("#jobs-progress").get_by_text("Finished.").wait_for()
    assert "macro-F1" in detail.inner_text()
    assert page.locator("#jobs-curve polyline").count() >= 2  # training loss, and validation scores per epoch
    shot("3-jobs")

    # A reload keeps everything: the job list and the job that was open come back from the store, and the Train
    # tab's knobs as this browser set them.
    page.reload()
    open_tab(page, "Jobs")
    page.locator("#jobs-detail").get_by_text(job_id).wait_for()
    assert job_id[:8] in page.locator("#jobs-table").inner_text()
    open_tab(page, "Train")
    from playwright.sync_api import expect

    expect(page.locator("#train-epochs input[type=number]")).to_have_value("1")
    expect(page.locator("#train-batch-size input[type=number]")).to_have_value("8")

    # 4. Report: read the per-class F1 from the page and check it against report.json.
    open_tab(page, "Jobs")
    page.locator("#jobs-open-report").click()
    page.locator("#report-headline").get_by_text(job_id[:8]).wait_for()
    rows = page.locator("#report-per-class [role=row]:has([role=gridcell])")
    rows.first.wait_for()
    table = {}
    for row in rows.all():
        cells = [cell.inner_text().strip() for cell in row.locator("[role=gridcell]").all()]
        table[cells[0]] = cells
    assert set(table) == {"fresh", "rotten"}
    f1_on_page = float(table["fresh"][3])  # Label, Precision, Recall, F1, ...
    status, report = server.api("GET", f"/api/jobs/{job_id}/report")
    assert status == 200
    assert f1_on_page == pytest.approx(report["per_class"]["fresh"]["f1"], abs=5e-4)
    assert page.locator("#report-confusion td").count() == 4
    shot("4-report")

    # 5. Playground: classify one sentence; every label gets a probability.
    open_tab(page, "Jobs")
    page.locator("#jobs-open-playground").click()
    page.locator("#playground-text textarea").fill("A warm, witty and wonderful film; I loved every minute.")
    page.locator("#playground-classify").click()
    result = page.locator("#playground-result")
    result.get_by_text("rotten").wait_for()
    shown = result.inner_text()
    assert "fresh" in shown and "%" in shown
    shot("5-playground")

    # 6. Share: the link opens without logging in (a fresh context has no cookies); revoked, it is gone.
    page.locator("#playground-share-section").get_by_text("Share a demo of this model").click()
    page.locator("#playground-share").click()
    link = page.locator("#playground-share-message a").first
    link.wait_for()
    url = link.get_attribute("href")
    assert re.fullmatch(rf"{re.escape(server.url)}/demo/[\w-]{{30,}}", url), url
    shot("6-share")

    stranger = browser.new_context()
    demo = stranger.new_page()
    response = demo.goto(url)
    assert response.status == 200
    demo.locator("#text").fill("Dreary, slow and painfully dull.")
    demo.locator("#classify").click()
    demo.locator("#result").wait_for()
    assert "Prediction:" in demo.locator("#result").inner_text()
    demo.screenshot(path=str(artifacts / "7-demo.png"), full_page=True)

    token = url.rsplit("/", 1)[1]
    choose(page, "playground-revoke-pick", token[:10], prefix=True)
    page.locator("#playground-revoke").click()
    page.locator("#playground-share-message").get_by_text("Link revoked").wait_for()
    response = demo.goto(url)
    assert response.status == 404
    assert "Demo not found" in demo.content()
    demo.screenshot(path=str(artifacts / "8-demo-revoked.png"), full_page=True)
    stranger.close()
    context.close()


@pytest.mark.slow
def test_another_user_sees_none_of_alices_work_in_the_browser(server: Server, browser, trained_job: dict):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    log_in(page, server, "bob")
    page.locator("#pg-user").get_by_text("Signed in as bob").wait_for()
    open_tab(page, "Jobs")
    page.locator("#jobs-detail").wait_for()
    page.wait_for_timeout(1500)  # a timer tick, in case anything arrives late
    assert trained_job["id"][:8] not in page.locator("#jobs-table").inner_text()
    open_tab(page, "Playground")
    page.locator("#playground-text textarea").fill("A fine film.")
    page.locator("#playground-classify").click()
    page.get_by_text("no job selected; pick one from the list").wait_for()  # bob has no model to pick
    context.close()


@pytest.mark.slow
def test_ner_upload_train_and_see_entities_in_the_playground(server: Server, browser, artifacts: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)

    def shot(name: str) -> None:
        page.screenshot(path=str(artifacts / f"ner-{name}.png"), full_page=True)

    log_in(page, server, "alice")

    # 1. Data: a CoNLL file is recognised as token classification and summarised by entity type.
    page.locator("#data-upload input[type=file]").set_input_files(str(FIXTURES / "ner" / "en.conll"))
    summary = page.locator("#data-summary")
    summary.get_by_text("Ready to train a tagger").wait_for()
    assert "283 entities of 4 types" in summary.inner_text()
    page.locator("#data-tokens-column").wait_for(state="visible")  # the task's own column pickers
    assert page.locator("#data-task input[value=token-classification]").is_checked()
    shot("1-data")

    # 2. Train: the task follows the data; the base model list only has models that can tag.
    open_tab(page, "Train")
    page.locator("#train-source").get_by_text("Token classification").wait_for()
    assert page.locator("#train-task input[value=token-classification]").is_checked()
    set_number(page, "train-epochs", "2")
    set_number(page, "train-batch-size", "8")
    set_number(page, "train-learning-rate", "0.0003")
    page.locator("#train-advanced").get_by_text("Advanced settings").click()
    set_number(page, "train-max-length", "64")
    page.locator("#train-equivalent").get_by_text("The same job from the command line").click()
    page.locator("#train-cli").get_by_text("--task token-classification").wait_for()
    shot("2-train")
    page.locator("#train-submit").click()

    # 3. Jobs: follow it to the end.
    detail = page.locator("#jobs-detail")
    detail.get_by_text("train minilm-l6 on en.conll, 2 epochs").wait_for()
    job_id = re.search(r"job ([0-9a-f]{16})", detail.inner_text()).group(1)
    detail.get_by_text("finished").wait_for(timeout=TRAINING_TIMEOUT_MS)
    shot("3-jobs")

    # 4. Report: entity types in the per-class table, error kinds below.
    page.locator("#jobs-open-report").click()
    page.locator("#report-headline").get_by_text(job_id[:8]).wait_for()
    page.locator("#report-headline").get_by_text("Micro F1 (entities)").wait_for()
    page.locator("#report-error-kinds").wait_for(state="visible")
    shot("4-report")

    # 5. Playground: the tagger marks entities in typed text.
    open_tab(page, "Jobs")
    page.locator("#jobs-open-playground").click()
    page.locator("#playground-tag-text textarea").fill("Maria Schmidt flew from Berlin to Madrid with Lufthansa.")
    page.locator("#playground-tag").click()
    entities = page.locator("#playground-entities")
    entities.get_by_text("Berlin").wait_for()
    page.wait_for_timeout(500)
    status, body = server.api(
        "POST",
        f"/api/models/{job_id}/predict",
        body={"text": "Maria Schmidt flew from Berlin to Madrid with Lufthansa."},
    )
    assert status == 200
    for span in body["entities"][0]:
        assert span["type"] in entities.inner_text()  # every entity type the model finds is shown as a label
    shot("5-playground")
    context.close()


LONG_REVIEWS = (
    (
        "positif",
        "Un accueil chaleureux dès l'entrée, des crêpes délicieuses, une crème brûlée parfaite et un "
        "service attentif du début à la fin. La salle est lumineuse, la carte change chaque saison, les vins sont "
        "bien choisis et les prix restent raisonnables pour la qualité. Nous y retournerons sans hésiter, c'est "
        "devenu notre adresse préférée du quartier et nous la recommandons à tous nos amis de passage.",
    ),
    (
        "négatif",
        "Très déçu : le café était tiède, le serveur n'a pas daigné s'excuser, l'addition était salée et "
        "la table collait. Nous avons attendu quarante minutes un plat arrivé froid, la musique couvrait toutes les "
        "conversations et personne n'a répondu quand nous avons signalé le problème. Le dessert était industriel, "
        "le pain rassis, et le patron nous a fait comprendre que nous dérangions. Plus jamais, vraiment.",
    ),
)


def _right_edge_inside(page, cell_selector: str, frame_selector: str) -> None:
    """The cell is on screen: inside the viewport and inside its table's visible box, not scrolled out of sight."""
    cell = page.locator(cell_selector).first
    cell.wait_for()
    box, frame = cell.bounding_box(), page.locator(frame_selector).bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and frame is not None, cell_selector
    assert box["x"] >= frame["x"] - 1 and box["x"] + box["width"] <= min(frame["x"] + frame["width"], width) + 1, (
        cell_selector,
        box,
        frame,
    )


@pytest.mark.slow
def test_long_texts_leave_labels_scores_and_progress_on_screen(server: Server, browser, artifacts: Path, tmp_path):
    from tests.ui.conftest import QUICK_PARAMS, upload, wait_finished

    rows = ["id,avis,note"]
    for i in range(48):  # long reviews, the label last, a quarter of the labels wrong: mistakes to show
        label, text = LONG_REVIEWS[i % 2]
        wrong = "négatif" if label == "positif" else "positif"
        rows.append(f'{100 + i},"{text} (avis {i})",{wrong if i % 4 == 3 else label}')
    path = tmp_path / "avis longs.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    log_in(page, server, "alice")
    page.locator("#data-upload input[type=file]").set_input_files(str(path))
    page.locator("#data-summary").get_by_text("Ready to train").wait_for()
    _right_edge_inside(page, '#data-preview [role=columnheader]:has-text("note")', "#data-preview")
    page.screenshot(path=str(artifacts / "long-1-data.png"), full_page=True)

    dataset = upload(server, "alice", path)
    spec = {"base_model": "minilm-l6", "data": {"train": dataset["id"]}, "params": QUICK_PARAMS}
    status, job = server.api("POST", "/api/jobs", body=spec)
    assert status == 201, job
    assert wait_finished(server, job["id"])["status"] == "succeeded"
    open_tab(page, "Jobs")
    page.locator("#jobs-refresh").click()
    choose(page, "jobs-job", job["id"][:8], prefix=True)
    page.locator("#jobs-detail").get_by_text(job["id"]).wait_for()
    page.locator("#jobs-open-report").click()
    page.locator("#report-headline").get_by_text(job["id"][:8]).wait_for()
    for header in ("True label", "Predicted", "Confidence"):
        _right_edge_inside(page, f'#report-errors [role=columnheader]:has-text("{header}")', "#report-errors")
    page.screenshot(path=str(artifacts / "long-2-report.png"), full_page=True)

    page.set_viewport_size({"width": 800, "height": 900})
    open_tab(page, "Jobs")
    for header in ("Progress", "Time left", "Result"):
        _right_edge_inside(page, f'#jobs-table [role=columnheader]:has-text("{header}")', "#jobs-table")
    page.screenshot(path=str(artifacts / "long-3-jobs-800.png"), full_page=True)
    context.close()
