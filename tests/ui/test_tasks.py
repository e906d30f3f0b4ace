"""Token classification and chat through a real `playground serve`: REST, gradio_client and share pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.ui.conftest import FIXTURES, USERS, Server


@pytest.mark.slow
def test_a_tagger_trained_through_rest_returns_spans_that_match_the_text(server: Server, ner_job: dict):
    job_id = ner_job["id"]
    status, report = server.api("GET", f"/api/jobs/{job_id}/report")
    assert status == 200, report
    assert report["task"] == "token-classification"
    assert set(report["labels"]) == {"LOC", "MISC", "ORG", "PER"}
    assert report["metrics"]["micro_f1"] > 0.3  # two epochs on 120 sentences learn the frequent entities

    texts = ["Maria Schmidt flew from Berlin to Madrid with Lufthansa.", "Nothing to see here."]
    status, body = server.api("POST", f"/api/models/{job_id}/predict", body={"texts": texts})
    assert status == 200, body
    assert body["task"] == "token-classification"
    spans = body["entities"]
    assert len(spans) == 2
    assert spans[0], "the tagger found no entity in a sentence full of them"
    for text, found in zip(texts, spans, strict=True):
        for span in found:
            assert text[span["start"] : span["end"]] == span["text"]
            assert span["type"] in report["labels"]
            assert 0.0 <= span["score"] <= 1.0

    status, body = server.api(
        "POST", f"/api/models/{job_id}/predict", body={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 422 and "send 'text' or 'texts'" in body["detail"]


@pytest.mark.slow
def test_a_chat_model_trained_through_rest_answers_messages(server: Server, chat_job: dict):
    job_id = chat_job["id"]
    status, report = server.api("GET", f"/api/jobs/{job_id}/report")
    assert status == 200, report
    assert report["task"] == "chat"
    metrics = report["metrics"]
    assert metrics["loss"] > 0 and metrics["perplexity"] > 1
    assert report["generations"] and {"prompt", "reference", "base", "fine_tuned"} <= set(report["generations"][0])
    messages = [{"role": "user", "content": "How do I export my notes?"}]
    body = {"messages": messages, "max_new_tokens": 24}
    status, answer = server.api("POST", f"/api/models/{job_id}/predict", body=body)
    assert status == 200, answer
    assert answer["task"] == "chat" and answer["reply"].strip()
    status, answer = server.api("POST", f"/api/models/{job_id}/predict", body={"text": "hello"})
    assert status == 422 and "send 'messages'" in answer["detail"]


@pytest.fixture(scope="module")
def alice(server: Server) -> Client:
    return Client(server.url, auth=("alice", USERS["alice"]), verbose=False, download_files=False)


def value(output):
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def test_a_conll_upload_is_detected_and_summarised_as_ner(alice: Client):
    dataset, _, _, _, summary, chart = alice.predict(
        handle_file(str(FIXTURES / "ner" / "en.conll")), api_name="/upload_dataset"
    )
    assert "Ready to train a tagger" in summary and "283 entities of 4 types" in summary
    assert {row[0]: row[1] for row in chart["data"]} == {"LOC": 95, "MISC": 54, "ORG": 65, "PER": 69}
    summary, _ = alice.predict(value(dataset), None, None, "chat", api_name="/check_dataset")
    assert "can't be used for training yet" in summary  # a CoNLL file holds no conversations


@pytest.mark.slow
def test_tag_report_file_and_share_a_tagger_through_the_app(alice: Client, server: Server, ner_job: dict, tmp_path):
    job_id = ner_job["id"]
    text = "Maria Schmidt flew from Berlin to Madrid with Lufthansa."
    pieces = alice.predict(job_id, text, api_name="/tag")
    pieces = pieces["value"] if isinstance(pieces, dict) else pieces
    assert "".join(p["token"] for p in pieces) == text
    assert any(p["class_or_confidence"] for p in pieces)

    headline, per_class, confusion, errors, _, _ = alice.predict(job_id, api_name="/show_report")
    assert "Micro F1 (entities)" in headline and job_id[:8] in headline
    assert [row[0] for row in per_class["data"]] == ["LOC", "MISC", "ORG", "PER"]
    assert ">O</th>" in confusion
    texts = [part for part in alice.predict(job_id, api_name="/show_report_parts") if isinstance(part, str)]
    assert any("Kind of error" in text or "No entity errors" in text for text in texts)

    texts = tmp_path / "news.csv"
    texts.write_text(f"id,sentence\n1,{text}\n2,Nothing here.\n", encoding="utf-8")
    output, preview = alice.predict(job_id, handle_file(str(texts)), "sentence", api_name="/predict_file")
    assert Path(output["path"] if isinstance(output, dict) else output).name.endswith(".jsonl")
    assert preview["headers"] == ["id", "sentence", "entities"]

    message, *_ = alice.predict(job_id, api_name="/create_share")
    link = message.split("](")[1].split(")")[0]
    path = link[link.index("/demo/") :]
    status, page = _form(server, path, text)
    assert status == 200 and ("entities found" in page or "entity found" in page)
    assert '<mark class="entity"' in page and "Berlin" in page
    assert "en.conll" not in page  # the training file is named only when its owner says so
    message, *_ = alice.predict(job_id, True, api_name="/create_share")
    link = message.split("](")[1].split(")")[0]
    status, page = _form(server, link[link.index("/demo/") :], text)
    assert status == 200 and "on <em>en.conll</em>" in page


@pytest.mark.slow
def test_chat_streams_compares_with_the_base_model_and_shares(alice: Client, server: Server, chat_job: dict):
    job_id = chat_job["id"]
    result = alice.predict(job_id, "How do I export my notes?", [], [], "", 0.0, 1.0, 16, True, api_name="/chat")
    message, conversation, base_conversation = result
    assert message == ""
    assert [turn["role"] for turn in conversation] == ["user", "assistant"]
    assert [turn["role"] for turn in base_conversation] == ["user", "assistant"]
    assert conversation[1]["content"] and base_conversation[1]["content"]

    headline, *_ = alice.predict(job_id, api_name="/show_report")
    assert "Base model (not fine-tuned)" in headline and "Perplexity" in headline
    tables = [
        part
        for part in alice.predict(job_id, api_name="/show_report_parts")
        if isinstance(part, dict) and "headers" in part
    ]
    generations = next(t for t in tables if t["headers"] == ["Prompt", "Reference", "Base model", "Fine-tuned"])
    assert generations["data"] and all(row[3] for row in generations["data"])

    message, *_ = alice.predict(job_id, api_name="/create_share")
    link = message.split("](")[1].split(")")[0]
    status, page = _form(server, link[link.index("/demo/") :], "How do I export my notes?")
    assert status == 200 and "<h2>Reply</h2>" in page and 'id="send"' in page


def _form(server: Server, path: str, text: str) -> tuple[int, str]:
    """POST the share page's form, as a browser without JavaScript would."""
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode({"text": text}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}{path}", data=data), timeout=120) as response:
        return response.status, response.read().decode("utf-8")
