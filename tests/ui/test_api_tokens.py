"""Auth of a really running server for /api and /v1 alike: HTTP basic, or an API token as a Bearer token (an OpenAI
client's api_key). Tokens are made with POST /api/tokens or `playground tokens create`, work until revoked, are kept
only as a hash; in single-user mode nothing is needed at all."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.ui.conftest import REPO, USERS, Server, server_env, start_server, stop_server


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def client(server: Server, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=api_key, max_retries=0, timeout=60)


def make_token(server: Server, user: str, name: str = "") -> dict:
    response = httpx.post(f"{server.url}/api/tokens", auth=(user, USERS[user]), json={"name": name}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    """`playground ...` on the server's own data dir, as its admin would run it."""
    command = [sys.executable, "-m", "ui.cli", *args]
    return subprocess.run(command, env=server_env(server.home), cwd=REPO, capture_output=True, text=True, timeout=120)


def test_without_credentials_or_with_a_wrong_token_the_answer_is_401_saying_how_to_make_one(server: Server):
    for path in ("/v1/models", "/api/jobs"):
        response = httpx.get(f"{server.url}{path}", timeout=60)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    error = httpx.get(f"{server.url}/v1/models", timeout=60).json()["error"]
    assert "Authorization: Bearer" in error["message"] and "playground tokens create" in error["message"]
    with pytest.raises(openai.AuthenticationError) as caught:
        client(server, "fp-not-a-real-token").models.list()
    assert "unknown or revoked" in caught.value.message and "POST /api/tokens" in caught.value.message
    wrong_password = httpx.get(f"{server.url}/v1/models", auth=("alice", "guess"), timeout=60)
    assert wrong_password.status_code == 401


def test_a_token_works_for_v1_and_api_until_revoked_and_only_a_password_makes_one(server: Server):
    made = make_token(server, "alice", "notebook")
    secret = made["token"]
    assert secret.startswith("fp-") and made["name"] == "notebook" and made["revoked"] is False
    assert client(server, secret).models.list().object == "list"
    assert httpx.get(f"{server.url}/api/jobs", headers=bearer(secret), timeout=60).status_code == 200
    listed = httpx.get(f"{server.url}/api/tokens", headers=bearer(secret), timeout=60).json()["tokens"]
    mine = next(token for token in listed if token["id"] == made["id"])
    assert "token" not in mine and secret not in str(listed) and mine["last_used_at"] is not None

    by_token = httpx.post(f"{server.url}/api/tokens", headers=bearer(secret), json={}, timeout=60)
    assert by_token.status_code == 403 and "password" in by_token.json()["detail"]
    bobs_try = httpx.delete(f"{server.url}/api/tokens/{made['id']}", auth=("bob", USERS["bob"]), timeout=60)
    assert bobs_try.status_code == 404  # someone else's token is not there for bob
    bobs = httpx.get(f"{server.url}/api/tokens?revoked=true", auth=("bob", USERS["bob"]), timeout=60).json()
    assert made["id"] not in {token["id"] for token in bobs["tokens"]}
    assert client(server, secret).models.list().object == "list"

    revoked = httpx.delete(f"{server.url}/api/tokens/{made['id']}", auth=("alice", USERS["alice"]), timeout=60)
    assert revoked.status_code == 200 and revoked.json() == {"id": made["id"], "revoked": True}
    with pytest.raises(openai.AuthenticationError, match="unknown or revoked"):
        client(server, secret).models.list()
    assert httpx.get(f"{server.url}/api/jobs", headers=bearer(secret), timeout=60).status_code == 401
    again = httpx.delete(f"{server.url}/api/tokens/{made['id']}", auth=("alice", USERS["alice"]), timeout=60)
    assert again.status_code == 404
    every = httpx.get(f"{server.url}/api/tokens?revoked=true", auth=("alice", USERS["alice"]), timeout=60).json()
    assert {token["id"]: token["revoked"] for token in every["tokens"]}[made["id"]] is True


def test_the_job_store_holds_the_tokens_hash_and_never_the_token(server: Server):
    secret = make_token(server, "alice", "hash check")["token"]
    stored = b"".join(path.read_bytes() for path in Path(server.home).glob("jobs.sqlite*"))
    assert stored, f"no SQLite job store under {server.home}"
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
    assert secret.encode() not in stored and secret[3:].encode() not in stored


def test_the_cli_makes_lists_and_revokes_a_token_the_server_accepts(server: Server):
    made = cli(server, "tokens", "create", "--user", "bob", "--name", "from the cli")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("fp-") and "\n" not in secret and "not shown again" in made.stderr
    bob = client(server, secret)
    assert bob.models.list().object == "list"
    listed = cli(server, "tokens", "list", "--user", "bob", "--json")
    (token,) = [t for t in json.loads(listed.stdout) if t["name"] == "from the cli"]
    assert token["owner"] == "bob" and secret not in listed.stdout
    assert cli(server, "tokens", "revoke", token["id"], "--user", "alice").returncode == 2  # not alice's token
    assert bob.models.list().object == "list"
    assert cli(server, "tokens", "revoke", token["id"], "--user", "bob").returncode == 0
    with pytest.raises(openai.AuthenticationError):
        bob.models.list()


def test_a_token_of_someone_who_is_not_a_user_of_the_server_opens_nothing(server: Server):
    made = cli(server, "tokens", "create", "--user", "mallory")
    assert made.returncode == 0, made.stderr
    with pytest.raises(openai.AuthenticationError):
        client(server, made.stdout.strip()).models.list()


@pytest.fixture(scope="module")
def single_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`playground serve` without --auth and without a worker: everything belongs to the local user."""
    home = tmp_path_factory.mktemp("single-user") / "home"
    home.mkdir()
    running = start_server(home, home.parent / "server.log", "--workers", "0")
    yield running
    stop_server(running)


def test_in_single_user_mode_no_credentials_are_needed_and_any_api_key_is_accepted(single_user: Server):
    assert httpx.get(f"{single_user.url}/v1/models", timeout=60).json() == {"object": "list", "data": []}
    assert client(single_user, "anything").models.list().data == []
    assert httpx.get(f"{single_user.url}/api/jobs", headers=bearer("fp-whatever"), timeout=60).status_code == 200
    with pytest.raises(openai.NotFoundError):
        client(single_user, "anything").chat.completions.create(
            model="0123456789abcdef", messages=[{"role": "user", "content": "hi"}]
        )
