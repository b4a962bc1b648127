"""The few lines that turn an example module into a runnable worker (``python -m``)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from typing import Any

import anyio

from heartbeat_worker import Activity, Worker, configure_logging


def serve(activities: Sequence[Activity[..., Any]], description: str | None) -> None:
    """Parse the command line and serve ``activities`` until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--task-list", required=True)
    parser.add_argument("--endpoint-url", help="for example the dev server's URL")
    parser.add_argument("--region")
    parser.add_argument("--register", action="store_true", help="register the activity types first")
    arguments = parser.parse_args()
    configure_logging()
    worker = Worker(
        arguments.domain,
        arguments.task_list,
        activities,
        endpoint_url=arguments.endpoint_url,
        region=arguments.region,
        register_types=arguments.register,
    )

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    hurry = False
                    async for _ in signals:
                        worker.request_shutdown(hurry=hurry)
                        hurry = True  # a second signal stops running activities now

            group.start_soon(stop_on_signal)
            await worker.run()
            group.cancel_scope.cancel()

    anyio.run(main)
