"""``heartbeat-worker dev-server``: the dev server as a standalone process."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .._errors import StateFileError
from ._faults import SPEC_HELP, parse_fault_spec
from ._server import DevServer, is_loopback

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8866,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a poll waits for a task before answering empty (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; the server has no authentication",
    )
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        help="keep domains, types, executions, tasks and timers in this SQLite file, so that "
        "they survive a restart (created if missing; default: in memory only)",
    )
    parser.add_argument(
        "--keep-abandoned-polls",
        action="store_true",
        help="hand tasks to polls whose connection has closed, as SWF does (the task then "
        "waits for its timeout); by default such polls are dropped",
    )
    parser.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", dest="faults", help=SPEC_HELP
    )


async def _serve(server: DevServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        # Scripts wait for this line, and parse the URL from it when they asked for port 0.
        print(f"heartbeat-worker dev server listening on {server.endpoint_url}", flush=True)
        print(f"status page: {server.endpoint_url}/ (read-only)", flush=True)
        await stop.wait()


def main(args: argparse.Namespace) -> int:
    if not args.allow_remote and not is_loopback(args.host):
        print(
            f"heartbeat-worker dev-server: refusing to listen on non-loopback host "
            f"{args.host!r}: the dev server has no authentication; add --allow-remote "
            "to do it anyway",
            file=sys.stderr,
        )
        return 2
    if args.poll_timeout <= 0:
        print("heartbeat-worker dev-server: --poll-timeout must be positive", file=sys.stderr)
        return 2
    server = DevServer(
        args.host,
        args.port,
        poll_timeout=args.poll_timeout,
        allow_remote=args.allow_remote,
        keep_abandoned_polls=args.keep_abandoned_polls,
        state_file=args.state_file,
    )
    for spec in args.faults:
        try:
            kind, options = parse_fault_spec(spec)
            server.faults.add(kind, **options)
        except ValueError as exc:
            print(f"heartbeat-worker dev-server: --fault {spec!r}: {exc}", file=sys.stderr)
            return 2
    try:
        asyncio.run(_serve(server))
    except StateFileError as exc:
        print(f"heartbeat-worker dev-server: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"heartbeat-worker dev-server: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
