"""`playground serve`: the web app on http://127.0.0.1:7860, plus a local worker when no broker is configured.

Wired into ui/cli.py with `add_serve_command(sub)`; also runs as `python -m ui.serve [flags]`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
_PR_SET_PDEATHSIG = 1
# Quiet, offline-friendly defaults for the libraries the web process loads.
_ENV_DEFAULTS = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def add_serve_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `serve` on the CLI's sub-parsers."""
    serve = subparsers.add_parser(
        "serve",
        help="run the web app (and, with no broker configured, one local worker)",
        description="Run the Finetune Playground web app. Without PLAYGROUND_BROKER_URL it also starts a local "
        "worker on the embedded broker, so this one command is all a single machine needs.",
    )
    add_serve_flags(serve)
    serve.set_defaults(handler=cmd_serve)
    return serve


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `playground serve`."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default %(default)s)")
    parser.add_argument(
        "--auth",
        action="append",
        metavar="USER:PASSWORD",
        help="require a login; repeat for several users, each seeing only their own jobs, data and models",
    )
    parser.add_argument(
        "--auth-file",
        type=Path,
        help="file with one USER:PASSWORD per line (# comments allowed); `playground users add` writes hashed ones",
    )
    parser.add_argument(
        "--admin",
        action="append",
        metavar="USER",
        help="make a user an admin, who lists and cancels everyone's jobs (repeatable; the auth file's :admin "
        "marker does the same)",
    )
    parser.add_argument(
        "--share", action="store_true", help="also ask Gradio for a temporary public link (needs internet)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="jobs the local worker runs at once; 0 starts none (default: 1 with the embedded broker, 0 when "
        "PLAYGROUND_BROKER_URL is set and workers run elsewhere)",
    )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the local worker (if any) and the web app; stop the worker when the web app stops."""
    for name, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from ui.context import AppContext, Users
    from worker.settings import Settings

    users = Users.parse(args.auth, args.auth_file, args.admin)
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {args.workers}")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    _check_port_free(args.host, args.port)
    settings = Settings.from_env()
    if not users.enabled and (not is_loopback(args.host) or args.share):
        where = "a public share link" if args.share else f"{args.host}, which other machines can reach"
        print(
            f"WARNING: serving on {where} without --auth: anyone who can open it can see, run and cancel every "
            "job and use every model. Add --auth USER:PASSWORD (or --auth-file FILE) to require a login.",
            file=sys.stderr,
            flush=True,
        )
    ctx = AppContext(settings, users)  # creates the tables before any worker starts
    workers = args.workers if args.workers is not None else (1 if settings.embedded else 0)
    worker = _start_worker(settings.home, workers) if workers else None
    if not workers and settings.embedded:
        print("no local worker (--workers 0): jobs wait until `playground worker` runs on this data dir", flush=True)
    elif not settings.embedded:
        print("jobs go to the broker in PLAYGROUND_BROKER_URL; start workers with `playground worker`", flush=True)
    try:
        return _run_web(ctx, args)
    finally:
        if worker is not None:
            _stop(worker)
        ctx.close()


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ValueError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is the playground already running? "
                "Open that one, or pass --port with a free port"
            ) from exc


def _start_worker(home: Path, concurrency: int) -> subprocess.Popen:
    from worker.service import spawn_worker

    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "worker.log"
    with log_path.open("ab") as log:
        process = spawn_worker(
            concurrency=concurrency, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
    print(f"local worker started (pid {process.pid}, {concurrency} job(s) at a time); its log: {log_path}", flush=True)
    return process


def _die_with_parent() -> None:
    # Linux: the worker gets SIGTERM if this process dies without cleaning up (kill -9), so none is left behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(process: subprocess.Popen) -> None:
    """Stop the worker's whole process group: politely, then by force."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _run_web(ctx, args: argparse.Namespace) -> int:
    import uvicorn

    from ui.server import create_app

    app = create_app(ctx)
    # Open event streams (browsers, API clients) must not hold Ctrl+C up for long.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{args.port}"
    threading.Thread(target=_announce, args=(server, url, args.share, args.port), daemon=True).start()
    # uvicorn shuts down gracefully on Ctrl+C or SIGTERM, then raises the signal again; these handlers turn that
    # into a normal exit, so the caller's clean-up (stopping the local worker) still runs.
    signal.signal(signal.SIGTERM, _exit_quietly)
    signal.signal(signal.SIGINT, _exit_quietly)
    server.run()
    return 0 if server.started else 1


def _exit_quietly(signum: int, frame: object) -> None:
    print("stopping the playground…", flush=True)
    raise SystemExit(0)


def _announce(server, url: str, share: bool, port: int) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if not server.started:
        return
    print(f"Finetune Playground is running: open {url} in your browser (Ctrl+C stops it).", flush=True)
    if share:
        _open_share_link(port)


def _open_share_link(port: int) -> None:
    import httpx
    from gradio import networking

    try:
        public = networking.setup_tunnel("127.0.0.1", port, secrets.token_urlsafe(32), None, None)
    except (RuntimeError, OSError, ValueError, httpx.HTTPError) as exc:
        cause = exc.__cause__ or exc
        print(
            f"could not open a public share link ({cause}); this machine may be offline. The app still runs locally.",
            file=sys.stderr,
            flush=True,
        )
        return
    print(f"Public share link (valid while this runs): {public}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m ui.serve`: the same as `playground serve`."""
    parser = argparse.ArgumentParser(prog="playground serve", description="Run the Finetune Playground web app.")
    add_serve_flags(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_serve(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
