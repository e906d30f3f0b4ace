"""The named Gradio endpoints, called the way a script would: gradio_client logged in as a user."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.ui.conftest import FIXTURES, USERS, Server, http, wait_finished

ENDPOINTS = {
    "/upload_dataset",
    "/list_datasets",
    "/open_dataset",
    "/check_dataset",
    "/preview_spec",
    "/submit_job",
    "/list_jobs",
    "/job_status",
    "/cancel_job",
    "/evaluate_job",
    "/list_reports",
    "/show_report",
    "/download_model",
    "/compare_runs",
    "/list_models",
    "/classify",
    "/predict_file",
    "/create_share",
    "/revoke_share",
}


def value(output):
    """The value of a component output: updates (new choices and value) come back as dicts."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def upload(user: Client, path: Path) -> str:
    """Upload a data file through /upload_dataset; returns the dataset id."""
    return value(user.predict(handle_file(str(path)), api_name="/upload_dataset")[0])


def client(server: Server, user: str) -> Client:
    return Client(server.url, auth=(user, USERS[user]), verbose=False, download_files=False)


@pytest.fixture(scope="module")
def alice(server: Server) -> Client:
    return client(server, "alice")


@pytest.fixture(scope="module")
def bob(server: Server) -> Client:
    return client(server, "bob")


