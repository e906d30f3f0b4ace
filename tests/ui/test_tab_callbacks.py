"""The Data and Train tabs' callbacks called directly, without a browser, on a real AppContext (SQLite job store and
the embedded broker in tmp_path, single-user mode, so a `None` request is the local user)."""

from __future__ import annotations

import inspect
import shlex
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.spec import JobSpec
from engine.tasks import get_task, task_names
from ui.context import AppContext, Users
from ui.tabs import data, train, train_techniques
from ui.tabs.common import bind
from worker.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Long French reviews with accents, as a spreadsheet exported in Latin-1 would hold them, plus a numeric id column.
REVIEWS = [
    ("négatif", "Très déçu : le café était tiède, le serveur n'a pas daigné s'excuser et l'addition était salée."),
    ("positif", "Un accueil chaleureux, des crêpes délicieuses et une crème brûlée parfaite. Nous reviendrons !"),
    ("négatif", "La chambre sentait le renfermé, la moquette était tâchée et le wifi ne marchait qu'en bas."),
    ("positif", "Séjour idéal : vue superbe sur le lac, petit-déjeuner copieux, personnel aux petits soins."),
    ("négatif", "Livraison en retard de trois semaines, colis abîmé, et le service client ne répond jamais. Déçue."),
    ("positif", "Qualité irréprochable, taille conforme, et le tissu est d'une douceur étonnante. Ravie de l'achat."),
]
ROWS = 40


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    context = AppContext(Settings(home=tmp_path / "home", queue=f"test-{uuid.uuid4().hex[:8]}"), Users())
    yield context
    context.close()


@pytest.fixture
def latin1_reviews(tmp_path: Path) -> Path:
    lines = ["id,commentaire,note"]
    for i in range(ROWS):
        label, text = REVIEWS[i % len(REVIEWS)]
        lines.append(f'{1000 + i},"{text} (avis n°{i})",{label}')
    path = tmp_path / "avis clients.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path


def uploaded(ctx: AppContext, path: Path) -> str:
    """Upload through the Data tab's callback; returns the new dataset id."""
    picker, *_ = data.upload_dataset(ctx, str(path), None)
    return picker.value


def train_inputs(**given: Any) -> dict[str, Any]:
    """The Train tab's inputs as an API client that leaves most knobs out sends them."""
    return {name: None for name in train.INPUT_FIELDS} | given


