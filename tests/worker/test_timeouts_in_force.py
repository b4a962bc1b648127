"""Which heartbeat timeout a worker beats against, and when it beats (README, "Which heartbeat
timeout is in force" and the options table), against the dev server over HTTP."""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import structlog

from heartbeat_worker import Worker, configure_logging
from heartbeat_worker.devserver import DevServer
from swfkit import SWFKit, attributes

from . import activities
from .activities import event
from .test_worker_devserver import (
    closing_event,
    history,
    request_cancel,
    schedule,
    wait_threading_event,
)

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]


def capture_logs() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    return stream


def records(stream: io.StringIO, prefix: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["event"].startswith(prefix)]


async def started_task(server: DevServer, execution: dict[str, Any], deadline: float = 10) -> Any:
    """The dev server's view of the execution's task once it has a heartbeat."""
    with anyio.fail_after(deadline):
        while True:
            task = server.snapshot().task("a1", execution["workflowId"])
            if task is not None and task.heartbeats:
                return task
            await anyio.sleep(0.02)


async def test_registered_defaults_win_over_the_decorators_looked_up_once_with_a_warning(
    swfkit: SWFKit, make_worker: MakeWorker, dev_server: DevServer
) -> None:
    # Registered before the worker starts (which then leaves the type as it is), with
    # defaults other than the decorator's 60 s and 300 s.
    await swfkit.register_activity_type(
        {"name": "sleeper", "version": "1"}, heartbeat_timeout="45", start_to_close_timeout="200"
    )
    stream = capture_logs()
    try:
        async with make_worker([activities.sleeper], max_concurrency=3) as worker:
            # No override: the registered start-to-close applies too.
            executions = [
                await schedule(swfkit, "sleeper", 0.2, start_to_close_timeout=None)
                for _ in range(3)
            ]
            closed = [
                await closing_event(swfkit, execution, deadline=20) for execution in executions
            ]
    finally:
        structlog.reset_defaults()
    assert [json.loads(attributes(e)["result"])["heartbeat_timeout"] for e in closed] == [45.0] * 3
    assert worker.outcomes == {"completed": 3}
    assert dev_server.faults.calls["DescribeActivityType"] == 1  # once per type, then cached
    (warning,) = records(stream, "registered timeouts differ")
    assert warning["registered_heartbeat"] == 45.0
    assert warning["declared_heartbeat"] == 60.0
    assert warning["registered_start_to_close"] == 200.0


async def test_the_first_beat_goes_within_a_second(
    swfkit: SWFKit, make_worker: MakeWorker, dev_server: DevServer
) -> None:
    """The type's 60 s timeout makes the regular interval 20 s; the first beat does not wait
    for it (a little slack above the documented second, for a busy machine)."""
    async with make_worker([activities.sleeper]):
        execution = await schedule(swfkit, "sleeper", 5.0)
        task = await started_task(dev_server, execution)
        events = await history(swfkit, execution)
    started = next(e for e in events if e["eventType"] == "ActivityTaskStarted")
    assert task.heartbeat_timeout == 60.0
    assert task.last_heartbeat_at - started["eventTimestamp"].timestamp() < 2.0


async def test_a_task_without_heartbeat_timeout_beats_and_hears_a_cancel_request(
    swfkit: SWFKit, make_worker: MakeWorker, dev_server: DevServer
) -> None:
    """Heartbeat timeout NONE: the worker still beats, every 30 s by default and here every
    0.3 s, since the reply is the only way a cancel request reaches it."""
    default = inspect.signature(Worker).parameters["heartbeat_interval_without_timeout"].default
    assert default == 30.0
    activities.log.clear()
    event("cancellable.started").clear()
    async with make_worker(
        [activities.cancellable],
        resolve_timeouts="history",
        heartbeat_interval_without_timeout=0.3,
    ):
        execution = await schedule(swfkit, "cancellable", heartbeat_timeout="NONE")
        await wait_threading_event("cancellable.started")
        task = await started_task(dev_server, execution)
        assert task.heartbeat_timeout is None
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution, deadline=10)
    assert closed["eventType"] == "ActivityTaskCanceled"
    assert activities.log == ["async cleanup ran"]
