"""A program that runs a worker the plainest way, ``anyio.run(main)``, with no signal
handling of its own: Ctrl-C reaches ``Worker.run()`` as a cancellation."""

from __future__ import annotations

import sys

import anyio
from aiobotocore.session import get_session
from tests.worker.activities import cancellable

from heartbeat_worker import Worker, configure_logging


async def main(endpoint_url: str, task_list: str) -> None:
    session = get_session()
    session.set_credentials("testing", "testing")
    worker = Worker(
        "hw-test",
        task_list,
        [cancellable],
        endpoint_url=endpoint_url,
        region="us-east-1",
        session=session,
        register_types=True,
        cancel_grace_period=1.0,
        poll_read_timeout=6.0,
    )
    await worker.run()


if __name__ == "__main__":
    configure_logging("json")
    anyio.run(main, sys.argv[1], sys.argv[2])
