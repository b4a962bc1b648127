"""The activity task life cycle, as SWF documents it, through aiobotocore and boto3."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from heartbeat_worker.devserver import DevServer
from swfkit import (
    ACTIVITY_TASK_LIST,
    TEST_POLL_TIMEOUT,
    SWFKit,
    attributes,
    event_types,
    schedule_activity_decision,
)

pytestmark = pytest.mark.anyio


async def _count_pending(kit: SWFKit, task_list: str = ACTIVITY_TASK_LIST) -> int:
    reply = await kit.client.count_pending_activity_tasks(
        domain=kit.domain, taskList={"name": task_list}
    )
    count: int = reply["count"]
    return count


async def test_a_poll_waits_for_a_task_then_gets_it(kit: SWFKit, dev_server: DevServer) -> None:
    await kit.start()
    got: dict[str, Any] = {}

    async def poll() -> None:
        got["task"] = await kit.client.poll_for_activity_task(
            domain=kit.domain, taskList={"name": ACTIVITY_TASK_LIST}
        )
        got["at"] = time.monotonic()

    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        with anyio.fail_after(10):  # the poll reached the server: it must then wait
            while not dev_server.snapshot().polls:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        scheduled_at = time.monotonic()
        await kit.schedule_activity("a1")
    assert got["task"]["activityId"] == "a1"
    assert got["task"]["taskToken"]
    assert got["at"] >= scheduled_at


async def test_an_empty_poll_answers_after_the_poll_timeout_without_token(kit: SWFKit) -> None:
    started = time.monotonic()
    reply = await kit.client.poll_for_activity_task(
        domain=kit.domain, taskList={"name": "nobody-schedules-here"}
    )
    elapsed = time.monotonic() - started
    assert not reply.get("taskToken")
    assert reply["startedEventId"] == 0
    assert TEST_POLL_TIMEOUT * 0.9 <= elapsed < TEST_POLL_TIMEOUT + 2
    decision = await kit.client.poll_for_decision_task(
        domain=kit.domain, taskList={"name": "nobody-decides-here"}
    )
    assert not decision.get("taskToken")
    assert decision["startedEventId"] == 0


async def test_each_task_goes_to_exactly_one_poll_oldest_first(kit: SWFKit) -> None:
    await kit.start()
    await kit.decide([schedule_activity_decision(f"a{i}") for i in range(3)])
    assert await _count_pending(kit) == 3
    first = await kit.poll_activity()
    assert first["activityId"] == "a0"
    replies: list[dict[str, Any]] = []

    async def poll() -> None:
        replies.append(
            await kit.client.poll_for_activity_task(
                domain=kit.domain, taskList={"name": ACTIVITY_TASK_LIST}
            )
        )

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(poll)
    got = sorted(reply["activityId"] for reply in replies if reply.get("taskToken"))
    assert got == ["a1", "a2"]
    assert sum(1 for reply in replies if not reply.get("taskToken")) == 2
    assert await _count_pending(kit) == 0


async def test_heartbeats_reset_the_heartbeat_clock_and_the_timeout_keeps_details(
    kit: SWFKit,
) -> None:
    task = await kit.start_activity("a1", heartbeat_timeout="0.5")
    token = task["taskToken"]
    # Heartbeat for twice the timeout: each heartbeat resets the clock, so no timeout.
    for step in range(10):
        reply = await kit.client.record_activity_task_heartbeat(
            taskToken=token, details=f"step {step}"
        )
        assert reply["cancelRequested"] is False
        await anyio.sleep(0.1)
    timed_out = await kit.wait_for_event(task["workflowExecution"], "ActivityTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "HEARTBEAT"
    assert attributes(timed_out)["details"] == "step 9"
    assert attributes(timed_out)["startedEventId"] == task["startedEventId"]
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):
        await kit.client.record_activity_task_heartbeat(taskToken=token)


async def test_the_heartbeat_clock_starts_when_the_task_starts(kit: SWFKit) -> None:
    await kit.start()
    await kit.schedule_activity("a1", heartbeat_timeout="0.6")
    await anyio.sleep(0.8)  # longer than the heartbeat timeout, but the task has not started
    task = await kit.poll_activity()
    reply = await kit.client.record_activity_task_heartbeat(taskToken=task["taskToken"])
    assert reply["cancelRequested"] is False


async def test_start_to_close_applies_however_often_the_task_heartbeats(kit: SWFKit) -> None:
    task = await kit.start_activity("a1", start_to_close_timeout="0.6", heartbeat_timeout="0.3")
    execution = task["workflowExecution"]
    deadline = time.monotonic() + 5
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):  # noqa: PT012
        while time.monotonic() < deadline:
            await kit.client.record_activity_task_heartbeat(taskToken=task["taskToken"])
            await anyio.sleep(0.05)
    timed_out = await kit.wait_for_event(execution, "ActivityTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "START_TO_CLOSE"


async def test_schedule_to_start_times_out_a_task_nobody_polls(kit: SWFKit) -> None:
    execution = await kit.start()
    await kit.schedule_activity("a1", schedule_to_start_timeout="0.3")
    timed_out = await kit.wait_for_event(execution, "ActivityTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "SCHEDULE_TO_START"
    assert attributes(timed_out)["startedEventId"] == 0
    assert await _count_pending(kit) == 0


async def test_schedule_to_close_covers_waiting_and_running(kit: SWFKit) -> None:
    await kit.start()
    await kit.schedule_activity("a1", schedule_to_close_timeout="1.5")
    await anyio.sleep(0.5)
    task = await kit.poll_activity()
    timed_out = await kit.wait_for_event(task["workflowExecution"], "ActivityTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "SCHEDULE_TO_CLOSE"
    assert attributes(timed_out)["startedEventId"] == task["startedEventId"]


async def test_effective_timeouts_come_from_the_decision_else_the_type(kit: SWFKit) -> None:
    special = {"name": "with-defaults", "version": "1"}
    await kit.register_activity_type(
        special,
        heartbeat_timeout="70",
        schedule_to_start_timeout="80",
        schedule_to_close_timeout="90",
        start_to_close_timeout="60",
    )
    execution = await kit.start()
    await kit.schedule_activity("a1", activity_type=special, heartbeat_timeout="0.5")
    events = await kit.history(execution)
    scheduled = attributes(next(e for e in events if e["eventType"] == "ActivityTaskScheduled"))
    assert scheduled["heartbeatTimeout"] == "0.5"
    assert scheduled["scheduleToStartTimeout"] == "80"
    assert scheduled["scheduleToCloseTimeout"] == "90"
    assert scheduled["startToCloseTimeout"] == "60"
    assert scheduled["taskList"] == {"name": ACTIVITY_TASK_LIST}
    task = await kit.poll_activity()
    # The decision's 0.5 s is in force, not the type's 70 s.
    timed_out = await kit.wait_for_event(execution, "ActivityTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "HEARTBEAT"
    assert task["activityType"] == special


@pytest.mark.parametrize(
    ("missing", "cause"),
    [
        ("schedule_to_close_timeout", "DEFAULT_SCHEDULE_TO_CLOSE_TIMEOUT_UNDEFINED"),
        ("schedule_to_start_timeout", "DEFAULT_SCHEDULE_TO_START_TIMEOUT_UNDEFINED"),
        ("start_to_close_timeout", "DEFAULT_START_TO_CLOSE_TIMEOUT_UNDEFINED"),
        ("heartbeat_timeout", "DEFAULT_HEARTBEAT_TIMEOUT_UNDEFINED"),
        ("task_list", "DEFAULT_TASK_LIST_UNDEFINED"),
    ],
)
async def test_schedule_activity_fails_when_a_default_is_undefined(
    kit: SWFKit, missing: str, cause: str
) -> None:
    partial = {"name": "partial", "version": "1"}
    await kit.register_activity_type(partial, **{missing: None})
    execution = await kit.start()
    options: dict[str, Any] = {"activity_type": partial}
    if missing == "task_list":
        options["task_list"] = None
    await kit.schedule_activity("a1", **options)
    failed = await kit.wait_for_event(execution, "ScheduleActivityTaskFailed")
    assert attributes(failed)["cause"] == cause
    assert attributes(failed)["activityId"] == "a1"
    assert attributes(failed)["activityType"] == partial
    # The decider gets a new decision task to react to the failure.
    task = await kit.poll_decision()
    assert "ScheduleActivityTaskFailed" in event_types(task["events"])


async def test_schedule_activity_fails_on_unknown_deprecated_or_duplicate(kit: SWFKit) -> None:
    old = {"name": "old", "version": "1"}
    await kit.register_activity_type(old)
    await kit.client.deprecate_activity_type(domain=kit.domain, activityType=old)
    execution = await kit.start()
    await kit.decide(
        [
            schedule_activity_decision("a1"),
            schedule_activity_decision("a1"),
            schedule_activity_decision("a2", activity_type={"name": "nope", "version": "1"}),
            schedule_activity_decision("a3", activity_type=old),
        ]
    )
    events = await kit.history(execution)
    causes = [
        attributes(e)["cause"] for e in events if e["eventType"] == "ScheduleActivityTaskFailed"
    ]
    assert causes == [
        "ACTIVITY_ID_ALREADY_IN_USE",
        "ACTIVITY_TYPE_DOES_NOT_EXIST",
        "ACTIVITY_TYPE_DEPRECATED",
    ]
    assert await _count_pending(kit) == 1


async def test_cancelling_a_started_task(kit: SWFKit) -> None:
    task = await kit.start_activity("a1")
    token = task["taskToken"]
    assert (await kit.client.record_activity_task_heartbeat(taskToken=token))[
        "cancelRequested"
    ] is False
    await kit.request_cancel_activity("a1")
    execution = task["workflowExecution"]
    requested = await kit.wait_for_event(execution, "ActivityTaskCancelRequested")
    assert attributes(requested)["activityId"] == "a1"
    reply = await kit.client.record_activity_task_heartbeat(taskToken=token, details="undoing")
    assert reply["cancelRequested"] is True
    await kit.client.respond_activity_task_canceled(taskToken=token, details="undone")
    canceled = await kit.wait_for_event(execution, "ActivityTaskCanceled")
    assert attributes(canceled) == {
        "details": "undone",
        "scheduledEventId": attributes(canceled)["scheduledEventId"],
        "startedEventId": task["startedEventId"],
        "latestCancelRequestedEventId": requested["eventId"],
    }
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):
        await kit.client.record_activity_task_heartbeat(taskToken=token)
    # The decider hears of the cancellation.
    decision = await kit.poll_decision()
    assert event_types(decision["events"])[-3:] == [
        "ActivityTaskCanceled",
        "DecisionTaskScheduled",
        "DecisionTaskStarted",
    ]


async def test_a_worker_may_complete_a_task_despite_a_cancel_request(kit: SWFKit) -> None:
    task = await kit.start_activity("a1")
    await kit.request_cancel_activity("a1")
    await kit.client.respond_activity_task_completed(taskToken=task["taskToken"], result="done")
    completed = await kit.wait_for_event(task["workflowExecution"], "ActivityTaskCompleted")
    assert attributes(completed)["result"] == "done"


async def test_cancelling_a_task_not_yet_started_cancels_it_at_once(kit: SWFKit) -> None:
    execution = await kit.start()
    await kit.schedule_activity("a1")
    assert await _count_pending(kit) == 1
    await kit.request_cancel_activity("a1")
    events = await kit.history(execution)
    assert event_types(events)[-3:] == [
        "ActivityTaskCancelRequested",
        "ActivityTaskCanceled",
        "DecisionTaskScheduled",
    ]
    canceled = attributes(events[-2])
    assert canceled["startedEventId"] == 0
    assert canceled["latestCancelRequestedEventId"] == events[-3]["eventId"]
    assert await _count_pending(kit) == 0


async def test_cancelling_an_unknown_activity_fails(kit: SWFKit) -> None:
    execution = await kit.start()
    await kit.request_cancel_activity("never-scheduled")
    failed = await kit.wait_for_event(execution, "RequestCancelActivityTaskFailed")
    assert attributes(failed)["cause"] == "ACTIVITY_ID_UNKNOWN"
    assert attributes(failed)["activityId"] == "never-scheduled"


@pytest.mark.parametrize(
    "answer",
    [
        "record_activity_task_heartbeat",
        "respond_activity_task_completed",
        "respond_activity_task_failed",
        "respond_activity_task_canceled",
    ],
)
async def test_calls_on_a_closed_unknown_or_malformed_token_fail(kit: SWFKit, answer: str) -> None:
    task = await kit.start_activity("a1")
    await kit.client.respond_activity_task_completed(taskToken=task["taskToken"])
    call = getattr(kit.client, answer)
    for token in (task["taskToken"], "x" * 43, "not a token at all!", "x"):
        with pytest.raises(kit.client.exceptions.UnknownResourceFault):
            await call(taskToken=token)


async def test_answers_record_their_events(kit: SWFKit) -> None:
    execution = await kit.start()
    await kit.decide([schedule_activity_decision("ok"), schedule_activity_decision("bad")])
    first = await kit.poll_activity()
    second = await kit.poll_activity()
    await kit.client.respond_activity_task_completed(taskToken=first["taskToken"], result="r")
    await kit.client.respond_activity_task_failed(
        taskToken=second["taskToken"], reason="ValueError", details="trace"
    )
    await kit.wait_for_event(execution, "ActivityTaskFailed")
    events = await kit.history(execution)
    by_type = {e["eventType"]: attributes(e) for e in events}
    assert by_type["ActivityTaskCompleted"]["result"] == "r"
    assert by_type["ActivityTaskFailed"]["reason"] == "ValueError"
    assert by_type["ActivityTaskFailed"]["details"] == "trace"
    assert by_type["ActivityTaskFailed"]["startedEventId"] == second["startedEventId"]
    started = [attributes(e) for e in events if e["eventType"] == "ActivityTaskStarted"]
    assert {s["identity"] for s in started} == {"swfkit"}


@pytest.mark.parametrize("close", ["complete", "terminate"])
async def test_closing_the_workflow_closes_its_activity_tasks(kit: SWFKit, close: str) -> None:
    execution = await kit.start()
    await kit.decide([schedule_activity_decision("running"), schedule_activity_decision("waiting")])
    running = await kit.poll_activity()
    assert await _count_pending(kit) == 1
    if close == "complete":
        await kit.client.respond_activity_task_completed(taskToken=running["taskToken"])
        await kit.decide([{"decisionType": "CompleteWorkflowExecution"}])
        with pytest.raises(kit.client.exceptions.UnknownResourceFault):
            await kit.client.respond_activity_task_completed(taskToken=running["taskToken"])
    else:
        await kit.client.terminate_workflow_execution(
            domain=kit.domain, workflowId=execution["workflowId"], reason="test"
        )
        with pytest.raises(kit.client.exceptions.UnknownResourceFault):
            await kit.client.record_activity_task_heartbeat(taskToken=running["taskToken"])
    assert await _count_pending(kit) == 0
    described = await kit.client.describe_workflow_execution(domain=kit.domain, execution=execution)
    assert described["executionInfo"]["executionStatus"] == "CLOSED"
    assert described["openCounts"]["openActivityTasks"] == 0


async def test_decimal_and_none_timeouts_are_accepted_bad_ones_refused(kit: SWFKit) -> None:
    await kit.start()
    task = await kit.poll_decision()
    for bad in ("abc", "-1", "1e3", "1.", ""):
        with pytest.raises(ClientError) as caught:
            await kit.decide([schedule_activity_decision("a1", heartbeat_timeout=bad)], task)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
    # The refused answers changed nothing: the same decision task can still be answered.
    accepted = [
        schedule_activity_decision("a1", heartbeat_timeout="0.25"),
        schedule_activity_decision("a2", heartbeat_timeout="NONE"),
    ]
    await kit.decide(accepted, task)
    polled = {(await kit.poll_activity())["activityId"] for _ in range(2)}
    assert polled == {"a1", "a2"}
    assert kit.execution is not None
    scheduled = {
        attributes(e)["activityId"]: attributes(e)["heartbeatTimeout"]
        for e in await kit.history(kit.execution)
        if e["eventType"] == "ActivityTaskScheduled"
    }
    assert scheduled == {"a1": "0.25", "a2": "NONE"}
