from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiobotocore.session import get_session

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from swfkit import TEST_POLL_TIMEOUT, record_task_tokens

from . import activities

DOMAIN = "hw-decider"
TASK_LIST = "hw-decider-activities"


@pytest.fixture
async def worker(dev_server: DevServer, task_tokens: set[str]) -> AsyncIterator[Worker]:
    """A worker serving every activity of :mod:`.activities` on ``dev_server``.

    It resolves timeouts from the history, so that the overrides the decider schedules with
    (short heartbeat and start-to-close timeouts) are the ones it heartbeats against. The
    tokens it receives go to ``task_tokens``.
    """
    session = get_session()
    session.set_credentials("testing", "testing")
    record_task_tokens(session, task_tokens)
    activities.attempts_seen.clear()
    worker = Worker(
        DOMAIN,
        TASK_LIST,
        [
            activities.double,
            activities.broken,
            activities.flaky,
            activities.patient,
            activities.stalling,
            activities.forgetful,
            activities.counting,
        ],
        endpoint_url=dev_server.endpoint_url,
        region="us-east-1",
        session=session,
        register_types=True,
        resolve_timeouts="history",
        poll_read_timeout=TEST_POLL_TIMEOUT + 5,
        graceful_shutdown_timeout=2.0,
        cancel_grace_period=1.0,
    )
    async with worker:
        yield worker
