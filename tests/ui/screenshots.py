"""Take the README's screenshots (docs/screenshots/*.png) of every tab with real data.

    python -m tests.ui.screenshots [--out docs/screenshots] [--only tasks]

Starts `playground serve` on a fresh data dir, trains two small models on tests/fixtures/reviews.csv through the REST
API, starts a third so that the Jobs tab shows one running, and photographs each tab in Chromium. Takes ~3 minutes.
Then trains a tagger on tests/fixtures/ner/en.conll and a chat model on a few support conversations and photographs
their Data, Report and Playground views (*-ner.png, *-chat.png). `--only tasks` takes just those.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.ui.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIXTURES,
    REPO,
    start_server,
    stop_server,
    upload,
    wait_finished,
    wait_for,
)
from tests.ui.test_browser import choose, open_tab, set_number

VIEWPORT = {"width": 1280, "height": 900}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--only", choices=["tasks"], help="only the token-classification and chat screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        server = start_server(home, Path(tmp) / "serve.log")
        try:
            wait_for(lambda: " ready." in server.worker_log(), 90, "the worker")
            if args.only is None:
                shoot(server, args.out)
            shoot_tasks(server, args.out, Path(tmp))
        finally:
            stop_server(server)
    for path in sorted(args.out.glob("*.png")):
        print(f"{path} {path.stat().st_size // 1024} KB")


def submit(server, dataset_id: str, **params) -> str:
    spec = {"data": {"train": dataset_id, "text_column": "review_body", "label_column": "verdict"}, "params": params}
    status, job = server.api("POST", "/api/jobs", user=None, body=spec)
    assert status == 201, job
    return job["id"]


def shoot(server, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    dataset = upload(server, None, FIXTURES / "reviews.csv")
    best = submit(server, dataset["id"], epochs=3, batch_size=16, learning_rate=3e-4, max_length=64)
    quick = submit(server, dataset["id"], epochs=1, batch_size=8, learning_rate=5e-4, max_length=64)
    for job_id in (best, quick):
        assert wait_finished(server, job_id, user=None, timeout=600)["status"] == "succeeded"
    running = submit(server, dataset["id"], epochs=4, batch_size=8, learning_rate=3e-4, max_length=64)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        page.goto(server.url)
        page.locator("#data-summary").get_by_text("Ready to train").wait_for()
        page.screenshot(path=str(out / "data.png"), full_page=True)

        open_tab(page, "Train")
        set_number(page, "train-epochs", "3")
        set_number(page, "train-learning-rate", "0.0003")
        page.locator("#train-advanced").get_by_text("Advanced settings").click()
        set_number(page, "train-max-length", "64")
        page.locator("#train-equivalent").get_by_text("The same job from the command line").click()
        page.locator("#train-cli").get_by_text("--max-length").wait_for()
        page.screenshot(path=str(out / "train.png"), full_page=True)

        open_tab(page, "Jobs")
        choose(page, "jobs-job", running[:8], prefix=True)
        page.locator("#jobs-progress").get_by_text("left").wait_for(timeout=120_000)
        # Wait for the first validation point (end of epoch 1), so that both charts have something to show.
        page.locator("#jobs-curve svg").nth(1).locator("circle").first.wait_for(timeout=120_000)
        page.screenshot(path=str(out / "jobs.png"), full_page=True)

        open_tab(page, "Report")
        choose(page, "report-job", best[:8], prefix=True)
        page.locator("#report-headline").get_by_text(best[:8]).wait_for()
        page.locator("#report-compare-section").get_by_text("Compare runs side by side").click()
        choose(page, "report-compare-runs", best[:8], prefix=True)
        choose(page, "report-compare-runs", quick[:8], prefix=True)
        page.locator("#report-compare").click()
        page.locator("#report-comparison [role=gridcell]").get_by_text("Macro F1", exact=True).wait_for()
        page.screenshot(path=str(out / "report.png"), full_page=True)

        open_tab(page, "Playground")
        choose(page, "playground-model", best[:8], prefix=True)
        page.locator("#playground-text textarea").fill("A tender, funny film with a terrific cast.")
        page.locator("#playground-classify").click()
        page.locator("#playground-result").get_by_text("rotten").wait_for()
        page.locator("#playground-share-section").get_by_text("Share a demo of this model").click()
        page.locator("#playground-share").click()
        link = page.locator("#playground-share-message a").first
        link.wait_for()
        page.screenshot(path=str(out / "playground.png"), full_page=True)

        demo = browser.new_page(viewport={"width": 900, "height": 700})
        demo.goto(link.get_attribute("href"))
        demo.locator("#text").fill("Dull, overlong and strangely joyless.")
        demo.locator("#classify").click()
        demo.locator("#result").wait_for()
        demo.screenshot(path=str(out / "demo.png"), full_page=True)
        browser.close()
    server.api("POST", f"/api/jobs/{running}/cancel", user=None)


def shoot_tasks(server, out: Path, tmp: Path) -> None:
    """The token-classification and chat views: data summary, report, playground."""
    from playwright.sync_api import sync_playwright

    conll = upload(server, None, FIXTURES / "ner" / "en.conll")
    params = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-4, "max_length": 64}
    spec = {"task": "token-classification", "data": {"train": conll["id"]}, "params": params}
    status, tagger = server.api("POST", "/api/jobs", user=None, body=spec)
    assert status == 201, tagger
    lines = (FIXTURES / "chat" / "support.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    (tmp / "support.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    conversations = upload(server, None, tmp / "support.jsonl")
    params = {"epochs": 2, "batch_size": 4, "max_length": 256}
    status, chat = server.api(
        "POST", "/api/jobs", user=None, body={"task": "chat", "data": {"train": conversations["id"]}, "params": params}
    )
    assert status == 201, chat
    for job in (tagger, chat):
        assert wait_finished(server, job["id"], user=None, timeout=900)["status"] == "succeeded"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        page.goto(server.url)
        choose(page, "data-dataset", "en.conll", prefix=True)
        page.locator("#data-summary").get_by_text("Ready to train a tagger").wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "data-ner.png"), full_page=True)

        for job, name in ((tagger, "ner"), (chat, "chat")):
            open_tab(page, "Report")
            choose(page, "report-job", job["id"][:8], prefix=True)
            page.locator("#report-headline").get_by_text(job["id"][:8]).wait_for()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"report-{name}.png"), full_page=True)

        open_tab(page, "Playground")
        choose(page, "playground-model", tagger["id"][:8], prefix=True)
        text = "Maria Schmidt flew from Berlin to Madrid to meet the Lufthansa board."
        page.locator("#playground-tag-text textarea").fill(text)
        page.locator("#playground-tag").click()
        page.locator("#playground-entities").get_by_text("Berlin").wait_for()
        page.screenshot(path=str(out / "playground-ner.png"), full_page=True)

        choose(page, "playground-model", chat["id"][:8], prefix=True)
        page.locator("#playground-chat-compare input").check()
        page.locator("#playground-chat-message textarea").fill("How do I export my notes as PDF?")
        page.locator("#playground-chat-send").click()
        page.locator("#playground-chat-send").wait_for()
        page.wait_for_timeout(20_000)  # two models answer in turn, token by token
        page.screenshot(path=str(out / "playground-chat.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
