"""The worker against the dev server, over HTTP, through aiobotocore: heartbeats, timeouts in
force, cancellation, lost tasks, failures and limits, concurrency, shutdown, logs."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest
import structlog

from heartbeat_worker import Worker, configure_logging
from heartbeat_worker._logging import token_hash
from heartbeat_worker.devserver import DevServer
from reliability.secrecy import find_secrets
from swfkit import SWFKit, attributes, event_types, schedule_activity_decision

from . import activities
from .activities import event

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]


async def schedule(
    kit: SWFKit,
    name: str,
    payload: Any = None,
    *,
    activity_id: str = "a1",
    heartbeat_timeout: str | None = None,
    start_to_close_timeout: str | None = "300",
) -> dict[str, Any]:
    """Start an execution whose decisions go to a task list of its own, and schedule one
    activity in it (so decision tasks of other executions never get in the way)."""
    decisions = f"decisions-{uuid.uuid4().hex[:8]}"
    execution = await kit.start(taskList={"name": decisions})
    task = await kit.poll_decision(task_list=decisions)
    await kit.schedule_activity(
        activity_id,
        task=task,
        activity_type={"name": name, "version": "1"},
        input=None if payload is None else json.dumps(payload),
        heartbeat_timeout=heartbeat_timeout,
        start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout="NONE",
        schedule_to_start_timeout="NONE",
    )
    execution["decisions"] = decisions
    return execution


async def request_cancel(kit: SWFKit, execution: dict[str, Any], activity_id: str = "a1") -> None:
    """Decide RequestCancelActivityTask; a signal gives the decider a decision task to do it."""
    await kit.client.signal_workflow_execution(
        domain=kit.domain, signalName="cancel", **_execution(execution)
    )
    task = await kit.poll_decision(task_list=execution["decisions"])
    await kit.request_cancel_activity(activity_id, task=task)


def _execution(execution: dict[str, Any]) -> dict[str, Any]:
    return {"workflowId": execution["workflowId"], "runId": execution["runId"]}


async def history(kit: SWFKit, execution: dict[str, Any]) -> list[dict[str, Any]]:
    return await kit.history(_execution(execution))


async def wait_for(
    kit: SWFKit, execution: dict[str, Any], wanted: set[str], deadline: float = 15
) -> Any:
    """The first event of ``execution`` whose type is in ``wanted``, within ``deadline``."""
    with anyio.fail_after(deadline):
        while True:
            for found in await history(kit, execution):
                if found["eventType"] in wanted:
                    return found
            await anyio.sleep(0.05)


async def closing_event(kit: SWFKit, execution: dict[str, Any], deadline: float = 15) -> Any:
    """The event that closed the activity task (completed, failed, canceled, timed out)."""
    closing = {
        "ActivityTaskCompleted",
        "ActivityTaskFailed",
        "ActivityTaskCanceled",
        "ActivityTaskTimedOut",
    }
    return await wait_for(kit, execution, closing, deadline)


async def heartbeat_details(
    server: DevServer, execution: dict[str, Any], activity_id: str = "a1", deadline: float = 10
) -> str:
    """The first heartbeat details the dev server received for the task (its public
    snapshot), within ``deadline``."""
    with anyio.fail_after(deadline):
        while True:
            task = server.snapshot().task(activity_id, execution["workflowId"])
            if task is not None and task.details is not None:
                return task.details
            await anyio.sleep(0.02)


async def wait_threading_event(name: str, deadline: float = 10) -> None:
    if not await anyio.to_thread.run_sync(event(name).wait, deadline):
        raise TimeoutError(f"{name} not set within {deadline} s")


async def test_activity_running_five_heartbeat_timeouts_completes_without_heartbeat_code(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([activities.sleeper], resolve_timeouts="history"):
        execution = await schedule(swfkit, "sleeper", 5.0, heartbeat_timeout="1")
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"]) == {"slept": 5.0, "heartbeat_timeout": 1.0}


async def test_registered_timeouts_are_used_by_default(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    """Without an override, the type's registered default (60 s here) is in force."""
    async with make_worker([activities.sleeper]):
        execution = await schedule(swfkit, "sleeper", 0.01)
        closed = await closing_event(swfkit, execution)
    assert json.loads(attributes(closed)["result"])["heartbeat_timeout"] == 60.0


