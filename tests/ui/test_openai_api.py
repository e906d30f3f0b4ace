"""The OpenAI-compatible routes of a really running `playground serve`, called as OpenAI clients and curl call them:
chat completions whole and streamed, the model list, /v1/classify and /v1/tag on messy input, and every request
limit with its 4xx and message. Auth and API tokens are in test_api_tokens.py."""

from __future__ import annotations

import json
import math

import httpx
import openai
import pytest

from tests.ui.conftest import USERS, Server

NO_JOB = "0123456789abcdef"  # an id no job has
QUESTION = [
    {"role": "system", "content": "You answer questions from Quillmate users. Keep answers short."},
    {"role": "user", "content": "How do I export my notes?"},
]


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def post(server: Server, path: str, body: dict, *, as_user: str = "alice") -> httpx.Response:
    """POST JSON to the server with HTTP basic auth, as curl would."""
    return httpx.post(f"{server.url}{path}", json=body, auth=(as_user, USERS[as_user]), timeout=300)


def error_of(response: httpx.Response, status: int) -> dict:
    """The OpenAI-shaped error of a response, checked for its status and its four fields."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    return error


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    response = httpx.post(f"{server.url}/api/tokens", auth=("alice", USERS["alice"]), json={"name": "tests"})
    assert response.status_code == 201, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def alice(server: Server, token: str) -> openai.OpenAI:
    """The openai client as alice: her API token is its api_key."""
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0, timeout=300)


LIMITS = [
    ("/v1/classify", {"input": ["a"] * 1001}, 400, "input holds 1001 texts; the limit is 1000 per request", "input"),
    ("/v1/tag", {"input": "é" * 20_001}, 400, "input[0] is 20001 characters; the limit is 20000 per text", "input"),
    (
        "/v1/classify",
        {"input": ["x" * 20_000] * 11},
        413,
        "input holds 220000 characters in all; the limit is 200000 per request",
        "input",
    ),
    ("/v1/tag", {"input": []}, 400, "input is an empty list", "input"),
    (
        "/v1/chat/completions",
        {"messages": [user("hi")] * 101},
        400,
        "messages holds 101 messages; the limit is 100 per conversation",
        "messages",
    ),
    (
        "/v1/chat/completions",
        {"messages": [user("hi"), user("字" * 20_001)]},
        400,
        "messages[1] is 20001 characters; the limit is 20000 per message",
        "messages[1].content",
    ),
    (
        "/v1/chat/completions",
        {"messages": [user("y" * 19_000)] * 11},
        413,
        "messages holds 209000 characters in all; the limit is 200000 per request",
        "messages",
    ),
    (
        "/v1/chat/completions",
        {"messages": [user("hi")], "max_tokens": 1025},
        400,
        "max_tokens is 1025; the limit is 1024 tokens per reply",
        "max_tokens",
    ),
    (
        "/v1/chat/completions",
        {"messages": [user("hi")], "max_completion_tokens": 5000},
        400,
        "max_completion_tokens is 5000; the limit is 1024 tokens per reply",
        "max_completion_tokens",
    ),
    ("/v1/chat/completions", {"messages": [user("hi")], "n": 3}, 400, "n is 3; this server gives one reply", "n"),
    ("/v1/chat/completions", {"messages": [user("hi")], "stop": list("abcde")}, 400, "the limit is 4", "stop"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages is empty", "messages"),
    ("/v1/chat/completions", {"messages": [user("hi")], "tools": [{"type": "function"}]}, 400, "'tools'", "tools"),
]


@pytest.mark.parametrize(("path", "body", "status", "message", "param"), LIMITS, ids=lambda v: str(v)[:40])
def test_each_limit_gets_its_4xx_naming_the_limit(server: Server, path, body, status, message, param):
    # The limits are checked before the model is looked up: NO_JOB would otherwise answer 404.
    error = error_of(post(server, path, {"model": NO_JOB, **body}), status)
    assert message in error["message"] and error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_limits_count_characters_not_bytes_and_a_huge_body_gets_413_in_the_openai_shape(server: Server):
    chinese = post(server, "/v1/chat/completions", {"model": NO_JOB, "messages": [user("字" * 20_000)]})
    assert error_of(chinese, 404)["code"] == "model_not_found"  # 60 kB of UTF-8, but 20000 characters: allowed
    huge = httpx.post(
        f"{server.url}/v1/classify",
        content=json.dumps({"model": NO_JOB, "input": ["z" * 100_000] * 30}),
        headers={"Content-Type": "application/json"},
        auth=("alice", USERS["alice"]),
        timeout=60,
    )
    error = error_of(huge, 413)
    assert "2 MB limit" in error["message"] and "PLAYGROUND_MAX_BODY_MB" in error["message"]


def test_the_openai_client_raises_its_own_errors_for_unknown_models_and_bad_requests(alice: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as caught:
        alice.chat.completions.create(model=NO_JOB, messages=[user("hi")])
    assert caught.value.code == "model_not_found" and NO_JOB in caught.value.message
    with pytest.raises(openai.NotFoundError, match="VARIANT one of bf16, int8, onnx, pruned"):
        alice.chat.completions.create(model=f"{NO_JOB}@fp4", messages=[user("hi")])
    with pytest.raises(openai.NotFoundError, match=NO_JOB):  # a well-formed variant of a job that does not exist
        alice.chat.completions.create(model=f"{NO_JOB}@int8", messages=[user("hi")])
    with pytest.raises(openai.BadRequestError, match="n=1"):
        alice.chat.completions.create(model=NO_JOB, messages=[user("hi")], n=2)
    with pytest.raises(openai.BadRequestError, match="messages.0.role"):
        alice.chat.completions.create(model=NO_JOB, messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}])
    with pytest.raises(openai.NotFoundError):
        alice.models.retrieve(NO_JOB)
    headers = {**alice.auth_headers, "Content-Type": "application/json"}
    error = error_of(httpx.post(f"{alice.base_url}classify", content=b"{oops", headers=headers), 400)
    assert error["message"].startswith("the body is not valid JSON")
    error = error_of(httpx.post(f"{alice.base_url}classify", content=b"input=hi", headers=alice.auth_headers), 400)
    assert error["message"] == "send a JSON object as the body, with 'Content-Type: application/json'"
    for path in ("/v1/classify", "/v1/tag"):
        assert error_of(post_client(alice, path, {"model": NO_JOB, "input": "hi"}), 404)["code"] == "model_not_found"


def post_client(client: openai.OpenAI, path: str, body: dict) -> httpx.Response:
    """POST to the server with the client's token, for the routes the openai package has no method for."""
    url = f"{str(client.base_url).rstrip('/').removesuffix('/v1')}{path}"
    return httpx.post(url, json=body, headers=client.auth_headers, timeout=300)


