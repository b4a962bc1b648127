"""Graceful shutdown of an in-process worker, against a dev server that holds polls as SWF
does (here 30 s): what happens to the polls that are open when the shutdown begins."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import structlog
from aiobotocore.session import get_session

from heartbeat_worker import Worker, configure_logging
from heartbeat_worker.devserver import DevServer
from swfkit import SWFKit, aio_client, attributes

from . import activities
from .activities import event
from .test_worker_devserver import closing_event, schedule, wait_threading_event

pytestmark = pytest.mark.anyio

LONG_POLL = 30.0
"""The dev server's poll timeout here: a poll open when the shutdown begins stays open for
the whole test unless the worker abandons it."""


@pytest.fixture
async def long_poll_server() -> AsyncIterator[DevServer]:
    async with DevServer(poll_timeout=LONG_POLL) as server:
        yield server


@pytest.fixture
async def kit(long_poll_server: DevServer) -> AsyncIterator[SWFKit]:
    async with aio_client(long_poll_server.endpoint_url) as client:
        result = SWFKit(client)
        await result.setup()
        yield result


def make_worker(server: DevServer, activity_list: list[Any], **options: Any) -> Worker:
    session = get_session()
    session.set_credentials("testing", "testing")
    return Worker(
        "hw-test",
        "hw-activities",
        activity_list,
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        session=session,
        register_types=True,
        poll_read_timeout=LONG_POLL + 5,
        **options,
    )


async def polls_waiting(server: DevServer, count: int, deadline: float = 10) -> None:
    """Until ``count`` activity polls wait at the server for a task (its snapshot)."""
    with anyio.fail_after(deadline):
        while sum(poll.kind == "activity" for poll in server.snapshot().polls) < count:  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_a_task_handed_to_an_open_poll_during_shutdown_is_answered_at_once(
    long_poll_server: DevServer, kit: SWFKit
) -> None:
    """README, graceful shutdown step 1: answered ``worker shutdown`` at once, not when the
    graceful period ends (20 s here; the activity that keeps the worker in it is released
    only after the answer was checked)."""
    grace = 20.0
    event("stubborn.started").clear()
    event("stubborn.release").clear()
    worker = make_worker(
        long_poll_server,
        [activities.stubborn, activities.sleeper],
        max_concurrency=2,
        pollers=1,
        graceful_shutdown_timeout=grace,
    )
    try:
        async with worker:
            running = await schedule(kit, "stubborn", activity_id="running")
            await wait_threading_event("stubborn.started")
            await polls_waiting(long_poll_server, 1)  # the idle slot's poll is open
            worker.request_shutdown()
            shutdown_at = anyio.current_time()
            late = await schedule(kit, "sleeper", 60, activity_id="late")
            closed = await closing_event(kit, late, deadline=grace / 2)
            answered_after = anyio.current_time() - shutdown_at
            event("stubborn.release").set()
    finally:
        event("stubborn.release").set()
    assert closed["eventType"] == "ActivityTaskFailed"
    assert attributes(closed)["reason"] == "worker shutdown"
    assert answered_after < grace / 4
    assert (await closing_event(kit, running))["eventType"] == "ActivityTaskCompleted"
    assert worker.outcomes == {"completed": 1, "failed": 1}


async def test_idle_worker_abandons_open_polls_at_the_graceful_timeout(
    long_poll_server: DevServer,
) -> None:
    """SWF holds a poll up to 60 s and offers no way to withdraw it: an idle worker must not
    wait for that (30 s here), but leave at its graceful timeout, saying so."""
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        worker = make_worker(long_poll_server, [activities.add], graceful_shutdown_timeout=0.5)
        async with worker:
            await polls_waiting(long_poll_server, 2)
            started = anyio.current_time()
        elapsed = anyio.current_time() - started
    finally:
        structlog.reset_defaults()
    assert 0.5 <= elapsed < LONG_POLL / 3
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    abandoned = [line for line in lines if line["event"].startswith("abandoning polls")]
    assert len(abandoned) == 1
    assert abandoned[0]["open_polls"] == 2
    assert not [line for line in lines if line["level"] == "error"]
