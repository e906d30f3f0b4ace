"""The Train tab's techniques in a real browser: turning on augmentation and self-training and uploading unlabeled
texts puts the techniques block and data.unlabeled into the spec the page shows, that spec equals the one
`playground train` builds from the command the page shows, and a task whose recipe lacks a technique hides it."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from engine.spec import JobSpec
from tests.ui.conftest import Server
from tests.ui.test_browser import set_number
from tests.ui.test_browser_recipe import _code, _open, train_tab_with_reviews
from ui.cli import build_parser, spec_from_args

UNLABELED = [
    "A slow, meandering film that never quite decides what it wants to be, yet the last twenty minutes are superb.",
    "Un film magnifique, émouvant et drôle à la fois ; les acteurs sont d'une justesse rare.",
    "这部电影的节奏太慢了，但是结尾非常感人。",
    "Great soundtrack, weak script, and a lead actor who seems to be somewhere else entirely.",
    "I laughed, I cried, I checked my watch twice — a mixed evening, honestly.",
    "Überraschend gut: kluge Dialoge, schöne Bilder und ein mutiges Ende.",
    "The plot has holes you could drive a truck through, and the truck would be more interesting.",
    "演员的表演很自然，故事也很有意思，推荐给大家。",
    "Visually stunning, emotionally empty; two hours I will not get back.",
    "A small, honest film about family, told with warmth and without a single false note.",
    "Worth it for the final scene alone, though the middle drags badly.",
    "Une suite inutile qui recycle toutes les idées du premier épisode, en moins bien.",
]


@pytest.mark.slow
def test_augmentation_and_self_training_reach_the_spec_with_the_unlabeled_upload(
    server: Server, browser, artifacts: Path, tmp_path: Path
):
    unlabeled = tmp_path / "critiques sans note.txt"
    unlabeled.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    context, page = train_tab_with_reviews(browser, server)
    from playwright.sync_api import expect

    _open(page, "train-techniques", "Techniques")
    expect(page.locator("#train-augment-copies")).to_be_hidden()  # a technique's fields show once it is on
    page.locator("#train-augment-on input[type=checkbox]").check()
    set_number(page, "train-augment-copies", "3")
    page.locator("#train-augment-methods").get_by_text("substitute", exact=True).click()
    page.locator("#train-self-training-on input[type=checkbox]").check()
    set_number(page, "train-self-training-threshold", "0.8")
    source = page.locator("#train-source")
    source.get_by_text("needs unlabeled texts").wait_for()  # said before Start: self-training reads a file
    page.locator("#train-unlabeled-upload input[type=file]").set_input_files(str(unlabeled))
    page.locator("#train-unlabeled-note").get_by_text("12 texts").wait_for()
    expect(source.get_by_text("needs unlabeled texts")).to_have_count(0)

    page.locator("#train-equivalent").get_by_text("The same job from the command line").click()
    page.locator("#train-cli").get_by_text("--self-training-threshold").wait_for()
    page.screenshot(path=str(artifacts / "techniques-train.png"), full_page=True)
    shown = yaml.safe_load(_code(page, "train-spec"))
    assert shown["data"]["unlabeled"] == "critiques sans note.txt"  # the user's own file name
    assert shown["techniques"] == {
        "augment": {"methods": ["swap", "delete", "insert", "substitute"], "copies": 3},
        "self_training": {"threshold": 0.8},
    }
    from_page = JobSpec.from_dict(shown)
    assert from_page.techniques.used() == ["augment", "self_training"]
    assert from_page.techniques.compare_with_plain is True

    argv = shlex.split(_code(page, "train-cli").replace("\\\n", " "))
    assert "--unlabeled" in argv and "--augment" in argv and "--self-training" in argv
    from_cli = spec_from_args(build_parser().parse_args(argv[1:]))
    assert Path(from_cli.data.unlabeled).name == "critiques sans note.txt"
    files = {split: getattr(from_page.data, split) for split in ("train", "unlabeled")}
    assert from_cli.model_copy(update={"data": from_cli.data.model_copy(update=files)}) == from_page

    # Chat's recipe offers adversarial training only: the others and the unlabeled upload hide, and leave the spec.
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.locator("#train-task").get_by_text("Chat", exact=True).click()
    # (A group's id is on two nested elements, hence the counts of visible ones.)
    for hidden in ("train-technique-augment", "train-technique-self-training", "train-unlabeled"):
        expect(page.locator(f"#{hidden}:visible")).to_have_count(0)
    expect(page.locator("#train-technique-adversarial:visible").first).to_be_visible()
    page.locator("#train-cli").get_by_text("--task chat").wait_for()
    assert "techniques" not in yaml.safe_load(_code(page, "train-spec"))
    context.close()
