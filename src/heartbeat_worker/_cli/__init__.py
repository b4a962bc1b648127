"""The ``heartbeat-worker`` command line.

One module per command (``_run``, ``_register``, ``_execute``, ``_demo``; the dev server's
lives in :mod:`heartbeat_worker.devserver._command`, beside the server it drives), each with
two functions, ``add_arguments(parser)`` and ``main(args) -> int``; options several commands
share live in ``_options``. This module only assembles them, importing the chosen command
alone, so that ``heartbeat-worker --help`` stays cheap and ``run`` never imports the dev
server.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ._help import HelpFormatter

__all__ = ["build_parser", "main"]

# name -> (module that implements it, one-line help)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("heartbeat_worker._cli._run", "serve activities until SIGINT or SIGTERM"),
    "register": (
        "heartbeat_worker._cli._register",
        "register the domain and activity types (idempotent)",
    ),
    "execute": ("heartbeat_worker._cli._execute", "run one activity through SWF and report it"),
    "demo": ("heartbeat_worker._cli._demo", "run the ETL example end to end on a dev server"),
    "dev-server": (
        "heartbeat_worker.devserver._command",
        "run a local SWF-compatible endpoint for development and tests",
    ),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the full options of the command named in ``argv`` only.

    Every command is listed (its help text lives in this module), but only the chosen one's
    module is imported to add its options: ``heartbeat-worker run`` need not import the dev
    server, nor ``dev-server`` the worker.
    """
    parser = argparse.ArgumentParser(
        prog="heartbeat-worker",
        description="Asyncio activity workers for Amazon SWF, with automatic heartbeats.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text, formatter_class=HelpFormatter
        )
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_command_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a :class:`~heartbeat_worker.UserError` raised anywhere below (or
    an error of botocore's that is one, such as a missing region) becomes one line on
    stderr and its exit status, with no traceback."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    try:
        result: int = args._command_module.main(args)
    except Exception as error:
        from .._preflight import user_error_for

        user_error = user_error_for(error)
        if user_error is None:
            raise
        print(f"heartbeat-worker {args.command}: {user_error}", file=sys.stderr)
        return user_error.exit_status
    return result
