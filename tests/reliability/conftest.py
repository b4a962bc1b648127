"""Fixtures of the reliability tests.

Every test here runs with its structlog output captured as JSON lines, and with the task
tokens the dev server hands out recorded; at the end of each test the captured lines (and
the standard error of any worker process the test started) are checked for task tokens and
for the secret access key the workers were given (see ``secrecy.py``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import structlog
from aiobotocore.session import AioSession, get_session

from heartbeat_worker import Worker, configure_logging
from heartbeat_worker.devserver import DevServer
from swfkit import aio_client

from .decide import Decider
from .secrecy import ACCESS_KEY, SECRET_KEY, LogCapture, record_tokens

POLL_TIMEOUT = 1.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def logs() -> Iterator[LogCapture]:
    """The test's log lines (JSON, level debug), checked for secrets when the test ends."""
    stream = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=stream)
    capture = LogCapture(stream)
    try:
        yield capture
    finally:
        structlog.reset_defaults()
    capture.assert_no_secrets()


@pytest.fixture
async def server(logs: LogCapture) -> AsyncIterator[DevServer]:
    """A dev server in the test's loop (1 s polls) whose task tokens are recorded."""
    async with DevServer(poll_timeout=POLL_TIMEOUT) as dev_server:
        record_tokens(dev_server, logs.tokens)
        yield dev_server


def worker_session() -> AioSession:
    """A session with the distinctive credentials that the secrecy check looks for."""
    session = get_session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY)
    return session


@pytest.fixture
def make_worker(server: DevServer) -> Callable[..., Worker]:
    """An in-process worker for ``server`` on the ``hw-test`` domain."""

    def build(activities: list[Any], task_list: str, **options: Any) -> Worker:
        options.setdefault("register_types", True)
        options.setdefault("poll_read_timeout", POLL_TIMEOUT + 5)
        options.setdefault("graceful_shutdown_timeout", 5.0)
        return Worker(
            "hw-test",
            task_list,
            activities,
            endpoint_url=server.endpoint_url,
            region="us-east-1",
            session=worker_session(),
            **options,
        )

    return build


@pytest.fixture
async def client(server: DevServer) -> AsyncIterator[Any]:
    """The test's own SWF client (it plays the decider), without retries."""
    async with aio_client(server.endpoint_url) as swf:
        yield swf


@pytest.fixture
async def decider(client: Any) -> Decider:
    result = Decider(client)
    await result.setup()
    return result
