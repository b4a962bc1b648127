"""``heartbeat-worker demo``: an ETL job end to end on an in-process dev server.

Run it from the root of a checkout (``make demo`` does): it imports ``examples.etl``. No AWS
account and no network beyond loopback are involved. See :mod:`heartbeat_worker._demo`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows",
        type=_positive_int,
        default=200_000,
        help="orders each ETL run loads (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=5_000,
        help="orders per transaction (default: %(default)s)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="where the worker and dev server log (default: heartbeat-worker-demo.log in "
        "the temporary directory)",
    )


def main(args: argparse.Namespace) -> int:
    import anyio

    from .._demo import DemoError, DemoSettings, run_demo
    from .._logging import configure_logging

    settings = DemoSettings(rows=args.rows, batch_size=args.batch_size)
    if args.log_file is not None:
        settings = dataclasses.replace(settings, log_path=args.log_file)
    try:
        log = settings.log_path.open("w", encoding="utf-8")
    except OSError as error:
        print(f"heartbeat-worker demo: cannot write the log: {error}", file=sys.stderr)
        return 1
    with log:
        # JSON lines: the console renderer would colour a file when stderr is a terminal.
        configure_logging("json", logging.INFO, stream=log)
        try:
            return anyio.run(run_demo, settings, sys.stdout)
        except DemoError as error:
            print(f"\nheartbeat-worker demo: {error}", file=sys.stderr)
            return 1
        except TimeoutError:
            print("\nheartbeat-worker demo: gave up waiting; see the log", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nheartbeat-worker demo: interrupted", file=sys.stderr)
            return 130
