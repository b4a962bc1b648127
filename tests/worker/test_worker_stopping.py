"""Stopping under faults, against the dev server over HTTP: tasks left at the hard deadline are
logged and counted, abandoned threads keep their capacity, ``run()`` keeps its deadline and
answers its tasks when cancelled, and SWF's cancel request wins over a shutdown."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from swfkit import SWFKit, attributes

from . import activities, fault_activities
from .activities import event
from .logs import log_lines
from .test_worker_devserver import (
    closing_event,
    request_cancel,
    schedule,
    wait_for,
    wait_threading_event,
)

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]
RESPONDS = [
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
]


async def wait_for_log(stream: io.StringIO, text: str, deadline: float = 10) -> dict[str, Any]:
    with anyio.fail_after(deadline):
        while True:
            for line in log_lines(stream):
                if text in line["event"]:
                    return line
            await anyio.sleep(0.02)


# -- item 6 ----------------------------------------------------------------------------------


async def test_a_task_unanswered_at_the_hard_deadline_is_logged_and_counted(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker, json_logs: io.StringIO
) -> None:
    event("cancellable.started").clear()
    worker = make_worker(
        [activities.cancellable], graceful_shutdown_timeout=0.2, cancel_grace_period=0.3
    )
    async with worker:
        execution = await schedule(swfkit, "cancellable", activity_id="unanswerable")
        await wait_threading_event("cancellable.started")
        # Every answer fails from now on (a transient error, so it is retried).
        dev_server.faults.add("error", operation=RESPONDS, probability=1.0)
    dev_server.faults.clear()
    assert worker.tasks_left_at_deadline == 1
    assert worker.outcomes == {"left to SWF": 1}
    left = [
        line
        for line in log_lines(json_logs)
        if line["event"] == "task left to SWF's timeout"
        and line.get("activity_id") == "unanswerable"
    ]
    assert len(left) == 1
    assert "hard shutdown deadline" in left[0]["why"]
    types = [e["eventType"] for e in await swfkit.history(_ids(execution))]
    assert "ActivityTaskFailed" not in types


def _ids(execution: dict[str, Any]) -> dict[str, Any]:
    return {"workflowId": execution["workflowId"], "runId": execution["runId"]}


# -- item 8 ----------------------------------------------------------------------------------


async def test_an_abandoned_thread_keeps_its_capacity_until_it_returns(
    swfkit: SWFKit, make_worker: MakeWorker, json_logs: io.StringIO
) -> None:
    fault_activities.deaf_threads.reset()
    event("deaf_thread.started").clear()
    event("deaf_thread.release").clear()
    try:
        async with make_worker(
            [fault_activities.deaf_thread],
            max_concurrency=1,
            cancel_grace_period=0.2,
            resolve_timeouts="history",
        ) as worker:
            first = await schedule(
                swfkit, "deaf_thread", 30, activity_id="deaf", heartbeat_timeout="2"
            )
            await wait_threading_event("deaf_thread.started")
            await request_cancel(swfkit, first, "deaf")
            # Answered canceled at the end of the grace period; its thread runs on.
            closed = await closing_event(swfkit, first)
            assert closed["eventType"] == "ActivityTaskCanceled"
            second = await schedule(swfkit, "deaf_thread", 0.05, activity_id="next")
            # The slot must not take the second task while the first thread runs: it stays
            # scheduled, not started, for as long as the thread ignores its stop.
            with anyio.move_on_after(1.0):
                await wait_for(swfkit, second, {"ActivityTaskStarted"})
                pytest.fail("a second task started while the abandoned thread still ran")
            assert fault_activities.deaf_threads.most == 1
            event("deaf_thread.release").set()
            after = await closing_event(swfkit, second)
            assert after["eventType"] == "ActivityTaskCompleted"
    finally:
        event("deaf_thread.release").set()
    assert fault_activities.deaf_threads.most == 1
    assert worker.outcomes == {"canceled": 1, "completed": 1}
    events = [line["event"] for line in log_lines(json_logs)]
    assert "activity thread abandoned while still running" in events
    assert "abandoned activity thread returned; its slot polls again" in events


# -- item 9 ----------------------------------------------------------------------------------


async def test_run_returns_by_the_hard_deadline_despite_a_shielded_cleanup(
    swfkit: SWFKit, make_worker: MakeWorker, json_logs: io.StringIO
) -> None:
    event("long_shielded_cleanup.started").clear()
    worker = make_worker(
        [fault_activities.long_shielded_cleanup],
        graceful_shutdown_timeout=0.2,
        cancel_grace_period=0.5,
    )
    hard_deadline = 0.2 + 0.5 + 1.5
    async with worker:
        execution = await schedule(swfkit, "long_shielded_cleanup", 12)
        await wait_threading_event("long_shielded_cleanup.started")
        shutdown_began = anyio.current_time()
    returned_after = anyio.current_time() - shutdown_began
    # The bound is the deadline plus scheduling slack on a busy machine, far below the 12 s
    # that the cleanup would take.
    assert returned_after < hard_deadline + 2.0
    closed = await closing_event(swfkit, execution)
    assert attributes(closed)["reason"] == "worker shutdown"
    assert worker.outcomes == {"failed": 1}
    assert worker.tasks_left_at_deadline == 0
    events = [line["event"] for line in log_lines(json_logs)]
    assert "abandoning activities that ignore cancellation; the worker returns without them" in (
        events
    )


# -- item 11 ---------------------------------------------------------------------------------


async def test_cancelling_run_answers_running_tasks_before_the_cancellation_propagates(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    event("cancellable.started").clear()
    event("blocking.started").clear()
    worker = make_worker(
        [activities.cancellable, activities.blocking_cancellable],
        cancel_grace_period=1.0,
        graceful_shutdown_timeout=30,
    )
    with anyio.CancelScope() as outer:
        async with anyio.create_task_group() as group:
            await group.start(worker.run)
            coroutine = await schedule(swfkit, "cancellable", activity_id="coroutine")
            thread = await schedule(swfkit, "blocking_cancellable", activity_id="thread")
            await wait_threading_event("cancellable.started")
            await wait_threading_event("blocking.started")
            cancelled_at = anyio.current_time()
            outer.cancel()
    took = anyio.current_time() - cancelled_at
    # Answered before the cancellation went on (the worker is gone: nothing answers later).
    for execution in (coroutine, thread):
        closed = await closing_event(swfkit, execution, deadline=5)
        assert closed["eventType"] == "ActivityTaskFailed"
        assert attributes(closed)["reason"] == "worker shutdown"
    assert worker.outcomes == {"failed": 2}
    assert took < 1.0 + 1.5 + 2.0


# -- item 12 ---------------------------------------------------------------------------------


async def test_a_cancel_request_during_a_shutdown_stop_is_answered_canceled(
    swfkit: SWFKit, make_worker: MakeWorker, json_logs: io.StringIO
) -> None:
    event("slow_cleanup.started").clear()
    event("slow_cleanup.release").clear()
    worker = make_worker(
        [fault_activities.slow_cleanup],
        graceful_shutdown_timeout=0.1,
        cancel_grace_period=8.0,
        resolve_timeouts="history",
    )
    try:
        async with worker:
            execution = await schedule(swfkit, "slow_cleanup", heartbeat_timeout="2")
            await wait_threading_event("slow_cleanup.started")
            worker.request_shutdown(hurry=True)
            await wait_for_log(json_logs, "stopping activity")
            # The activity cleans up; meanwhile the workflow cancels the task.
            await request_cancel(swfkit, execution)
            await wait_for_log(json_logs, "cancel requested while stopping")
            event("slow_cleanup.release").set()
    finally:
        event("slow_cleanup.release").set()
    closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled", attributes(closed)
    assert worker.outcomes == {"canceled": 1}


# -- stopped while its timeouts are resolved -------------------------------------------------


async def test_a_blocking_activity_stopped_before_it_started_never_starts_its_thread(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker
) -> None:
    fault_activities.deaf_threads.reset()
    # The look-up of the registered timeouts hangs for longer than the shutdown allows.
    dev_server.faults.add("latency", operation="DescribeActivityType", latency=6.0)
    worker = make_worker(
        [fault_activities.deaf_thread], graceful_shutdown_timeout=0.1, cancel_grace_period=1.0
    )
    async with worker:
        execution = await schedule(swfkit, "deaf_thread", 0.5)
        await wait_for(swfkit, execution, {"ActivityTaskStarted"})
    dev_server.faults.clear()
    closed = await closing_event(swfkit, execution)
    assert attributes(closed)["reason"] == "worker shutdown"
    assert fault_activities.deaf_threads.most == 0
    assert worker.outcomes == {"failed": 1}


async def test_the_first_beat_does_not_wait_for_the_timeout_lookup(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker
) -> None:
    """The history look-up takes longer than the task's heartbeat timeout: beats go out
    meanwhile, with the best timeout known, so SWF does not time the task out."""
    dev_server.faults.add(
        "latency", operation="GetWorkflowExecutionHistory", latency=4.0, probability=1.0
    )
    async with make_worker([activities.sleeper], resolve_timeouts="history") as worker:
        execution = await schedule(swfkit, "sleeper", 0.2, heartbeat_timeout="3")
        with anyio.fail_after(10):
            await worker.wait_handled(1)
    dev_server.faults.clear()
    closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted", attributes(closed)
    result = json.loads(attributes(closed)["result"])
    assert result["heartbeat_timeout"] == 3