def test_every_scripted_action_has_a_named_endpoint(alice: Client):
    named = set(alice.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named >= ENDPOINTS, sorted(ENDPOINTS - named)


def test_upload_and_check_a_dataset_with_unusual_column_names(alice: Client):
    dataset, preview, text, label, summary, chart = alice.predict(
        handle_file(str(FIXTURES / "reviews.csv")), api_name="/upload_dataset"
    )
    dataset = value(dataset)
    assert (value(text), value(label)) == (
        "review_body",
        "verdict",
    )  # guessed, although they are not called text/label
    assert "Ready to train" in summary and "240 usable rows" in summary
    assert {row[0]: row[1] for row in chart["data"]} == {"fresh": 120, "rotten": 120}
    assert preview["headers"] == ["verdict", "review_body"]  # the label first, the long texts last

    summary, _ = alice.predict(dataset, "verdict", "verdict", api_name="/check_dataset")
    assert "can't be used for training yet" in summary and "both 'verdict'" in summary


def test_a_file_that_is_not_a_table_is_refused_with_a_readable_message(alice: Client, tmp_path: Path):
    workbook = tmp_path / "reviews.csv"  # an Excel workbook saved under a .csv name
    workbook.write_bytes(b"PK\x03\x04 a zipped workbook")
    before = value(alice.predict(None, api_name="/list_datasets")[0])
    dataset, *_, summary, _ = alice.predict(handle_file(str(workbook)), api_name="/upload_dataset")
    assert "reviews.csv can't be read" in summary and "Excel" in summary and "UTF-8 CSV" in summary
    assert value(alice.predict(None, api_name="/list_datasets")[0]) == before  # nothing was kept


def test_submit_refuses_bad_data_with_a_readable_message(alice: Client, server: Server, tmp_path: Path):
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("comment,mood\nlovely,happy\nawful,sad\ngreat,happy\n", encoding="utf-8")
    dataset = upload(alice, tiny)
    before = len(server.api("GET", "/api/jobs")[1]["jobs"])
    message, job_id = alice.predict(dataset, "comment", "mood", api_name="/submit_job")
    assert job_id == ""
    assert "Not started" in message and "Too few examples to split" in message
    assert len(server.api("GET", "/api/jobs")[1]["jobs"]) == before


def test_another_users_dataset_is_invisible(alice: Client, bob: Client):
    dataset = upload(alice, FIXTURES / "reviews.csv")
    with pytest.raises(AppError, match="no uploaded file"):
        bob.predict(dataset, api_name="/open_dataset")
    message, job_id = bob.predict(dataset, "review_body", "verdict", api_name="/submit_job")
    assert job_id == "" and "no uploaded file" in message.lower()


@pytest.mark.slow
def test_classify_report_share_and_compare_through_named_endpoints(
    alice: Client, bob: Client, server: Server, trained_job: dict, tmp_path: Path
):
    job_id = trained_job["id"]
    scores, lines = alice.predict(job_id, "A warm, witty and wonderful film.", False, api_name="/classify")
    assert scores["label"] == "fresh"
    assert {c["label"] for c in scores["confidences"]} == {"fresh", "rotten"}
    assert lines["data"] == []  # one text, no table of lines
    pasted = "A warm, witty and wonderful film.\n\nDull, slow and far too long; I nearly left.\n"
    scores, lines = alice.predict(job_id, pasted, True, api_name="/classify")
    assert lines["headers"] == ["Label", "Score", "Line"] and [row[2] for row in lines["data"]] == [
        "A warm, witty and wonderful film.",
        "Dull, slow and far too long; I nearly left.",
    ]
    assert lines["data"][0][0] == scores["label"] == "fresh"
    with pytest.raises(AppError, match="no job"):
        bob.predict(job_id, "A warm film.", api_name="/classify")

    texts = tmp_path / "new_reviews.csv"
    texts.write_text("id,review\n1,Charming and funny.\n2,A boring mess.\n", encoding="utf-8")
    predictions, preview = alice.predict(job_id, handle_file(str(texts)), "review", api_name="/predict_file")
    assert preview["headers"][:4] == ["id", "review", "predicted", "confidence"]
    assert [row[2] for row in preview["data"]] == ["fresh", "rotten"]
    assert Path(predictions["path"] if isinstance(predictions, dict) else predictions).name.endswith(".csv")

    headline, per_class, confusion, errors, files, _ = alice.predict(job_id, api_name="/show_report")
    assert "Macro F1" in headline and job_id[:8] in headline
    assert [row[0] for row in per_class["data"]] == ["fresh", "rotten"]
    assert "true ↓ / predicted →" in confusion
    assert sorted(Path(f["path"]).suffix for f in files) == [".json", ".md"]

    model_zip = alice.predict(job_id, api_name="/download_model")
    archive = Path(model_zip["path"] if isinstance(model_zip, dict) else model_zip)
    if not archive.exists():  # download_files=False hands back the server's path: fetch it like a browser would
        archive = tmp_path / "model.zip"
        status, _ = http("GET", model_zip["url"], user="alice")
        assert status == 200
    with zipfile.ZipFile(archive) as opened:
        assert any(name.endswith("config.json") for name in opened.namelist())

    message, shares, _ = alice.predict(job_id, api_name="/create_share")
    link = message.split("](")[1].split(")")[0]
    token = link.rsplit("/", 1)[1]
    assert http("GET", link)[0] == 200  # no login needed
    assert http("GET", f"{server.url}/demo/{token}")[0] == 200
    with pytest.raises(AppError, match="not one of your active links"):
        bob.predict(token, api_name="/revoke_share")
    alice.predict(token, api_name="/revoke_share")
    assert http("GET", f"{server.url}/demo/{token}")[0] == 404

    dataset = upload(alice, FIXTURES / "reviews.csv")
    message, evaluation_id = alice.predict(job_id, dataset, "review_body", "verdict", api_name="/evaluate_job")
    evaluation_id = value(evaluation_id)
    assert "Evaluation queued" in message, message
    evaluation = wait_finished(server, evaluation_id)
    assert evaluation["status"] == "succeeded", evaluation
    table, _ = alice.predict([job_id, evaluation_id], api_name="/compare_runs")
    assert table["headers"][1:] == [job_id[:8], evaluation_id[:8]]
    rows = {row[0]: row[1:] for row in table["data"]}
    assert set(rows) >= {"Macro F1", "F1 · fresh", "F1 · rotten"}
