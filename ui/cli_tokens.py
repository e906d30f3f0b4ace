"""`playground tokens create | list | revoke`: API tokens for the users of a server, from its own machine.

Wired into ui/cli.py with `add_token_commands(sub)`. The commands write to the job store the server reads
(PLAYGROUND_HOME / PLAYGROUND_DATABASE_URL), so whoever runs them can act for any user: they are the admin's tool;
users make their own with POST /api/tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.tokens import ApiTokenStore


def add_token_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `tokens` (create | list | revoke) on the CLI's sub-parsers."""
    tokens = subparsers.add_parser(
        "tokens", help="make, list and revoke API tokens (Authorization: Bearer ...; an OpenAI client's api_key)"
    )
    actions = tokens.add_subparsers(title="actions", metavar="ACTION")
    tokens.set_defaults(handler=lambda _args: tokens.print_help() or 2)

    create = actions.add_parser("create", help="a new token for a user; the secret is printed once, never again")
    create.add_argument("--user", required=True, help="the user the token acts for (one of the server's --auth)")
    create.add_argument("--name", default="", help="what the token is for, to tell it apart in the list")
    create.add_argument("--json", action="store_true", help="print the token record with its secret as JSON")
    create.set_defaults(handler=_cmd_create)

    listing = actions.add_parser("list", help="a user's tokens, newest first (never their secrets)")
    listing.add_argument("--user", required=True)
    listing.add_argument("--all", action="store_true", help="revoked tokens too")
    listing.add_argument("--json", action="store_true", help="print the token records as JSON")
    listing.set_defaults(handler=_cmd_list)

    revoke = actions.add_parser("revoke", help="switch a token off: it answers 401 from now on")
    revoke.add_argument("token_id", help="the token's id, from `playground tokens list`")
    revoke.add_argument("--user", required=True, help="the user the token belongs to")
    revoke.set_defaults(handler=_cmd_revoke)


def _store() -> ApiTokenStore:
    from worker.api import default_jobs
    from worker.tokens import ApiTokenStore

    store = ApiTokenStore(default_jobs().store.engine)
    store.create_schema()
    return store


def _cmd_create(args: argparse.Namespace) -> int:
    token, secret = _store().create(args.user, args.name)
    if args.json:
        print(json.dumps({**token.to_dict(), "token": secret}, indent=2, ensure_ascii=False))
        return 0
    # The secret alone on stdout, so that TOKEN=$(playground tokens create --user alice) captures just it.
    print(secret)
    print(
        f"token {token.id} for {token.owner}: keep it now, it is not shown again. Send it as "
        "'Authorization: Bearer <token>' (an OpenAI client's api_key); revoke it with "
        f"`playground tokens revoke {token.id} --user {token.owner}`.",
        file=sys.stderr,
    )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    tokens = _store().list(args.user, include_revoked=args.all)
    if args.json:
        print(json.dumps([token.to_dict() for token in tokens], indent=2, ensure_ascii=False))
    elif not tokens:
        print(f"{args.user} has no tokens; make one with `playground tokens create --user {args.user}`")
    else:
        print(format_tokens_table([token.to_dict() for token in tokens]))
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    if not _store().revoke(args.token_id, args.user):
        raise ValueError(f"{args.user} has no active token {args.token_id!r}; `playground tokens list` shows them")
    print(f"token {args.token_id} revoked")
    return 0


def format_tokens_table(rows: list[dict]) -> str:
    """An aligned table of token records for the terminal."""
    columns = ("id", "name", "created_at", "last_used_at", "revoked")
    cells = [[str(row.get(column) if row.get(column) is not None else "-") for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)