def test_a_latin1_csv_upload_is_kept_and_summarised_with_its_guessed_columns(ctx: AppContext, latin1_reviews: Path):
    picker, preview, text, label, summary, chart = data.upload_dataset(ctx, str(latin1_reviews), None)
    owner = ctx.owner(None)
    [dataset] = ctx.datasets.list(owner)
    assert picker.value == dataset.id
    assert picker.choices[0][0].startswith(f"avis clients.csv · {ROWS} rows")
    assert preview.shape == (data.PREVIEW_ROWS, 3)
    assert (text.value, label.value) == ("commentaire", "note")
    assert f"{ROWS} usable rows" in summary and "2 labels" in summary
    assert "text from column `commentaire`" in summary and "labels from column `note`" in summary
    assert "not UTF-8" in summary  # the user is told the file was not UTF-8
    assert dict(zip(chart["label"], chart["rows"], strict=True)) == {"négatif": ROWS // 2, "positif": ROWS // 2}
    remembered = ctx.datasets.get(dataset.id, owner)
    assert (remembered.text_column, remembered.label_column) == ("commentaire", "note")


def test_a_latin1_csv_upload_keeps_its_accents_and_another_encoding_can_be_picked(
    ctx: AppContext, latin1_reviews: Path
):
    picker, preview, _, _, summary, _ = data.upload_dataset(ctx, str(latin1_reviews), None)
    assert preview["commentaire"].iloc[0] == f"{REVIEWS[0][1]} (avis n°0)"  # once read as ISO-8859-10: 'déįu'
    assert "decoded as Windows-1252 (Latin-1)" in summary and "Très déçu" in summary  # a sample to check it by
    # Picked by hand, another code page shows what it would do; the Train tab's spec carries the pick.
    preview, _, _, summary, _ = data.decode_dataset(ctx, picker.value, "cp1250", None)
    assert preview["commentaire"].iloc[0].startswith("Trčs déçu")  # è is č in Windows-1250
    assert "decoded as" not in summary  # chosen, not guessed
    values = train_inputs(dataset_id=picker.value, task="text-classification", encoding="cp1250")
    spec, _ = train.spec_from(ctx, ctx.owner(None), values)
    assert spec["data"]["encoding"] == "cp1250"
    assert "encoding" not in train.spec_from(ctx, ctx.owner(None), values | {"encoding": ""})[0]["data"]


def test_an_empty_upload_changes_nothing_but_the_summary(ctx: AppContext):
    outputs = data.upload_dataset(ctx, None, None)
    assert outputs[4] == "No file received; drop a file on the box again."
    assert ctx.datasets.list(ctx.owner(None)) == []


def test_a_conll_upload_is_shown_as_token_classification_with_numbered_tag_columns(ctx: AppContext):
    *_, summary, _ = data.upload_dataset(ctx, str(FIXTURES / "ner" / "en.conll"), None)
    assert "150 sentences" in summary and "4 types" in summary
    dataset_id = ctx.datasets.list(ctx.owner(None))[0].id
    radio, *rest = data.task_view(ctx, dataset_id, None)
    fields = data.task_column_fields()
    pickers, groups = dict(zip(fields, rest[: len(fields)], strict=True)), rest[len(fields) :]
    assert radio.value == "token-classification"
    assert pickers["tokens_column"].choices == []  # CoNLL tokens are always the first column
    assert pickers["tags_column"].choices == [("2", "2")]  # one token and one tag per line: the tag is column 2
    assert [group.visible for group in groups] == [name == "token-classification" for name in task_names()]


def test_with_no_dataset_the_task_view_falls_back_to_the_default_task(ctx: AppContext):
    radio, *rest = data.task_view(ctx, None, None)
    assert radio.value == task_names()[0]
    assert [group.visible for group in rest[-len(task_names()) :]] == [True, False, False]


def test_switching_a_review_table_to_chat_says_which_columns_are_missing(ctx: AppContext, latin1_reviews: Path):
    dataset_id = uploaded(ctx, latin1_reviews)
    *pickers_and_groups, summary, chart = data.change_task(ctx, dataset_id, "chat", None)
    assert "can't be used for training yet" in summary and "no usable chat data" in summary
    assert "['id', 'commentaire', 'note']" in summary
    assert chart.empty
    assert [g.visible for g in pickers_and_groups[-len(task_names()) :]] == [n == "chat" for n in task_names()]


def test_check_dataset_with_the_columns_swapped_explains_why(ctx: AppContext, latin1_reviews: Path):
    dataset_id = uploaded(ctx, latin1_reviews)
    no_columns = [None] * len(data.task_column_fields())
    summary, _ = data.check_dataset(ctx, dataset_id, "note", "commentaire", "text-classification", *no_columns, None)
    assert "can't be used for training yet" in summary and "Too few examples to split" in summary
    summary, _ = data.check_dataset(ctx, "0123456789abcdef", "commentaire", "note", None, *no_columns, None)
    assert summary == "No file yet: upload one on the left."


def test_a_chat_spec_holds_only_chat_columns_and_chat_knobs(ctx: AppContext):
    dataset_id = uploaded(ctx, FIXTURES / "chat" / "support.jsonl")
    base_model = get_task("chat").default_base_model
    values = train_inputs(
        dataset_id=dataset_id,
        task="chat",
        base_model=base_model,
        text_column="commentaire",  # left over from a review table picked earlier
        label_column="note",
        tags_column="2",
        validation_fraction=0.1,
        test_fraction=0.1,
    )
    spec, name = train.spec_from(ctx, ctx.owner(None), values)
    assert name == "support.jsonl"
    assert spec["task"] == "chat" and spec["base_model"] == base_model
    assert spec["data"]["train"] == str(ctx.datasets.get(dataset_id, ctx.owner(None)).path)
    assert set(spec["data"]) == {"train", *get_task("chat").column_fields, "validation_fraction", "test_fraction"}
    assert spec["params"]["method"] == "lora" and spec["params"]["lora_rank"] == 16  # knobs left out: chat defaults
    assert spec["params"]["max_length"] == train.task_defaults("chat")["max_length"]
    assert JobSpec.from_dict(spec).task == "chat"
    line, command, spec_yaml = train.preview_spec(ctx, **values)
    first, memory = line.split("\n\n")
    assert first == "Training data: **support.jsonl** · Chat · columns guessed"
    # batch 8 of chat's defaults, and SmolLM2's 135M weights in fp32 (0.5 GB) in the estimate
    assert memory.startswith("Effective batch 8 x 1 = 8 · estimated peak memory about ") and "weights 0.5" in memory
    assert "--task chat" in command and "text_column" not in spec_yaml


def test_a_text_classification_spec_holds_its_columns_and_the_method_knobs(ctx: AppContext, latin1_reviews: Path):
    dataset_id = uploaded(ctx, latin1_reviews)
    values = train_inputs(
        dataset_id=dataset_id,
        text_column="commentaire",
        label_column="note",
        task="text-classification",
        base_model="minilm-l6",
        epochs=2.0,
        batch_size=16.0,  # sliders send floats
        method="lora",
    )
    spec, _ = train.spec_from(ctx, ctx.owner(None), values)
    assert spec["data"] == {"train": spec["data"]["train"], "text_column": "commentaire", "label_column": "note"}
    assert spec["params"]["method"] == "lora" and spec["params"]["lora_rank"] == 16  # classifiers take LoRA too
    assert spec["params"]["batch_size"] == 16 and isinstance(spec["params"]["batch_size"], int)
    line, command, spec_yaml = train.preview_spec(ctx, **values)
    assert (
        line.split("\n\n")[0]
        == "Training data: **avis clients.csv** · Text classification · text from `commentaire` · label from `note`"
    )
    # The file as the user knows it, not the server's upload folder.
    assert "--train 'avis clients.csv'" in command and "train: avis clients.csv" in spec_yaml
    assert str(ctx.settings.home.resolve()) not in command + spec_yaml


def test_submitting_without_an_uploaded_file_starts_nothing(ctx: AppContext):
    message, job_id = train.submit_job(ctx, **train_inputs(dataset_id="0123456789abcdef", task="text-classification"))
    assert job_id == ""
    assert "Not started: the data needs fixing" in message and "'0123456789abcdef'" in message
    message, job_id = train.submit_job(ctx, **train_inputs(task="text-classification"))
    assert job_id == "" and "No training data picked: upload a file" in message
    assert ctx.jobs.list_jobs() == []
    assert train.preview_spec(ctx, **train_inputs(task="chat")) == ("Pick a file in the **Data** tab first.", "", "")


def test_bound_callbacks_show_gradio_the_api_parameters(ctx: AppContext):
    # gradio_client calls these by position and by name: the names are the API.
    for callback in (train.preview_spec, train.submit_job):
        assert list(inspect.signature(bind(ctx, callback)).parameters) == [*train.INPUT_FIELDS, "request"]
    check = inspect.signature(bind(ctx, data.check_dataset)).parameters
    assert list(check) == [
        "dataset_id",
        "text",
        "label",
        "task_name",
        *data.task_column_fields(),
        "encoding",
        "request",
    ]
    assert list(train.TASK_COLUMN_FIELDS) == data.task_column_fields()
    assert list(inspect.signature(bind(ctx, train.refresh_choices)).parameters) == ["request"]


def test_the_base_model_follows_the_data_and_a_model_that_cannot_read_it_is_warned_of(
    ctx: AppContext, latin1_reviews: Path
):
    chinese = uploaded(ctx, FIXTURES / "zh" / "reviews.csv")  # GB18030, 评论内容 / 情感
    picker, note = train.fit_model(ctx, chinese, "text-classification", None, None)
    assert picker["value"] == "gemma3-270m"
    assert note.startswith("ℹ Base model gemma3-270m chosen for this data (Han ")
    assert "minilm-l6 reads English; pick another model to override." in note
    picker, note = train.fit_model(ctx, uploaded(ctx, latin1_reviews), "text-classification", None, None)
    assert (picker["value"], note) == ("minilm-l6", "")  # French in Latin script: the default reads it

    values = train_inputs(dataset_id=chinese, task="text-classification", base_model="minilm-l6", epochs=2.0)
    line, _, _ = train.preview_spec(ctx, **values)
    assert "\n\n⚠ **Before you start: minilm-l6 is English (the texts are Han " in line
    assert "pick base model gemma3-270m (multilingual) instead.**" in line
    line, _, _ = train.preview_spec(ctx, **(values | {"base_model": "gemma3-270m"}))
    assert "⚠" not in line
    assert train.fit_model(ctx, None, "text-classification", None, None) == (train.gr.skip(), "")


@pytest.mark.parametrize("bad", [b"", b"PK\x03\x04" + bytes(200), bytes(range(256)) * 8])
def test_a_failed_upload_leaves_no_file_picked_and_the_same_file_twice_is_one_entry(
    ctx: AppContext, latin1_reviews: Path, tmp_path: Path, bad: bytes
):
    good = uploaded(ctx, latin1_reviews)
    again = uploaded(ctx, latin1_reviews)
    assert again == good and len(ctx.datasets.list(ctx.owner(None))) == 1  # no duplicate entry
    broken = tmp_path / "avis clients (2).csv"
    broken.write_bytes(bad)
    picker, preview, text, label, summary, chart = data.upload_dataset(ctx, str(broken), None)
    assert picker.value is None and [v for _, v in picker.choices] == [good]  # the good one stays in the list
    assert preview.empty and text.choices == [] and label.choices == [] and chart.empty
    assert "avis clients (2).csv can't be read; it was not kept" in summary
    # The Train tab, fed the cleared pick, has nothing to train on.
    assert train.preview_spec(ctx, **train_inputs(dataset_id=picker.value, task="text-classification"))[0] == (
        "Pick a file in the **Data** tab first."
    )


def test_a_chinese_conll_file_is_previewed_as_sentences_and_counted_as_sentences(ctx: AppContext, tmp_path: Path):
    import json

    lines = []
    for record in map(json.loads, (FIXTURES / "ner" / "zh.jsonl").read_text(encoding="utf-8").splitlines()):
        lines += [f"{token} {tag}" for token, tag in zip(record["tokens"], record["tags"], strict=True)] + [""]
    conll = tmp_path / "人民日报.conll"  # one character a line, as People's Daily-style corpora come
    conll.write_text("\n".join(lines), encoding="utf-8")
    picker, preview, *_ = data.upload_dataset(ctx, str(conll), None)
    assert picker.choices[0][0].startswith("人民日报.conll · 120 sentences")  # not one 'row' per character line
    assert list(preview.columns) == ["sentence", "tags"] and len(preview) == data.PREVIEW_ROWS
    assert preview["sentence"].iloc[0] == "周婷和黄敏是中山大学的同学。"
    assert preview["tags"].iloc[0].startswith("B-PER I-PER O B-PER I-PER O B-ORG")


def test_chat_turns_are_previewed_as_lines_not_object_object(ctx: AppContext):
    _, preview, *_ = data.upload_dataset(ctx, str(FIXTURES / "chat" / "zh_support.jsonl"), None)
    first = preview["messages"].iloc[0]
    assert isinstance(first, str) and "[object Object]" not in first
    roles = [line.split(":", 1)[0] for line in first.splitlines()]
    assert roles[-1] == "assistant" and "user" in roles
    assert "—— 记事猫客服 小云" in first


def test_a_browser_keeps_its_training_knobs_per_task_across_reloads():
    values = {name: train.task_defaults("chat")[name] for name in train.KEPT_KNOBS} | {"epochs": 7, "lora_rank": 8}
    saved = train.remember("chat", {"text-classification": {"epochs": 2}}, *values.values())
    assert saved["text-classification"] == {"epochs": 2} and saved["chat"]["lora_rank"] == 8
    _, _, *knobs, _ = train.models_for("chat", saved)  # what the page load and a task switch put back
    restored = dict(zip(train.KEPT_KNOBS, knobs, strict=True))
    assert restored["epochs"]["value"] == 7 and restored["lora_rank"]["value"] == 8
    _, _, *knobs, _ = train.models_for("token-classification", saved)  # nothing kept: the task's defaults
    fresh = dict(zip(train.KEPT_KNOBS, knobs, strict=True))
    assert fresh["max_length"]["value"] == 128 and fresh["method"]["value"] == "full"
    assert "value" not in fresh["epochs"]  # left as the user has it
    # Opening the tab puts the knobs back and leaves the base model alone (gemma3-270m for Chinese stays picked).
    reopened = dict(zip(train.KEPT_KNOBS, train.restore_knobs("chat", saved), strict=True))
    assert reopened["epochs"]["value"] == 7 and len(reopened) == len(train.KEPT_KNOBS)
    assert all("value" not in knob for knob in train.restore_knobs("token-classification", saved))


def assert_the_cli_builds_the_same_spec(ctx: AppContext, values: dict[str, Any]) -> None:
    """`playground train` run with the command the tab shows builds the spec the tab submits."""
    from ui.cli import build_parser, spec_from_args

    from_tab = JobSpec.from_dict(train.spec_from(ctx, ctx.owner(None), values)[0])
    _, command, _ = train.preview_spec(ctx, **values)
    # The command names the user's own files, not where the server keeps the uploads; everything else is equal.
    argv = shlex.split(command.replace("\\\n", " "))
    folder = Path(from_tab.data.train).parent.parent  # uploads/<id>/<name>
    from_cli = spec_from_args(build_parser().parse_args(argv[1:]))
    files = {}
    for split in ("train", "unlabeled"):
        shown, kept = getattr(from_cli.data, split), getattr(from_tab.data, split)
        assert (shown is None) == (kept is None) and (kept is None or Path(shown).name == Path(kept).name)
        if kept is not None:
            assert Path(kept).parent.parent == folder
            files[split] = kept
    same_files = {"data": from_cli.data.model_copy(update=files)}
    assert from_cli.model_copy(update=same_files).model_dump() == from_tab.model_dump()


def test_every_recipe_option_builds_the_spec_the_cli_builds_from_the_shown_command(
    ctx: AppContext, latin1_reviews: Path, tmp_path: Path
):
    from ui.tabs.train_knobs import preset_values

    dataset_id = uploaded(ctx, latin1_reviews)
    task = "text-classification"
    preset = dict(zip(train.PRESET_TARGETS, preset_values("best", task, train.PRESET_TARGETS), strict=True))
    assert preset["epochs"] == 8 and preset["early_stopping_patience"] == 2 and preset["search_on"] is True
    assert preset["search_learning_rate"] == "1e-05, 0.001"  # around the task's 1e-4, as text in its box
    values = train_inputs(dataset_id=dataset_id, text_column="commentaire", label_column="note", task=task)
    values |= preset | {"base_model": "minilm-l6", "preset": "best"}
    values |= {
        "optimizer": "adafactor",
        "schedule": "cosine_with_restarts",
        "schedule_cycles": 3,
        "warmup_steps": 5,
        "max_grad_norm": 0.5,
        "eval_strategy": "steps",
        "eval_steps": 7,
        "early_stopping_threshold": 0.01,
        "gradient_accumulation_steps": 4,
        "gradient_checkpointing": True,
        "dropout": 0.2,
        "label_smoothing": 0.1,
        "class_weights": "positif=1, négatif=2.5",
        "freeze_embeddings": "trained",
        "freeze_layers": 2,
        "method": "ia3",
        "search_batch_sizes": "8, 16",
        "search_time_budget_minutes": 30,
        "search_prune": False,
        "search_ensemble": 2,
    }
    spec, _ = train.spec_from(ctx, ctx.owner(None), values)
    from_tab = JobSpec.from_dict(spec)
    assert from_tab.params.class_weights == {"positif": 1.0, "négatif": 2.5}
    assert from_tab.params.freeze_embeddings is False and from_tab.params.dropout == 0.2
    assert from_tab.search.batch_sizes == (8, 16) and from_tab.search.learning_rate == (1e-5, 1e-3)
    assert from_tab.search.prune is False and from_tab.search.time_budget_minutes == 30
    assert from_tab.search.ensemble == 2
    line, _, _ = train.preview_spec(ctx, **values)
    assert "Effective batch 16 x 4 = 64" in line
    assert_the_cli_builds_the_same_spec(ctx, values)

    # The techniques (without the search, which cannot share a job with them) and the unlabeled texts they read.
    unlabeled = tmp_path / "avis sans note.txt"
    lines = [f'{text} — « copie {i} », sans note, "entre guillemets"' for i, (_, text) in enumerate(REVIEWS * 2)]
    unlabeled.write_text("\n".join([*lines, "服务很好，菜也好吃，下次还来。"]) + "\n", encoding="utf-8")
    unlabeled_id, note = train_techniques.upload_unlabeled(ctx, str(unlabeled), None)
    assert note.startswith("✓ **avis sans note.txt**: 13 texts")  # commas and quotes stay inside their line
    values |= {
        "search_on": False,
        "augment_on": True,
        "augment_methods": ["swap", "substitute"],
        "augment_copies": 3,
        "augment_rate": 0.25,
        "adversarial_on": True,
        "adversarial_method": "pgd",
        "adversarial_epsilon": 0.8,
        "adversarial_steps": 2,
        "domain_pretraining_on": True,
        "domain_pretraining_learning_rate": 3e-5,
        "domain_pretraining_use_training_texts": False,
        "self_training_on": True,
        "self_training_threshold": 0.85,
        "self_training_max_per_label": 40.0,  # a number box sends a float
        "compare_with_plain": False,
        "unlabeled_dataset": unlabeled_id,
    }
    spec, _ = train.spec_from(ctx, ctx.owner(None), values)
    assert "search" not in spec and spec["techniques"]["self_training"] == {"threshold": 0.85, "max_per_label": 40}
    from_tab = JobSpec.from_dict(spec)
    assert from_tab.techniques.augment.methods == ("swap", "substitute") and from_tab.techniques.augment.copies == 3
    assert from_tab.techniques.adversarial.steps == 2 and from_tab.techniques.compare_with_plain is False
    assert from_tab.techniques.domain_pretraining.use_training_texts is False
    assert from_tab.data.unlabeled == str(ctx.datasets.get(unlabeled_id, ctx.owner(None)).path)
    line, command, spec_yaml = train.preview_spec(ctx, **values)
    assert "⚠" not in line and "--unlabeled 'avis sans note.txt'" in command and "--no-compare-with-plain" in command
    assert "unlabeled: avis sans note.txt" in spec_yaml and "techniques:" in spec_yaml
    assert_the_cli_builds_the_same_spec(ctx, values)
    # An empty optional box is unset, not zero: the model's own dropout, warm-up by share.
    cleared, _ = train.spec_from(ctx, ctx.owner(None), values | {"dropout": None, "warmup_steps": None})
    assert JobSpec.from_dict(cleared).params.dropout is None and JobSpec.from_dict(cleared).params.warmup_steps is None


def test_a_bad_recipe_value_is_named_before_start(ctx: AppContext, latin1_reviews: Path):
    values = train_inputs(dataset_id=uploaded(ctx, latin1_reviews), task="text-classification")
    line, _, _ = train.preview_spec(ctx, **(values | {"class_weights": "positif: 2"}))
    assert "class_weights" in line and "label=weight" in line
    message, job_id = train.submit_job(ctx, **(values | {"class_weights": "positif: 2"}))
    assert job_id == "" and "label=weight" in message


def test_the_techniques_follow_the_task_and_say_what_is_missing(ctx: AppContext, latin1_reviews: Path, tmp_path: Path):
    from engine.techniques import TECHNIQUES

    for task in task_names():
        accordion, *groups, unlabeled = train_techniques.shown_for(task)
        offered = get_task(task).techniques
        assert [group.visible for group in groups] == [name in offered for name in TECHNIQUES]
        assert unlabeled.visible == bool({"domain_pretraining", "self_training"} & set(offered))
        assert accordion.visible == bool(offered)

    dataset_id = uploaded(ctx, latin1_reviews)
    values = train_inputs(dataset_id=dataset_id, task="text-classification", base_model="minilm-l6")
    line, command, spec_yaml = train.preview_spec(ctx, **values)
    assert "techniques" not in spec_yaml and "--augment" not in command  # none on: no block at all
    # Self-training without unlabeled texts: said before Start, and Start refuses.
    line, _, spec_yaml = train.preview_spec(ctx, **(values | {"self_training_on": True}))
    assert "techniques:\n  self_training: {}" in spec_yaml
    assert "⚠ **A technique needs fixing:**" in line and "techniques.self_training needs unlabeled texts" in line
    message, job_id = train.submit_job(ctx, **(values | {"self_training_on": True}))
    assert job_id == "" and "needs unlabeled texts" in message

    too_few = tmp_path / "trois avis.txt"
    too_few.write_text("Très bon.\nTrès bon.\n\n好\n", encoding="utf-8")
    picked, note = train_techniques.upload_unlabeled(ctx, str(too_few), None)
    assert picked == "" and "trois avis.txt can't be read; it was not kept" in note and "2 distinct" in note
    assert all(d.name != "trois avis.txt" for d in ctx.datasets.list(ctx.owner(None)))

    table = tmp_path / "non notés.csv"
    table.write_text("commentaire\n" + "\n".join(f'"{text}, n°{i}"' for i, (_, text) in enumerate(REVIEWS * 2)))
    picked, note = train_techniques.upload_unlabeled(ctx, str(table), None)
    assert picked and note.startswith("✓ **non notés.csv**: 12 rows")
    # The file goes into the spec only with a technique that reads it, and a technique the task does not offer
    # (augmentation of a tagger's data) stays out of its spec.
    spec, _ = train.spec_from(ctx, ctx.owner(None), values | {"unlabeled_dataset": picked, "ensemble_on": True})
    assert "unlabeled" not in spec["data"] and spec["techniques"] == {"ensemble": {}}
    # An emptied number box sends 0, which for the most pseudo-labels per label means unset (all of them).
    self_training = {"unlabeled_dataset": picked, "self_training_on": True, "self_training_max_per_label": 0}
    spec, _ = train.spec_from(ctx, ctx.owner(None), values | self_training)
    assert spec["data"]["unlabeled"].endswith("non notés.csv") and JobSpec.from_dict(spec).data.unlabeled
    assert spec["techniques"] == {"self_training": {}}
    conll = uploaded(ctx, FIXTURES / "ner" / "en.conll")
    tagger = train_inputs(dataset_id=conll, task="token-classification", base_model="minilm-l6", augment_on=True)
    assert "techniques" not in train.spec_from(ctx, ctx.owner(None), tagger)[0]
    with pytest.raises(data.DataError, match="no uploaded file '0123456789abcdef' for the unlabeled texts"):
        gone = {"unlabeled_dataset": "0123456789abcdef", "self_training_on": True}
        train.spec_from(ctx, ctx.owner(None), values | gone)
