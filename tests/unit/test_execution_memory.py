"""A finished task leaves nothing for the garbage collector.

At hundreds of tasks a second, objects freed only by the collector's cycle detection cost
more CPU than the rest of the framework's work per task, so each task's objects must be
freed by reference counting as soon as the worker drops the task.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from heartbeat_worker import activity
from heartbeat_worker._context import StopReason
from heartbeat_worker._execution import ExecutionSettings, OutcomeKind, TaskExecution
from heartbeat_worker._heartbeater import HeartbeatScheduler
from heartbeat_worker._timeouts import TaskTimeouts
from heartbeat_worker.testing import InMemoryTaskClient, _FixedTimeouts

pytestmark = pytest.mark.anyio

SETTINGS = ExecutionSettings(
    domain="d",
    task_list="t",
    heartbeat_fraction=1 / 3,
    heartbeat_interval_without_timeout=30.0,
    cancel_grace_period=0.2,
)


@activity(heartbeat_timeout=60)
async def returns_at_once(value: int) -> int:
    return value + 1


running: list[anyio.Event] = []  # each test that uses it puts a fresh event here


@activity(heartbeat_timeout=60)
async def waits_for_cancellation() -> None:
    running[-1].set()
    await anyio.sleep_forever()


def polled_task(number: int, input: str | None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskToken": f"token-{number}",
        "activityId": f"a{number}",
        "activityType": {"name": "returns_at_once", "version": "1"},
        "workflowExecution": {"workflowId": "w", "runId": "r"},
        "startedEventId": 3,
    }
    if input is not None:
        task["input"] = input
    return task


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize(
    ("definition", "input", "stop", "expected"),
    [
        (returns_at_once, "1", False, OutcomeKind.COMPLETED),
        (waits_for_cancellation, None, True, OutcomeKind.FAILED),
    ],
)
async def test_a_finished_task_is_freed_without_the_garbage_collector(
    definition: Any, input: str | None, stop: bool, expected: OutcomeKind
) -> None:
    running.append(anyio.Event())
    scheduler = HeartbeatScheduler(max_in_flight=1)
    async with anyio.create_task_group() as helpers:
        helpers.start_soon(scheduler.run)
        client = InMemoryTaskClient()
        execution = TaskExecution(
            polled_task(1, input),
            definition,
            settings=SETTINGS,
            client=client,
            resolver=_FixedTimeouts(TaskTimeouts(60.0, None), on_resolve=lambda: None),
            thread_limiter=anyio.CapacityLimiter(1),
            heartbeats=scheduler,
            helpers=helpers,
        )
        if stop:
            helpers.start_soon(stop_when_running, execution)
        with anyio.fail_after(10):
            outcome = await execution.run()
        assert outcome.kind is expected
        assert len(client.answers) == 1
        freed = weakref.ref(execution)
        del execution
        await anyio.wait_all_tasks_blocked()  # the grace timer, if any, has returned
        assert freed() is None, gc.get_referrers(freed())
        helpers.cancel_scope.cancel()


async def stop_when_running(execution: TaskExecution) -> None:
    await running[-1].wait()
    execution.stop(StopReason.SHUTDOWN, "the test stops it")
