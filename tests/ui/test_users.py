"""Users of a shared server: scrypt-hashed passwords in the auth file, admins, and `playground users add | list`."""

from __future__ import annotations

import io
import logging
import stat
import uuid
from pathlib import Path

import pytest

from ui.cli import main
from ui.users import Users, add_user, hash_password, is_hash, parse_hash, verify_password


def test_a_hash_is_salted_versioned_and_verifies_only_its_password():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$scrypt$v=1,n=16384,r=8,p=5$") and ":" not in first
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first) and not verify_password("", first)
    n, r, p, salt, key = parse_hash(first)
    assert (n, r, p, len(salt), len(key)) == (16384, 8, 5, 16, 32)
    cheap = hash_password("pw", n=2**10, r=8, p=1)  # the cost travels in the hash
    assert verify_password("pw", cheap) and parse_hash(cheap)[:3] == (1024, 8, 1)
    for broken, match in [
        ("$scrypt$v=2,n=16384,r=8,p=5$c2FsdHNhbHQ$a2V5", "version 2 is unknown"),
        ("$scrypt$v=1,n=1000,r=8,p=5$c2FsdHNhbHQ$a2V5", "out of range"),
        ("$scrypt$v=1,n=16384$c2FsdHNhbHQ$a2V5", "malformed"),
        ("$scrypt$nonsense", "must read"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_hash(broken)
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_an_auth_file_mixes_hashed_admin_and_plain_lines_and_warns_about_the_plain_ones(tmp_path: Path, caplog):
    auth = tmp_path / "users.txt"
    alice, bob = hash_password("alice pw"), hash_password("bob:pw")
    auth.write_text(f"# team\nalice:{alice}:admin\n\nbob:{bob}\ncarol:plain:with:colons\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="ui.users"):
        users = Users.parse(["dave:$x"], auth, admins=["carol"])
    assert set(users.passwords) == {"alice", "bob", "carol", "dave"} and users.admins == {"alice", "carol"}
    assert users.check("alice", "alice pw") and users.check("alice", "alice pw")  # the second from the cache
    assert users.check("bob", "bob:pw") and users.check("carol", "plain:with:colons") and users.check("dave", "$x")
    assert not users.check("alice", "bob:pw") and not users.check("bob", "alice pw") and not users.check("eve", "x")
    assert not users.check("alice", None) and not users.check(None, "alice pw")
    assert users.is_admin("alice") and not users.is_admin("bob") and not users.is_admin(None)
    [warning] = [record.getMessage() for record in caplog.records]
    assert "line 5" in warning and "'carol' is plain text" in warning and "playground users add carol" in warning

    with pytest.raises(ValueError, match="--admin mallory: there is no such user"):
        Users.parse([], auth, admins=["mallory"])
    auth.write_text(f"alice:{alice}:boss\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: after the hash only ':admin' may follow"):
        Users.parse([], auth)
    auth.write_text("alice:$scrypt$v=1,n=3,r=8,p=1$c2FsdHNhbHQ$a2V5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: scrypt cost"):
        Users.parse([], auth)


def test_add_user_writes_a_hashed_line_refuses_duplicates_and_replaces_in_place(tmp_path: Path):
    auth = tmp_path / "conf" / "users.txt"
    assert add_user(auth, "alice", "first", admin=True) is False
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600  # a new file is its owner's only
    auth.write_text(auth.read_text(encoding="utf-8") + "# keep me\nbob:plain\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'alice' is already in .*--replace"):
        add_user(auth, "alice", "second")
    assert add_user(auth, "alice", "second", replace=True) is True
    lines = auth.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("alice:$scrypt$") and not lines[0].endswith(":admin")  # replaced, now not an admin
    assert lines[1:] == ["# keep me", "bob:plain"]
    users = Users.parse([], auth)
    assert users.check("alice", "second") and not users.check("alice", "first") and users.admins == frozenset()
    assert sorted(p.name for p in auth.parent.iterdir()) == ["users.txt"]  # no temp file left behind
    for bad in ("has space", "a:b", "#x", ""):
        with pytest.raises(ValueError, match="user name"):
            add_user(auth, bad, "pw")


def test_the_users_cli_adds_from_stdin_and_lists_without_secrets(tmp_path: Path, monkeypatch, capsys):
    auth = tmp_path / "users.txt"
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pw\n"))
    assert main(["users", "add", "alice", "--admin", "--auth-file", str(auth), "--password-stdin"]) == 0
    assert "added alice (admin)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("other\n"))
    assert main(["users", "add", "alice", "--auth-file", str(auth), "--password-stdin"]) == 2
    assert "already in" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["users", "add", "bob", "--auth-file", str(auth), "--password-stdin"]) == 2
    assert "password is empty" in capsys.readouterr().err
    auth.write_text(auth.read_text(encoding="utf-8") + "carol:plain\n", encoding="utf-8")
    assert main(["users", "list", "--auth-file", str(auth)]) == 0
    listed = capsys.readouterr().out
    assert "alice  admin  hashed" in listed and "carol  user   PLAIN TEXT" in listed
    assert "s3cret" not in listed and "$scrypt$" not in listed and "plain\n" not in listed
    assert Users.parse([], auth).check("alice", "s3cret pw")


def test_the_web_app_lets_a_hashed_user_in_by_rest_and_by_the_login_page(tmp_path: Path):
    from fastapi.testclient import TestClient

    from ui.context import AppContext
    from ui.server import create_app
    from worker.settings import Settings

    auth = tmp_path / "users.txt"
    add_user(auth, "alice", "hashed secret", admin=True)
    users = Users.parse([], auth)
    assert is_hash(users.passwords["alice"])
    ctx = AppContext(Settings(home=tmp_path / "home", queue=f"test-{uuid.uuid4().hex[:8]}"), users)
    try:
        with TestClient(create_app(ctx)) as client:
            assert client.get("/api/jobs", auth=("alice", "hashed secret")).status_code == 200
            assert client.get("/api/jobs", auth=("alice", "wrong")).status_code == 401
            assert client.get("/api/jobs?all=true", auth=("alice", "hashed secret")).status_code == 200  # admin
            assert client.post("/login", data={"username": "alice", "password": "hashed secret"}).status_code == 200
            assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code >= 400
    finally:
        ctx.close()


def test_serve_takes_admins_by_flag_and_refuses_an_admin_who_is_not_a_user(tmp_path: Path):
    from ui.cli import build_parser

    auth = tmp_path / "users.txt"
    add_user(auth, "alice", "a", admin=True)
    add_user(auth, "bob", "b")
    args = build_parser().parse_args(["serve", "--auth-file", str(auth), "--admin", "bob", "--auth", "carol:c"])
    assert Users.parse(args.auth, args.auth_file, args.admin).admins == {"alice", "bob"}
    assert build_parser().parse_args(["serve"]).admin is None
    with pytest.raises(ValueError, match="--admin dave: there is no such user; the users are alice, bob"):
        Users.parse(None, auth, ["dave"])
    with pytest.raises(ValueError, match="the users are none"):
        Users.parse(None, None, ["dave"])
