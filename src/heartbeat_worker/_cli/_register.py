"""``heartbeat-worker register``: register the domain and activity types (idempotent)."""

from __future__ import annotations

import argparse

import anyio

from .._errors import ConfigurationError
from .._loader import load_target
from .._logging import get_logger
from .._preflight import check_startup
from .._swf import open_connection
from .._worker import Worker
from ._options import add_connection_arguments, add_logging_arguments, apply_logging_arguments

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="module or module:attribute, as for run")
    parser.add_argument("--domain", help="SWF domain (required unless TARGET is a Worker)")
    add_connection_arguments(parser)
    add_logging_arguments(parser)


def main(args: argparse.Namespace) -> int:
    apply_logging_arguments(args)
    loaded = load_target(args.target)
    if isinstance(loaded, Worker):
        domain, activities = loaded.domain, list(loaded.activities.values())
        endpoint_url = args.endpoint_url or loaded.endpoint_url
        region = args.region or loaded.region
    elif args.domain:
        domain, activities = args.domain, loaded
        endpoint_url, region = args.endpoint_url, args.region
    else:
        raise ConfigurationError("--domain is required for this TARGET")

    async def run() -> None:
        async with open_connection(endpoint_url=endpoint_url, region=region) as connection:
            # Fails within seconds, in one line, when the endpoint cannot be reached.
            await check_startup(
                connection.call_client,
                domain,
                activities,
                get_logger(domain=domain),
                register_types=True,
            )

    anyio.run(run)
    return 0