async def test_per_schedule_override_is_honoured_only_with_history_resolution(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    # With "registered", the worker trusts the type's 60 s and, after its early first beat,
    # beats far too rarely for the 1.5 s the decider asked for: SWF times the task out.
    async with make_worker([activities.sleeper], resolve_timeouts="registered"):
        execution = await schedule(swfkit, "sleeper", 4.0, heartbeat_timeout="1.5")
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskTimedOut"
    assert attributes(closed)["timeoutType"] == "HEARTBEAT"

    async with make_worker([activities.sleeper], resolve_timeouts="history"):
        execution = await schedule(swfkit, "sleeper", 4.0, heartbeat_timeout="1.5")
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"])["heartbeat_timeout"] == 1.5


async def test_progress_details_reach_swf(
    swfkit: SWFKit, make_worker: MakeWorker, dev_server: DevServer
) -> None:
    event("reporter.release").clear()
    details = {"step": 3, "of": 4, "note": "caf\u00e9"}
    async with make_worker([activities.reporter], resolve_timeouts="history") as worker:
        execution = await schedule(swfkit, "reporter", details, heartbeat_timeout="2")
        try:
            received = await heartbeat_details(dev_server, execution)
        finally:
            event("reporter.release").set()
        closed = await closing_event(swfkit, execution)
    assert json.loads(received) == details
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert worker.outcomes == {"completed": 1}


async def test_async_cancellation_runs_cleanup_and_answers_canceled_in_time(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    activities.log.clear()
    event("cancellable.started").clear()
    heartbeat_timeout = 2.0
    interval = heartbeat_timeout / 3
    async with make_worker([activities.cancellable], resolve_timeouts="history"):
        execution = await schedule(swfkit, "cancellable", heartbeat_timeout=str(heartbeat_timeout))
        await wait_threading_event("cancellable.started")
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled"
    assert json.loads(attributes(closed)["details"]) == {"phase": "cleaned up"}
    assert activities.log == ["async cleanup ran"]
    history_events = await history(swfkit, execution)
    requested = next(e for e in history_events if e["eventType"] == "ActivityTaskCancelRequested")
    latency = (closed["eventTimestamp"] - requested["eventTimestamp"]).total_seconds()
    assert latency <= interval + 1.0


async def test_sync_cancellation_raises_in_the_thread_and_sends_its_details(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    activities.log.clear()
    event("blocking.started").clear()
    async with make_worker([activities.blocking_cancellable], resolve_timeouts="history"):
        execution = await schedule(swfkit, "blocking_cancellable", heartbeat_timeout="2")
        await wait_threading_event("blocking.started")
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled"
    assert json.loads(attributes(closed)["details"]) == {"undone": "everything"}
    assert activities.log == ["sync cleanup ran"]
    history_events = await history(swfkit, execution)
    requested = next(e for e in history_events if e["eventType"] == "ActivityTaskCancelRequested")
    latency = (closed["eventTimestamp"] - requested["eventTimestamp"]).total_seconds()
    assert latency <= 2 / 3 + 1.0  # one heartbeat interval, and a second of slack


async def test_activity_that_finishes_despite_cancel_is_answered_completed(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    activities.log.clear()
    async with make_worker([activities.polite_blocking], resolve_timeouts="history"):
        execution = await schedule(swfkit, "polite_blocking", heartbeat_timeout="2")
        await wait_for(swfkit, execution, {"ActivityTaskStarted"})
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"]) == "finished anyway"


async def test_task_closed_by_swf_stops_the_activity_without_an_answer(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    activities.log.clear()
    event("cancellable.started").clear()
    async with make_worker([activities.cancellable], resolve_timeouts="history") as worker:
        execution = await schedule(swfkit, "cancellable", heartbeat_timeout="2")
        await wait_threading_event("cancellable.started")
        await swfkit.client.terminate_workflow_execution(
            domain=swfkit.domain, workflowId=execution["workflowId"], runId=execution["runId"]
        )
        with anyio.fail_after(5):
            await worker.wait_handled(1)
    assert activities.log == ["async cleanup ran"]
    assert worker.outcomes == {"left to SWF": 1}


@pytest.mark.parametrize(
    ("name", "payload", "reason_pattern"),
    [
        ("failing", "boom", r"^ValueError: boom$"),
        ("huge_result", 40000, r"^result too large: result is 40002 characters long; .*32768"),
        ("unserializable", None, r"^result is not JSON-serializable: "),
        ("add", {"a": 1, "c": 2}, r"^bad input: input does not fit the activity's signature"),
        ("add", "not an object", r"^bad input: an activity with several parameters takes"),
    ],
)
async def test_failures_are_answered_with_a_clear_reason(
    swfkit: SWFKit, make_worker: MakeWorker, name: str, payload: Any, reason_pattern: str
) -> None:
    chosen = [getattr(activities, name)]
    async with make_worker(chosen) as worker:
        execution = await schedule(swfkit, name, payload)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskFailed"
    reason = attributes(closed)["reason"]
    assert len(reason) <= 256
    assert re.search(reason_pattern, reason), reason
    assert worker.outcomes == {"failed": 1}


async def test_exception_details_keep_the_traceback(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([activities.shouting]):
        execution = await schedule(swfkit, "shouting", 1_000_000)
        closed = await closing_event(swfkit, execution)
    details = attributes(closed)["details"]
    reason = attributes(closed)["reason"]
    assert len(reason) == 256
    assert len(details) <= 32768
    assert "Traceback (most recent call last)" in details
    assert "in shouting" in details
    assert reason.startswith("RuntimeError: mmm")


async def test_malformed_input_and_unknown_type_are_failed(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    await swfkit.register_activity_type({"name": "nobody-runs-this", "version": "1"})
    async with make_worker([activities.add]) as worker:
        execution = await swfkit.start(taskList={"name": "malformed"})
        await swfkit.schedule_activity(
            "a1",
            task=await swfkit.poll_decision(task_list="malformed"),
            activity_type={"name": "add", "version": "1"},
            input="{not json",
        )
        closed = await closing_event(swfkit, execution)
        assert closed["eventType"] == "ActivityTaskFailed"
        assert attributes(closed)["reason"].startswith("bad input: input is not valid JSON")

        execution = await schedule(swfkit, "nobody-runs-this")
        closed = await closing_event(swfkit, execution)
    assert attributes(closed)["reason"] == (
        "unknown activity type 'nobody-runs-this' version '1': this worker does not implement it"
    )
    assert worker.outcomes == {"failed": 2}


async def test_sixty_four_concurrent_activities_outlive_their_heartbeat_timeout(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    """Each runs past two heartbeat timeouts. (The timeout is 4 s, not less: 64 tasks, the
    worker and the dev server share one event loop here, and the test must hold beside two
    CPU burners; benchmarks/heartbeat_scale.py measures how far one worker scales.)"""
    count = 64
    # One execution schedules them all in one decision, as a decider fanning out would: the
    # test's own calls then cost next to nothing beside the worker's.
    execution = await swfkit.start()
    decisions = [
        schedule_activity_decision(
            f"a{i}",
            activity_type={"name": "sleeper", "version": "1"},
            input="9.0",
            heartbeat_timeout="4",
            start_to_close_timeout="300",
        )
        for i in range(count)
    ]
    async with make_worker(
        [activities.sleeper], max_concurrency=count, pollers=4, resolve_timeouts="history"
    ) as worker:
        await swfkit.decide(decisions)
        with anyio.fail_after(60):
            await worker.wait_handled(count)
    assert worker.outcomes == {"completed": count}
    types = event_types(await history(swfkit, execution))
    assert types.count("ActivityTaskCompleted") == count
    assert "ActivityTaskTimedOut" not in types


async def test_shutdown_answers_every_task(swfkit: SWFKit, make_worker: MakeWorker) -> None:
    worker = make_worker(
        [activities.sleeper, activities.cancellable],
        graceful_shutdown_timeout=0.5,
        cancel_grace_period=1.0,
        resolve_timeouts="history",
    )
    async with worker:
        quick = await schedule(swfkit, "sleeper", 0.2, activity_id="quick")
        slow = await schedule(swfkit, "cancellable", activity_id="slow", heartbeat_timeout="2")
        await wait_for(swfkit, slow, {"ActivityTaskStarted"})
        await wait_for(swfkit, quick, {"ActivityTaskStarted"})
    # Leaving the block shut the worker down gracefully: the quick task finished within the
    # grace period, the slow one was stopped and handed back.
    quick_closed = await closing_event(swfkit, quick)
    slow_closed = await closing_event(swfkit, slow)
    assert quick_closed["eventType"] == "ActivityTaskCompleted"
    assert slow_closed["eventType"] == "ActivityTaskFailed"
    assert attributes(slow_closed)["reason"] == "worker shutdown"
    assert worker.outcomes == {"completed": 1, "failed": 1}


async def test_logs_carry_task_fields_and_a_token_hash_never_the_token(
    swfkit: SWFKit, make_worker: MakeWorker, task_tokens: set[str]
) -> None:
    stream = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=stream)  # "task received" is DEBUG
    try:
        async with make_worker([activities.progress, activities.failing]):
            execution = await schedule(swfkit, "progress", [2, 0.1], heartbeat_timeout="3")
            failed = await schedule(swfkit, "failing", "boom", activity_id="f1")
            closed = await closing_event(swfkit, execution)
            await closing_event(swfkit, failed)
    finally:
        structlog.reset_defaults()
    assert closed["eventType"] == "ActivityTaskCompleted"
    history_events = await history(swfkit, execution)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    received = next(line for line in lines if line["event"] == "task received")
    assert received["workflow_id"] == execution["workflowId"]
    assert received["run_id"] == execution["runId"]
    assert received["activity_type"] == "progress"
    assert received["activity_version"] == "1"
    assert received["activity_id"] == "a1"
    assert received["domain"] == swfkit.domain
    completed = next(line for line in lines if line["event"] == "task completed")
    assert completed["duration"] > 0
    assert any(e["eventType"] == "ActivityTaskStarted" for e in history_events)
    # Each line about a task names it by the hash of its real token, and no line holds a
    # token, whole or in part (the check of the reliability suite, on a fast run).
    assert len(task_tokens) == 2
    hashes = {line["token"] for line in lines if "token" in line}
    assert hashes == {token_hash(token) for token in task_tokens}
    assert received["token"] in hashes
    assert find_secrets(text.splitlines(), task_tokens) == []


async def test_activity_blocking_the_event_loop_is_named_in_a_warning(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        async with make_worker([activities.loop_blocker], resolve_timeouts="history"):
            # Interval 0.5 s; the activity blocks the loop for 1.2 s.
            execution = await schedule(swfkit, "loop_blocker", 1.2, heartbeat_timeout="1.5")
            closed = await closing_event(swfkit, execution)
    finally:
        structlog.reset_defaults()
    assert closed["eventType"] == "ActivityTaskCompleted"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    warnings = [line for line in lines if line["event"].startswith("the event loop is blocked")]
    assert len(warnings) == 1
    assert warnings[0]["activity"] == "loop_blocker:1"
    assert warnings[0]["blocked_for"] >= 0.5
