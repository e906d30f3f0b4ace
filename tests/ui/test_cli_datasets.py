"""`playground datasets list / add / delete`, in process, on the store and data dir of `cli_env` (no worker needed).

The files are what users upload: a Windows-1252 CSV of long French reviews (quoted commas, a line break inside a
quoted field) and a UTF-8 CSV of Chinese reviews with a Chinese file name.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from tests.worker.helpers import run_subcommand, tiny_spec
from ui.cli import main
from ui.cli_datasets import add_dataset_commands
from worker.artifacts import ArtifactStore

FRENCH_ROWS = 24
CHINESE_ROWS = 30
LABELS = ("正面", "负面")

run_cli = partial(run_subcommand, add_dataset_commands)  # `playground ARGV...` with only `datasets` registered


@pytest.fixture
def french_csv(tmp_path: Path) -> Path:
    """Long accented reviews in cp1252 (’ and œ are not Latin-1), some quoted with commas and a line break."""
    rows = []
    for i in range(FRENCH_ROWS):
        text = (
            f"Critique n°{i} : « Très émouvant », l’œuvre d’un réalisateur déjà célèbre ; on ressort du cinéma "
            f"ébloui, même si la fin, trop appuyée, déçoit un peu. Les décors d’hôtel à Noël sont réussis, "
            f"l’équipe à l’écran est généreuse et la musique de Gaëlle Müller ajoute beaucoup à l’ensemble."
        )
        if i % 5 == 0:
            text += "\nSuite de l’avis : à revoir en version originale."  # a line break inside a quoted field
        rows.append(f'"{text}",{"positif" if i % 2 else "négatif"}\n')
    path = tmp_path / "critiques été.csv"
    path.write_bytes(("avis,étiquette\n" + "".join(rows)).encode("cp1252"))
    return path


@pytest.fixture
def chinese_csv(tmp_path: Path) -> Path:
    rows = "".join(
        f"这部电影第{i}次看，剧情紧凑，演员表演自然，配乐也很动人，推荐给喜欢文艺片的朋友。,{LABELS[i % 2]}\n"
        for i in range(CHINESE_ROWS)
    )
    path = tmp_path / "影评.csv"
    path.write_text("评论,标签\n" + rows, encoding="utf-8")
    return path


def add(path: Path, capsys, *flags: str) -> dict:
    assert run_cli("datasets", "add", str(path), "--json", *flags) == 0
    return json.loads(capsys.readouterr().out)


def listed(capsys, *flags: str) -> list[dict]:
    assert run_cli("datasets", "list", "--json", *flags) == 0
    return json.loads(capsys.readouterr().out)


def test_add_then_list_shows_both_files_with_their_names_and_row_counts(
    cli_env, french_csv: Path, chinese_csv: Path, capsys
) -> None:
    assert run_cli("datasets") == 0  # the default action is list
    assert "carol has no uploaded datasets; add one with `playground datasets add FILE`" in capsys.readouterr().out

    assert run_cli("datasets", "add", str(french_csv)) == 0
    first, where = capsys.readouterr().out.splitlines()
    french = listed(capsys)[0]
    assert first.startswith(f"added: dataset {french['id']} critiques été.csv of carol, {FRENCH_ROWS} rows, ")
    assert where.strip() == f"file {french['path']}"
    assert Path(french["path"]).read_bytes() == french_csv.read_bytes()  # kept as uploaded, not re-encoded
    chinese = add(chinese_csv, capsys, "--name", "影评 2024.csv")
    assert (chinese["name"], chinese["rows"], chinese["columns"]) == ("影评 2024.csv", CHINESE_ROWS, ["评论", "标签"])

    records = listed(capsys)
    assert [(d["id"], d["name"], d["rows"]) for d in records] == [
        (chinese["id"], "影评 2024.csv", CHINESE_ROWS),  # newest first
        (french["id"], "critiques été.csv", FRENCH_ROWS),
    ]
    assert french["columns"] == ["avis", "étiquette"] and {d["owner"] for d in records} == {"carol"}
    assert run_cli("datasets", "list") == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "ROWS", "SIZE", "FORMAT", "CREATED", "NAME"]
    assert lines[0].startswith(chinese["id"]) and lines[0].endswith("影评 2024.csv")
    assert f"{FRENCH_ROWS} rows" in lines[1] and lines[1].endswith("critiques été.csv")

    assert listed(capsys, "--owner", "dave") == []  # uploads are per owner
    assert run_cli("datasets", "add", str(french_csv)) == 0  # the same file again is the one already kept
    assert capsys.readouterr().out.startswith("already kept (since ") and len(listed(capsys)) == 2


def test_delete_asks_on_a_terminal_refuses_a_script_without_yes_and_removes_record_and_file(
    cli_env, chinese_csv: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = add(chinese_csv, capsys)
    path = Path(dataset["path"])
    with pytest.raises(ValueError, match="pass --yes"):  # a script is not asked: stdin is no terminal here
        run_cli("datasets", "delete", dataset["id"])
    assert path.is_file() and [d["id"] for d in listed(capsys)] == [dataset["id"]]
    assert main(["datasets", "delete", dataset["id"]]) == 2
    assert "pass --yes to delete from a script" in capsys.readouterr().err and path.is_file()

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    assert run_cli("datasets", "delete", dataset["id"]) == 1
    assert "nothing deleted" in capsys.readouterr().out and path.is_file()

    monkeypatch.setattr("builtins.input", lambda question: "y")
    assert run_cli("datasets", "delete", dataset["id"]) == 0
    assert capsys.readouterr().out.strip() == f"dataset {dataset['id']} 影评.csv deleted with its file"
    assert not path.exists() and not path.parent.exists() and listed(capsys) == []


def test_delete_yes_removes_the_record_and_the_file_and_leaves_other_uploads(
    cli_env, french_csv: Path, chinese_csv: Path, capsys
) -> None:
    french, chinese = add(french_csv, capsys), add(chinese_csv, capsys)
    assert run_cli("datasets", "delete", french["id"], "--yes", "--json") == 0
    assert json.loads(capsys.readouterr().out)["id"] == french["id"]
    assert not Path(french["path"]).exists() and not Path(french["path"]).parent.exists()
    assert [d["id"] for d in listed(capsys)] == [chinese["id"]] and Path(chinese["path"]).is_file()


def test_an_unknown_id_or_another_owners_upload_exits_2_saying_what_to_do(cli_env, chinese_csv: Path, capsys) -> None:
    assert main(["datasets", "delete", "0123456789abcdef", "--yes"]) == 2
    error = capsys.readouterr().err
    assert "error: no dataset '0123456789abcdef' of carol; `playground datasets list` shows their ids" in error
    dataset = add(chinese_csv, capsys, "--owner", "erin")
    assert main(["datasets", "delete", dataset["id"], "--yes"]) == 2  # erin's, not carol's
    assert "(add --owner NAME for another user's uploads)" in capsys.readouterr().err
    assert Path(dataset["path"]).is_file() and len(listed(capsys, "--owner", "erin")) == 1
    assert main(["datasets", "add", "no/such/file.csv"]) == 2
    assert "error: no file no/such/file.csv" in capsys.readouterr().err


def test_a_dataset_read_by_a_queued_job_is_refused_until_the_job_is_cancelled(
    cli_env, french_csv: Path, capsys
) -> None:
    from worker import api

    dataset = add(french_csv, capsys)
    job_id = api.submit(tiny_spec(Path(dataset["path"])), "carol")
    assert main(["datasets", "delete", dataset["id"], "--yes"]) == 2
    error = capsys.readouterr().err
    assert f"dataset critiques été.csv is used by job {job_id}, which is queued; wait for it to end or cancel" in error
    assert Path(dataset["path"]).is_file() and len(listed(capsys)) == 1

    api.cancel(job_id)
    assert run_cli("datasets", "delete", dataset["id"], "--yes") == 0
    assert "deleted with its file" in capsys.readouterr().out
    assert not Path(dataset["path"]).exists() and listed(capsys) == []


def test_a_file_that_could_not_be_removed_keeps_the_record_and_a_second_delete_finishes(
    cli_env, chinese_csv: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = add(chinese_csv, capsys)
    with monkeypatch.context() as patch:
        patch.setattr(ArtifactStore, "delete", lambda self, local: None)  # a store that did not remove it
        with pytest.raises(ValueError, match="could not remove the file of dataset 影评.csv; the dataset is kept"):
            run_cli("datasets", "delete", dataset["id"], "--yes")
    assert Path(dataset["path"]).is_file() and [d["id"] for d in listed(capsys)] == [dataset["id"]]

    Path(dataset["path"]).unlink()  # half done: the file gone, the record left
    assert [d["id"] for d in listed(capsys)] == [dataset["id"]]
    assert run_cli("datasets", "delete", dataset["id"], "--yes") == 0
    assert "deleted with its file" in capsys.readouterr().out
    assert listed(capsys) == [] and not Path(dataset["path"]).parent.exists()


def test_with_an_artifact_store_the_file_goes_from_it_too_and_a_copy_left_there_keeps_the_record(
    cli_env, french_csv: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_ARTIFACTS", str(tmp_path / "bucket"))  # a folder standing for a bucket
    dataset = add(french_csv, capsys)
    path = Path(dataset["path"])
    bucket = ArtifactStore.from_env(Path(cli_env["PLAYGROUND_HOME"]))
    assert bucket.exists(path) and bucket.read(path) == french_csv.read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(ArtifactStore, "_remove", lambda self, relative: None)  # the bucket did not let go of it
        with pytest.raises(ValueError, match="the dataset is kept, delete it again"):
            run_cli("datasets", "delete", dataset["id"], "--yes")
    assert not path.exists() and bucket.exists(path) and len(listed(capsys)) == 1  # half done: listed still

    assert run_cli("datasets", "delete", dataset["id"], "--yes") == 0  # a second delete finishes it
    assert "deleted with its file" in capsys.readouterr().out
    assert not bucket.exists(path) and not path.exists() and listed(capsys) == []
