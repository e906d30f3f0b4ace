"""`playground users add | list`: the users of a shared server, in its auth file, with hashed passwords.

Wired into ui/cli.py with `add_user_commands(sub)`. `add` writes `user:$scrypt$...[:admin]` (see ui/users.py) in one
atomic step; the running server reads the file when it starts, so restart it to let a new user in.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def add_user_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `users` (add | list) on the CLI's sub-parsers."""
    users = subparsers.add_parser("users", help="add and list the users of `playground serve --auth-file FILE`")
    actions = users.add_subparsers(title="actions", metavar="ACTION")
    users.set_defaults(handler=lambda _args: users.print_help() or 2)

    add = actions.add_parser("add", help="add a user (or, with --replace, set a new password) with a hashed password")
    add.add_argument("user", help="the user name they log in with")
    add.add_argument("--auth-file", type=Path, required=True, help="the file `playground serve --auth-file` reads")
    add.add_argument("--admin", action="store_true", help="an admin lists and cancels everyone's jobs")
    add.add_argument("--replace", action="store_true", help="replace the user's line if they are already there")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin, not a prompt"
    )
    add.set_defaults(handler=_cmd_add)

    listing = actions.add_parser("list", help="the users in an auth file, and which are admins (never passwords)")
    listing.add_argument("--auth-file", type=Path, required=True)
    listing.set_defaults(handler=_cmd_list)


def _cmd_add(args: argparse.Namespace) -> int:
    from ui.users import add_user, check_user_name

    check_user_name(args.user)  # before asking for a password that would then be thrown away
    password = _read_password(args.password_stdin)
    replaced = add_user(args.auth_file, args.user, password, admin=args.admin, replace=args.replace)
    role = " (admin)" if args.admin else ""
    print(
        f"{'replaced' if replaced else 'added'} {args.user}{role} in {args.auth_file}; restart `playground serve "
        f"--auth-file {args.auth_file}` to apply it"
    )
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ValueError("the two passwords differ; nothing was written")
    if not password:
        raise ValueError("the password is empty; nothing was written")
    return password


def _cmd_list(args: argparse.Namespace) -> int:
    from ui.users import is_hash, parse_line, read_auth_lines

    rows = []
    for source, line in read_auth_lines(args.auth_file):
        user, secret, admin = parse_line(line, source)
        kind = "hashed" if is_hash(secret) else "PLAIN TEXT: hash it with `playground users add ... --replace`"
        rows.append((user, "admin" if admin else "user", kind))
    if not rows:
        print(f"{args.auth_file} has no users; add one with `playground users add NAME --auth-file {args.auth_file}`")
        return 0
    width = max(len("user"), *(len(user) for user, _, _ in rows))
    print(f"{'user'.ljust(width)}  role   password")
    for user, role, kind in rows:
        print(f"{user.ljust(width)}  {role.ljust(5)}  {kind}")
    return 0
