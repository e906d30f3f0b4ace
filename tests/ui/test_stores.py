"""The access rules every spec from the UI or REST goes through: only your own uploads, no server paths.

The dataset and share stores themselves are tested in tests/worker/test_uploads.py and test_shares.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from engine.errors import DataError
from ui.context import AccessError, AppContext, Users
from worker.settings import Settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("review_body,verdict\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(30)))
    return path


def context(home: Path, *users: str) -> AppContext:
    settings = Settings(home=home, queue=f"test-{uuid.uuid4().hex[:8]}")
    return AppContext(settings, Users({user: "pw" for user in users}))


def test_with_several_users_only_your_own_uploads_can_be_trained_on(home: Path, csv: Path):
    ctx = context(home, "alice", "bob")
    try:
        upload = ctx.datasets.add("alice", csv, "reviews.csv", format="csv", rows=30, columns=["a", "b"])
        spec = ctx.prepare_spec({"data": {"train": upload.id}}, "alice")
        assert spec.data.train == str(upload.path)
        with pytest.raises(AccessError, match="no dataset"):
            ctx.prepare_spec({"data": {"train": upload.id}}, "bob")
        with pytest.raises(AccessError, match="not one of your uploaded datasets"):
            ctx.prepare_spec({"data": {"train": str(upload.path)}}, "bob")
        with pytest.raises(AccessError, match="not one of your uploaded datasets"):
            ctx.prepare_spec({"data": {"train": str(csv)}}, "alice")  # any other file on the server
        with pytest.raises(AccessError, match="local folders cannot be used"):
            ctx.prepare_spec({"base_model": str(home), "data": {"train": upload.id}}, "alice")
        with pytest.raises(ValueError, match="not logged in"):
            ctx.owner(None)
        assert ctx.owner("bob") == "bob"
    finally:
        ctx.close()


def test_single_user_mode_takes_server_paths_and_reports_data_errors_before_queueing(home: Path, csv: Path):
    ctx = context(home)
    try:
        assert ctx.owner(None) == ctx.local_owner
        spec = ctx.prepare_spec({"data": {"train": str(csv)}}, ctx.local_owner)
        assert spec.data.train == str(csv.resolve())
        with pytest.raises(DataError, match="not found on the server"):
            ctx.prepare_spec({"data": {"train": str(csv.parent / "missing.csv")}}, ctx.local_owner)
        one_label = csv.parent / "one.csv"
        one_label.write_text("text,label\n" + "a,x\n" * 10)
        with pytest.raises(DataError, match="only one label"):
            ctx.submit({"data": {"train": str(one_label)}}, ctx.local_owner)
        assert ctx.jobs.list_jobs() == []
    finally:
        ctx.close()


def test_chinese_data_on_the_english_model_is_queued_with_a_warning_and_without_a_model_gets_gemma(
    home: Path, csv: Path
):
    zh = Path(__file__).resolve().parents[1] / "fixtures" / "zh" / "reviews.csv"
    ctx = context(home)
    try:
        warned = ctx.submit({"base_model": "minilm-l6", "data": {"train": str(zh)}}, ctx.local_owner)
        assert len(warned.warnings) == 1 and "pick base model gemma3-270m (multilingual) instead" in warned.warnings[0]
        assert ctx.jobs.get(warned.job_id).spec["base_model"] == "minilm-l6"  # the user's choice is kept
        chosen = ctx.submit({"data": {"train": str(zh)}}, ctx.local_owner)
        assert chosen.warnings == [] and ctx.jobs.get(chosen.job_id).spec["base_model"] == "gemma3-270m"
        english = ctx.submit({"data": {"train": str(csv)}}, ctx.local_owner)
        assert english.warnings == [] and ctx.jobs.get(english.job_id).spec["base_model"] == "minilm-l6"
    finally:
        ctx.close()
