from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiobotocore.session import get_session

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from swfkit import ACTIVITY_TASK_LIST, DOMAIN, TEST_POLL_TIMEOUT


@pytest.fixture
def make_worker(dev_server: DevServer) -> Callable[..., Worker]:
    """Build a worker for ``dev_server``: registers its types, polls the kit's task list."""

    def build(activities: list[Any], **options: Any) -> Worker:
        session = get_session()
        session.set_credentials("testing", "testing")
        options.setdefault("register_types", True)
        options.setdefault("poll_read_timeout", TEST_POLL_TIMEOUT + 5)
        options.setdefault("graceful_shutdown_timeout", 5.0)
        return Worker(
            DOMAIN,
            ACTIVITY_TASK_LIST,
            activities,
            endpoint_url=dev_server.endpoint_url,
            region="us-east-1",
            session=session,
            **options,
        )

    return build
