"""`playground datasets list | add | delete`: the uploads of the Data tab and /api/datasets, from the command line.

Wired into ui/cli.py with `add_dataset_commands(sub)`. Every action works on one owner's uploads: --owner, else
PLAYGROUND_OWNER or the login name, as for `playground submit`. `add` keeps a file the way the Data tab does (disk
quota, artifact store) and `delete` is the deletion of the Data tab and of DELETE /api/datasets/ID. User errors are
ValueError (DataError for a file that cannot be read), printed by ui/cli.py as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.cli_jobs import confirm, default_owner, local_time

if TYPE_CHECKING:
    from ui.context import AppContext
    from worker.uploads import Dataset


def add_dataset_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `datasets` (list | add | delete) on the CLI's sub-parsers."""
    datasets = subparsers.add_parser("datasets", help="list, add and delete uploaded data files (the Data tab's)")
    actions = datasets.add_subparsers(title="actions", metavar="ACTION")
    datasets.set_defaults(handler=_cmd_list, owner=None, json=False)

    listing = actions.add_parser("list", help="an owner's uploads, newest first (the default action)")
    _add_owner(listing)
    listing.add_argument("--json", action="store_true", help="print the dataset records as JSON")
    listing.set_defaults(handler=_cmd_list)

    add = actions.add_parser(
        "add", help="keep a data file as an upload, as the Data tab does (the disk quota applies)"
    )
    add.add_argument("file", type=Path, metavar="FILE", help="CSV, TSV, JSON, JSONL, Parquet or CoNLL file")
    add.add_argument("--name", help="the name it is listed under (default: the file's own name)")
    _add_owner(add)
    add.add_argument("--json", action="store_true", help="print the new dataset's record as JSON")
    add.set_defaults(handler=_cmd_add)

    delete = actions.add_parser(
        "delete", help="delete an upload (its file, then its record); not while a job reads it"
    )
    delete.add_argument("dataset_id", metavar="ID", help="dataset id, as `playground datasets list` prints it")
    _add_owner(delete)
    delete.add_argument("--yes", action="store_true", help="delete without asking first")
    delete.add_argument("--json", action="store_true", help="print the deleted dataset's record as JSON")
    delete.set_defaults(handler=_cmd_delete)


def _add_owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", help="whose uploads (default PLAYGROUND_OWNER or your user name)")


@contextmanager
def _context() -> Iterator[AppContext]:
    # The web app's own context: the same stores, disk quota and artifact store as the Data tab and the REST API.
    from ui.context import AppContext

    ctx = AppContext()
    try:
        yield ctx
    finally:
        ctx.close()


def _cmd_list(args: argparse.Namespace) -> int:
    owner = args.owner or default_owner()
    with _context() as ctx:
        datasets = ctx.datasets.list(owner)
    if args.json:
        print(json.dumps([dataset_record(d) for d in datasets], indent=2, ensure_ascii=False))
    elif not datasets:
        print(f"{owner} has no uploaded datasets; add one with `playground datasets add FILE`")
    else:
        print(format_datasets_table(datasets))
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    from engine.paths import max_upload_bytes
    from worker.records import utcnow

    owner, path = args.owner or default_owner(), Path(args.file).expanduser()
    if not path.is_file():
        raise ValueError(f"no file {args.file}; pass the path of a CSV, TSV, JSON, JSONL, Parquet or CoNLL file")
    limit = max_upload_bytes()
    if path.stat().st_size > limit:  # as over REST: the largest file the server takes
        raise ValueError(f"{path.name} is larger than the {limit // 2**20} MB limit (PLAYGROUND_MAX_UPLOAD_MB)")
    started = utcnow()
    with _context() as ctx:
        dataset, _ = ctx.datasets.register(owner, path, args.name or path.name)
    if args.json:
        print(json.dumps(dataset_record(dataset), indent=2, ensure_ascii=False))
        return 0
    kept = "added" if dataset.created_at >= started else f"already kept (since {local_time(dataset.created_at)})"
    print(f"{kept}: dataset {dataset.id} {dataset.name} of {owner}, {_count(dataset)}, {_size(dataset.size_bytes)}")
    print(f"  file {dataset.path}")  # the operator's machine: the path is what `playground submit` specs name
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    owner = args.owner or default_owner()
    with _context() as ctx:
        dataset = ctx.datasets.get(args.dataset_id.strip(), owner)
        if dataset is None:
            raise _not_found(args.dataset_id, owner)
        question = f"delete dataset {dataset.id} {dataset.name} ({_count(dataset)}) of {owner} and its file? [y/N] "
        if not args.yes and not confirm(question):
            print("nothing deleted")
            return 1
        try:
            ctx.delete_dataset(dataset.id, owner)  # the Data tab's and REST's: refused while a job reads the file
        except LookupError as exc:  # deleted by someone else meanwhile
            raise _not_found(args.dataset_id, owner) from exc
    text = f"dataset {dataset.id} {dataset.name} deleted with its file"
    print(json.dumps(dataset_record(dataset), ensure_ascii=False) if args.json else text)
    return 0


def _not_found(dataset_id: str, owner: str) -> ValueError:
    return ValueError(
        f"no dataset {dataset_id!r} of {owner}; `playground datasets list` shows their ids "
        "(add --owner NAME for another user's uploads)"
    )


def dataset_record(dataset: Dataset) -> dict[str, Any]:
    """The REST API's record of a dataset, with its owner and file for the operator who runs the command."""
    return {**dataset.to_dict(), "owner": dataset.owner, "path": str(dataset.path)}


def format_datasets_table(datasets: list[Dataset]) -> str:
    """An aligned table of datasets for the terminal; the name last, as it may hold any script."""
    rows = [("ID", "ROWS", "SIZE", "FORMAT", "CREATED", "NAME")]
    for d in datasets:
        rows.append((d.id, _count(d), _size(d.size_bytes), d.format or "-", local_time(d.created_at), d.name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows
    )


def _count(dataset: Dataset) -> str:
    return f"{dataset.rows} {dataset.record_unit}" if dataset.rows is not None else f"? {dataset.record_unit}"


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
