"""Executions and decisions: timeouts, timers, markers, signals, cancellation, listing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from swfkit import (
    DECISION_TASK_LIST,
    WORKFLOW_TYPE,
    SWFKit,
    assert_matches_shape,
    attributes,
    complete_workflow_decision,
    event_types,
    schedule_activity_decision,
)

pytestmark = pytest.mark.anyio


async def _describe(kit: SWFKit, execution: dict[str, str]) -> dict[str, Any]:
    reply: dict[str, Any] = await kit.client.describe_workflow_execution(
        domain=kit.domain, execution=execution
    )
    return reply


async def test_a_decision_task_times_out_and_is_scheduled_again(kit: SWFKit) -> None:
    fast = {"name": "fast-decider", "version": "1"}
    await kit.register_workflow_type(fast, decision_timeout="0.3")
    execution = await kit.start(workflowType=fast)
    first = await kit.poll_decision()
    timed_out = await kit.wait_for_event(execution, "DecisionTaskTimedOut")
    assert attributes(timed_out)["timeoutType"] == "START_TO_CLOSE"
    assert attributes(timed_out)["startedEventId"] == first["startedEventId"]
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):
        await kit.client.respond_decision_task_completed(taskToken=first["taskToken"])
    second = await kit.poll_decision()
    assert event_types(second["events"])[-3:] == [
        "DecisionTaskTimedOut",
        "DecisionTaskScheduled",
        "DecisionTaskStarted",
    ]
    assert second["previousStartedEventId"] == 0


async def test_a_workflow_times_out_and_closes_its_tasks(kit: SWFKit) -> None:
    execution = await kit.start(executionStartToCloseTimeout="1.5")
    await kit.schedule_activity("a1")
    task = await kit.poll_activity()
    timed_out = await kit.wait_for_event(execution, "WorkflowExecutionTimedOut")
    assert attributes(timed_out) == {"timeoutType": "START_TO_CLOSE", "childPolicy": "TERMINATE"}
    info = (await _describe(kit, execution))["executionInfo"]
    assert (info["executionStatus"], info["closeStatus"]) == ("CLOSED", "TIMED_OUT")
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):
        await kit.client.record_activity_task_heartbeat(taskToken=task["taskToken"])


async def test_timers_fire_and_can_be_cancelled(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    await swfkit.decide(
        [
            {"decisionType": "StartTimer", "startTimerDecisionAttributes": attrs}
            for attrs in (
                {"timerId": "soon", "startToFireTimeout": "0.2", "control": "c"},
                {"timerId": "later", "startToFireTimeout": "60"},
            )
        ]
    )
    fired = await swfkit.wait_for_event(execution, "TimerFired")
    assert attributes(fired)["timerId"] == "soon"
    await swfkit.decide(
        [
            {"decisionType": "CancelTimer", "cancelTimerDecisionAttributes": {"timerId": "later"}},
            {"decisionType": "CancelTimer", "cancelTimerDecisionAttributes": {"timerId": "soon"}},
            {
                "decisionType": "StartTimer",
                "startTimerDecisionAttributes": {"timerId": "x", "startToFireTimeout": "60"},
            },
            {
                "decisionType": "StartTimer",
                "startTimerDecisionAttributes": {"timerId": "x", "startToFireTimeout": "60"},
            },
        ]
    )
    events = await swfkit.history(execution)
    assert event_types(events)[-6:-1] == [
        "DecisionTaskCompleted",
        "TimerCanceled",
        "CancelTimerFailed",
        "TimerStarted",
        "StartTimerFailed",
    ]
    assert attributes(events[-4])["cause"] == "TIMER_ID_UNKNOWN"
    assert attributes(events[-2])["cause"] == "TIMER_ID_ALREADY_IN_USE"
    assert (await _describe(swfkit, execution))["openCounts"]["openTimers"] == 1


async def test_markers_signals_and_completion(swfkit: SWFKit) -> None:
    execution = await swfkit.start(input="in")
    await swfkit.decide(
        [
            {
                "decisionType": "RecordMarker",
                "recordMarkerDecisionAttributes": {"markerName": "m", "details": "d"},
            }
        ]
    )
    await swfkit.client.signal_workflow_execution(
        domain=swfkit.domain, workflowId=execution["workflowId"], signalName="go", input="now"
    )
    task = await swfkit.poll_decision()
    signaled = [e for e in task["events"] if e["eventType"] == "WorkflowExecutionSignaled"]
    assert attributes(signaled[-1]) == {"signalName": "go", "input": "now"}
    marker = next(e for e in task["events"] if e["eventType"] == "MarkerRecorded")
    assert attributes(marker)["details"] == "d"
    await swfkit.decide([complete_workflow_decision("done")], task)
    events = await swfkit.history(execution)
    assert events[-1]["eventType"] == "WorkflowExecutionCompleted"
    assert attributes(events[-1])["result"] == "done"
    info = (await _describe(swfkit, execution))["executionInfo"]
    assert info["closeStatus"] == "COMPLETED"
    with pytest.raises(swfkit.client.exceptions.UnknownResourceFault):
        await swfkit.client.signal_workflow_execution(
            domain=swfkit.domain, workflowId=execution["workflowId"], signalName="late"
        )


async def test_closing_on_unhandled_events_fails(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    task = await swfkit.poll_decision()
    await swfkit.client.signal_workflow_execution(
        domain=swfkit.domain, workflowId=execution["workflowId"], signalName="meanwhile"
    )
    await swfkit.decide([complete_workflow_decision()], task)
    events = await swfkit.history(execution)
    assert event_types(events)[-3:] == [
        "DecisionTaskCompleted",
        "CompleteWorkflowExecutionFailed",
        "DecisionTaskScheduled",
    ]
    assert attributes(events[-2])["cause"] == "UNHANDLED_DECISION"
    await swfkit.decide([{"decisionType": "FailWorkflowExecution"}])
    info = (await _describe(swfkit, execution))["executionInfo"]
    assert info["closeStatus"] == "FAILED"


async def test_a_cancel_request_reaches_the_decider(kit: SWFKit) -> None:
    execution = await kit.start()
    await kit.schedule_activity("a1")
    await kit.client.request_cancel_workflow_execution(
        domain=kit.domain, workflowId=execution["workflowId"]
    )
    task = await kit.poll_decision()
    assert "WorkflowExecutionCancelRequested" in event_types(task["events"])
    assert (await _describe(kit, execution))["executionInfo"]["cancelRequested"] is True
    await kit.decide(
        [
            {
                "decisionType": "CancelWorkflowExecution",
                "cancelWorkflowExecutionDecisionAttributes": {"details": "bye"},
            }
        ],
        task,
    )
    events = await kit.history(execution)
    assert events[-1]["eventType"] == "WorkflowExecutionCanceled"
    assert attributes(events[-1])["details"] == "bye"


async def test_terminate_and_duplicate_starts(swfkit: SWFKit) -> None:
    execution = await swfkit.start("same-id")
    with pytest.raises(swfkit.client.exceptions.WorkflowExecutionAlreadyStartedFault):
        await swfkit.start("same-id")
    await swfkit.client.terminate_workflow_execution(
        domain=swfkit.domain, workflowId="same-id", reason="r", details="d"
    )
    events = await swfkit.history(execution)
    assert attributes(events[-1]) == {"reason": "r", "details": "d", "childPolicy": "TERMINATE"}
    with pytest.raises(swfkit.client.exceptions.UnknownResourceFault):
        await swfkit.client.terminate_workflow_execution(domain=swfkit.domain, workflowId="same-id")
    second = await swfkit.start("same-id")
    assert second["runId"] != execution["runId"]


async def test_history_and_decision_events_are_paged(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    await swfkit.decide([schedule_activity_decision(f"a{i}") for i in range(5)])
    full = await swfkit.history(execution)
    assert [e["eventId"] for e in full] == list(range(1, 10))
    assert await swfkit.history(execution, reverse=True) == full[::-1]
    client = swfkit.client
    first = await client.get_workflow_execution_history(
        domain=swfkit.domain, execution=execution, maximumPageSize=4
    )
    assert [e["eventId"] for e in first["events"]] == [1, 2, 3, 4]
    second = await client.get_workflow_execution_history(
        domain=swfkit.domain,
        execution=execution,
        maximumPageSize=4,
        nextPageToken=first["nextPageToken"],
    )
    assert [e["eventId"] for e in second["events"]] == [5, 6, 7, 8]
    await client.signal_workflow_execution(
        domain=swfkit.domain, workflowId=execution["workflowId"], signalName="s"
    )
    page = await client.poll_for_decision_task(
        domain=swfkit.domain, taskList={"name": DECISION_TASK_LIST}, maximumPageSize=5
    )
    events = list(page["events"])
    while page.get("nextPageToken"):
        page = await client.poll_for_decision_task(
            domain=swfkit.domain,
            taskList={"name": DECISION_TASK_LIST},
            maximumPageSize=5,
            nextPageToken=page["nextPageToken"],
        )
        events.extend(page["events"])
    assert [e["eventId"] for e in events] == list(range(1, 13))
    assert page["previousStartedEventId"] == 3
    with pytest.raises(client.exceptions.ClientError):
        await client.get_workflow_execution_history(
            domain=swfkit.domain, execution=execution, nextPageToken="garbage"
        )


async def test_registration_listing_and_deprecation(swfkit: SWFKit) -> None:
    client = swfkit.client
    faults = client.exceptions
    domains = await client.list_domains(registrationStatus="REGISTERED")
    assert [d["name"] for d in domains["domainInfos"]] == [swfkit.domain]
    described = await client.describe_workflow_type(
        domain=swfkit.domain, workflowType=WORKFLOW_TYPE
    )
    assert described["configuration"]["defaultTaskList"] == {"name": DECISION_TASK_LIST}
    await client.deprecate_workflow_type(domain=swfkit.domain, workflowType=WORKFLOW_TYPE)
    with pytest.raises(faults.TypeDeprecatedFault):
        await client.deprecate_workflow_type(domain=swfkit.domain, workflowType=WORKFLOW_TYPE)
    with pytest.raises(faults.TypeDeprecatedFault):
        await swfkit.start()
    listed = await client.list_workflow_types(domain=swfkit.domain, registrationStatus="DEPRECATED")
    assert [t["workflowType"] for t in listed["typeInfos"]] == [WORKFLOW_TYPE]
    await client.undeprecate_workflow_type(domain=swfkit.domain, workflowType=WORKFLOW_TYPE)
    for version in "23":
        await client.register_activity_type(domain=swfkit.domain, name="many", version=version)
    page = await client.list_activity_types(
        domain=swfkit.domain, registrationStatus="REGISTERED", maximumPageSize=2
    )
    rest = await client.list_activity_types(
        domain=swfkit.domain,
        registrationStatus="REGISTERED",
        maximumPageSize=2,
        nextPageToken=page["nextPageToken"],
    )
    names = [t["activityType"]["name"] for t in page["typeInfos"] + rest["typeInfos"]]
    assert sorted(names) == ["hw-activity", "many", "many"]
    with pytest.raises(faults.TypeNotDeprecatedFault):
        await client.delete_activity_type(
            domain=swfkit.domain, activityType={"name": "many", "version": "2"}
        )
    await client.deprecate_domain(name=swfkit.domain)
    with pytest.raises(faults.DomainDeprecatedFault):
        await swfkit.start()


async def test_listing_and_counting_executions(swfkit: SWFKit) -> None:
    client = swfkit.client
    since = {"oldestDate": time.time() - 60}
    first = await swfkit.start("first", tagList=["blue"])
    await swfkit.start("second")
    await client.terminate_workflow_execution(domain=swfkit.domain, workflowId="first")
    opened = await client.list_open_workflow_executions(domain=swfkit.domain, startTimeFilter=since)
    assert [i["execution"]["workflowId"] for i in opened["executionInfos"]] == ["second"]
    closed = await client.list_closed_workflow_executions(
        domain=swfkit.domain, startTimeFilter=since, tagFilter={"tag": "blue"}
    )
    assert [i["execution"] for i in closed["executionInfos"]] == [first]
    assert closed["executionInfos"][0]["closeStatus"] == "TERMINATED"
    count = await client.count_closed_workflow_executions(
        domain=swfkit.domain, closeTimeFilter=since, closeStatusFilter={"status": "COMPLETED"}
    )
    assert count["count"] == 0
    count = await client.count_open_workflow_executions(
        domain=swfkit.domain, startTimeFilter=since, executionFilter={"workflowId": "second"}
    )
    assert count["count"] == 1
    pending = await client.count_pending_decision_tasks(
        domain=swfkit.domain, taskList={"name": DECISION_TASK_LIST}
    )
    assert pending["count"] == 1


async def test_every_event_type_matches_the_model(raw: Any, swfkit: SWFKit) -> None:
    """One execution that records every emulated event type, checked as raw JSON."""
    execution = await swfkit.start(input="i", tagList=["t"])
    await swfkit.decide(
        [
            schedule_activity_decision("done", input="x"),
            schedule_activity_decision("failing"),
            schedule_activity_decision("cancel-started"),
            schedule_activity_decision("cancel-waiting", task_list="elsewhere"),
            schedule_activity_decision(
                "timing-out", task_list="nobody", schedule_to_start_timeout="0.1"
            ),
            schedule_activity_decision("done"),
            {"decisionType": "RecordMarker", "recordMarkerDecisionAttributes": {"markerName": "m"}},
            {
                "decisionType": "StartTimer",
                "startTimerDecisionAttributes": {"timerId": "t", "startToFireTimeout": "0.1"},
            },
            {
                "decisionType": "StartTimer",
                "startTimerDecisionAttributes": {"timerId": "t2", "startToFireTimeout": "60"},
            },
        ]
    )
    tasks = {}
    for _ in range(3):
        task = await swfkit.poll_activity()
        tasks[task["activityId"]] = task["taskToken"]
    await swfkit.client.respond_activity_task_completed(taskToken=tasks["done"])
    await swfkit.client.respond_activity_task_failed(taskToken=tasks["failing"], reason="r")
    await swfkit.wait_for_event(execution, "TimerFired")
    await swfkit.wait_for_event(execution, "ActivityTaskTimedOut")
    await swfkit.decide(
        [
            {
                "decisionType": "RequestCancelActivityTask",
                "requestCancelActivityTaskDecisionAttributes": {"activityId": aid},
            }
            for aid in ("cancel-started", "cancel-waiting", "unknown")
        ]
        + [{"decisionType": "CancelTimer", "cancelTimerDecisionAttributes": {"timerId": "t2"}}]
    )
    await swfkit.client.respond_activity_task_canceled(taskToken=tasks["cancel-started"])
    await swfkit.client.signal_workflow_execution(
        domain=swfkit.domain, workflowId=execution["workflowId"], signalName="s", input="i"
    )
    await swfkit.client.request_cancel_workflow_execution(
        domain=swfkit.domain, workflowId=execution["workflowId"]
    )
    await swfkit.decide([complete_workflow_decision("ok")])
    status, history = await raw(
        "GetWorkflowExecutionHistory", {"domain": swfkit.domain, "execution": execution}
    )
    assert status == 200
    assert_matches_shape(history, "History")
    seen = {event["eventType"] for event in history["events"]}
    for event in history["events"]:
        assert set(event) == {
            "eventId",
            "eventTimestamp",
            "eventType",
            event["eventType"][0].lower() + event["eventType"][1:] + "EventAttributes",
        }
    assert seen >= {
        "WorkflowExecutionStarted",
        "DecisionTaskScheduled",
        "DecisionTaskStarted",
        "DecisionTaskCompleted",
        "ActivityTaskScheduled",
        "ScheduleActivityTaskFailed",
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
        "ActivityTaskFailed",
        "ActivityTaskTimedOut",
        "ActivityTaskCancelRequested",
        "ActivityTaskCanceled",
        "RequestCancelActivityTaskFailed",
        "MarkerRecorded",
        "TimerStarted",
        "TimerFired",
        "TimerCanceled",
        "WorkflowExecutionSignaled",
        "WorkflowExecutionCancelRequested",
        "WorkflowExecutionCompleted",
    }