@pytest.mark.slow
def test_a_chat_reply_streams_in_pieces_that_make_the_whole_reply(alice: openai.OpenAI, chat_job: dict):
    job_id = chat_job["id"]
    whole = alice.chat.completions.create(model=job_id, messages=QUESTION, temperature=0, max_tokens=32)
    assert (whole.object, whole.model) == ("chat.completion", job_id) and whole.id.startswith("chatcmpl-")
    (choice,) = whole.choices
    reply = choice.message.content
    assert choice.message.role == "assistant" and reply.strip() == reply and len(reply.split()) >= 3
    usage = whole.usage
    assert usage.prompt_tokens > 10 and 1 <= usage.completion_tokens <= 32
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert choice.finish_reason == ("length" if usage.completion_tokens == 32 else "stop")

    chunks = list(
        alice.chat.completions.create(
            model=job_id,
            messages=QUESTION,
            temperature=0,
            max_tokens=32,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert {chunk.model for chunk in chunks} == {job_id} and len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(pieces) > 3 and "".join(pieces) == reply  # piece by piece, and the same greedy reply
    ends = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert ends[:-1] == [None] * (len(ends) - 1) and ends[-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == usage.completion_tokens


@pytest.mark.slow
def test_the_event_stream_is_plain_server_sent_events_ending_in_done(server: Server, chat_job: dict):
    body = {"model": chat_job["id"], "messages": QUESTION, "stream": True, "max_tokens": 2, "temperature": 0}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, auth=("alice", USERS["alice"]), timeout=300
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events[:-1])
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"  # two tokens: cut short
    assert "usage" not in chunks[-1]  # only with stream_options.include_usage, as OpenAI does


@pytest.mark.slow
def test_stop_strings_cut_the_reply_and_a_seed_repeats_a_sampled_one(alice: openai.OpenAI, chat_job: dict):
    job_id = chat_job["id"]
    greedy = alice.chat.completions.create(model=job_id, messages=QUESTION, temperature=0, max_tokens=32)
    reply = greedy.choices[0].message.content
    stop = reply.split()[2]
    cut = alice.chat.completions.create(model=job_id, messages=QUESTION, temperature=0, max_tokens=32, stop=[stop])
    assert cut.choices[0].message.content == reply[: reply.index(stop)].rstrip()
    assert cut.choices[0].finish_reason == "stop"
    streamed = alice.chat.completions.create(
        model=job_id, messages=QUESTION, temperature=0, max_tokens=32, stop=stop, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == cut.choices[0].message.content

    def sampled(seed: int) -> str:
        answer = alice.chat.completions.create(
            model=job_id, messages=QUESTION, temperature=1.0, top_p=1.0, max_tokens=16, seed=seed
        )
        return answer.choices[0].message.content

    assert sampled(11) == sampled(11)


@pytest.mark.slow
def test_a_conversation_longer_than_the_models_context_is_refused(alice: openai.OpenAI, chat_job: dict):
    long = [user("notes sync export " * 1000) for _ in range(10)]  # 180000 characters: within the limits
    with pytest.raises(openai.BadRequestError) as caught:
        alice.chat.completions.create(model=chat_job["id"], messages=long, max_tokens=16)
    assert caught.value.code == "context_length_exceeded" and "tokens in all" in caught.value.message


@pytest.mark.slow
def test_the_model_list_has_every_finished_job_with_its_task(
    alice: openai.OpenAI, server: Server, trained_job: dict, ner_job: dict, chat_job: dict
):
    cards = {card.id: card for card in alice.models.list()}
    for job in (trained_job, ner_job, chat_job):
        card = cards[job["id"]]
        assert (card.object, card.owned_by, card.task) == ("model", "alice", job["spec"]["task"])
        assert card.created > 1_700_000_000
    assert alice.models.retrieve(chat_job["id"]).task == chat_job["spec"]["task"]
    response = httpx.get(f"{server.url}/v1/models", auth=("bob", USERS["bob"]), timeout=60)
    assert response.status_code == 200 and not {card["id"] for card in response.json()["data"]} & set(cards)


@pytest.mark.slow
def test_a_model_of_another_task_is_sent_to_its_own_endpoint(
    alice: openai.OpenAI, trained_job: dict, ner_job: dict, chat_job: dict
):
    with pytest.raises(openai.BadRequestError, match="use /v1/classify for it") as caught:
        alice.chat.completions.create(model=trained_job["id"], messages=[user("hi")])
    assert caught.value.code == "wrong_endpoint"
    with pytest.raises(openai.BadRequestError, match="use /v1/tag for it"):
        alice.chat.completions.create(model=ner_job["id"], messages=[user("hi")])
    cases = [("/v1/classify", chat_job, "/v1/chat/completions"), ("/v1/classify", ner_job, "/v1/tag")]
    cases += [("/v1/tag", trained_job, "/v1/classify"), ("/v1/tag", chat_job, "/v1/chat/completions")]
    for path, job, right in cases:
        error = error_of(post_client(alice, path, {"model": job["id"], "input": "hi"}), 400)
        assert f"use {right} for it, not {path}" in error["message"] and error["param"] == "model"


@pytest.mark.slow
def test_someone_elses_model_answers_404_everywhere(server: Server, trained_job: dict, chat_job: dict):
    chat = post(server, "/v1/chat/completions", {"model": chat_job["id"], "messages": [user("hi")]}, as_user="bob")
    assert error_of(chat, 404)["code"] == "model_not_found"
    classify = post(server, "/v1/classify", {"model": trained_job["id"], "input": "hi"}, as_user="bob")
    assert error_of(classify, 404)["message"] == f"no model {trained_job['id']!r}; GET /v1/models lists yours"
    model = httpx.get(f"{server.url}/v1/models/{chat_job['id']}", auth=("bob", USERS["bob"]), timeout=60)
    assert error_of(model, 404)["code"] == "model_not_found"


MESSY = [
    "这部电影非常好看，演员也很出色。",
    "Très décevant, à éviter — vraiment ennuyeux.",
    "",
    "A tender, funny film about naïve café owners. " * 300,  # 13800 characters: the model reads its start
]


@pytest.mark.slow
def test_classify_answers_each_messy_text_like_the_rest_api(server: Server, trained_job: dict):
    job_id = trained_job["id"]
    response = post(server, "/v1/classify", {"model": job_id, "input": MESSY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["model"]) == ("list", job_id)
    assert [row["index"] for row in body["data"]] == [0, 1, 2, 3]
    for row in body["data"]:
        assert set(row["scores"]) == {"fresh", "rotten"} and row["label"] == max(row["scores"], key=row["scores"].get)
        assert row["score"] == row["scores"][row["label"]]
        assert math.isclose(sum(row["scores"].values()), 1, abs_tol=1e-4)
    rest = post(server, f"/api/models/{job_id}/predict", {"texts": MESSY}).json()["predictions"]
    assert [row["label"] for row in body["data"]] == [row["label"] for row in rest]
    one = post(server, "/v1/classify", {"model": job_id, "input": MESSY[1]}).json()["data"]
    assert len(one) == 1 and one[0]["label"] == body["data"][1]["label"]
    assert one[0]["score"] == pytest.approx(body["data"][1]["score"], abs=1e-2)  # batched apart, maybe in bf16


@pytest.mark.slow
def test_tag_finds_entities_with_offsets_into_each_messy_text(server: Server, ner_job: dict):
    texts = ["John Smith flew from London to Paris to meet Google engineers.", "张伟在北京工作。", "", MESSY[3]]
    response = post(server, "/v1/tag", {"model": ner_job["id"], "input": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == ner_job["id"] and [row["index"] for row in body["data"]] == [0, 1, 2, 3]
    for text, row in zip(texts, body["data"], strict=True):
        for span in row["entities"]:
            assert text[span["start"] : span["end"]] == span["text"] and span["type"] and 0 <= span["score"] <= 1
    assert {span["text"] for span in body["data"][0]["entities"]} & {"John Smith", "London", "Paris", "Google"}
    assert body["data"][2]["entities"] == []
    rest = post(server, f"/api/models/{ner_job['id']}/predict", {"texts": texts}).json()["entities"]
    assert [[(s["start"], s["end"], s["type"]) for s in row["entities"]] for row in body["data"]] == [
        [(s["start"], s["end"], s["type"]) for s in spans] for spans in rest
    ]
