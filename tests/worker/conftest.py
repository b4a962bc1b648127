from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from aiobotocore.session import get_session

from heartbeat_worker import Worker, configure_logging
from heartbeat_worker.devserver import DevServer
from swfkit import TEST_POLL_TIMEOUT, record_task_tokens

DOMAIN = "hw-test"
TASK_LIST = "hw-activities"


@pytest.fixture
def make_worker(dev_server: DevServer, task_tokens: set[str]) -> Callable[..., Worker]:
    """Build a worker for ``dev_server``: registers its types, polls the kit's task list;
    the tokens it receives go to ``task_tokens``."""

    def build(activities: list[Any], **options: Any) -> Worker:
        session = get_session()
        session.set_credentials("testing", "testing")
        record_task_tokens(session, task_tokens)
        options.setdefault("register_types", True)
        options.setdefault("poll_read_timeout", TEST_POLL_TIMEOUT + 5)
        options.setdefault("graceful_shutdown_timeout", 5.0)
        return Worker(
            DOMAIN,
            TASK_LIST,
            activities,
            endpoint_url=dev_server.endpoint_url,
            region="us-east-1",
            session=session,
            **options,
        )

    return build


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The worker's log lines as JSON, at DEBUG, in a stream the test reads back."""
    stream = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
