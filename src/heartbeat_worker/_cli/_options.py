"""Command-line options shared by every subcommand that talks to SWF."""

from __future__ import annotations

import argparse
import logging

from .._logging import configure_logging

__all__ = ["add_connection_arguments", "add_logging_arguments", "apply_logging_arguments"]


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (the standard AWS chain applies too)")
    group.add_argument(
        "--endpoint-url",
        help="SWF endpoint, e.g. the dev server's http://127.0.0.1:8866 "
        "(default: AWS_ENDPOINT_URL_SWF, else AWS)",
    )
    group.add_argument("--region", help="AWS region (default: the AWS configuration chain)")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="console for people, json for log collectors; auto (default): console on a "
        "terminal, else json",
    )
    group.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="the least severe level logged",
    )


def apply_logging_arguments(args: argparse.Namespace) -> None:
    configure_logging(args.log_format, getattr(logging, args.log_level.upper()))
