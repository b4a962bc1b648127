"""The wire protocol: errors shaped as SWF's, bad input refused without changing state."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from heartbeat_worker.devserver import DevServer
from swfkit import SWFKit, assert_matches_shape, schedule_activity_decision

pytestmark = pytest.mark.anyio

VALIDATION = "com.amazon.coral.validate#ValidationException"
SERIALIZATION = "com.amazon.coral.service#SerializationException"
UNKNOWN_OPERATION = "com.amazon.coral.service#UnknownOperationException"


async def test_get_answers_the_status_page(dev_server: DevServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(dev_server.endpoint_url) as reply:
        assert reply.status == 200
        assert reply.content_type == "text/html"
        assert "<title>heartbeat-worker dev server</title>" in await reply.text()


@pytest.mark.parametrize(
    ("target", "data", "status", "error_type"),
    [
        ("SimpleWorkflowService.ListDomains", b"{not json", 400, SERIALIZATION),
        ("SimpleWorkflowService.ListDomains", b"\xff\xfe", 400, SERIALIZATION),
        ("SimpleWorkflowService.ListDomains", b"[1, 2]", 400, SERIALIZATION),
        ("SimpleWorkflowService.ListDomains", b'{"registrationStatus": 1}', 400, SERIALIZATION),
        ("SimpleWorkflowService.ListDomains", b"{}", 400, VALIDATION),
        ("SimpleWorkflowService.ListDomains", b'{"registrationStatus": "X"}', 400, VALIDATION),
        ("SimpleWorkflowService.NoSuchThing", b"{}", 400, UNKNOWN_OPERATION),
        ("DynamoDB_20120810.ListTables", b"{}", 400, UNKNOWN_OPERATION),
        ("", b"{}", 400, UNKNOWN_OPERATION),
        ("SimpleWorkflowService.TagResource", b"{}", 400, VALIDATION),
    ],
)
async def test_bad_requests_get_swf_shaped_errors(
    raw: Any, target: str, data: bytes, status: int, error_type: str
) -> None:
    got_status, body = await raw("", data=data, target=target)
    assert got_status == status
    assert body["__type"] == error_type
    assert body["message"]
    assert "Traceback" not in body["message"]


async def test_missing_and_oversize_members_are_named_with_their_limit(raw: Any) -> None:
    status, body = await raw("RegisterDomain", {"name": "d" * 257})
    assert status == 400
    assert body["__type"] == VALIDATION
    assert "2 validation errors detected" in body["message"]
    assert (
        "Value null at 'workflowExecutionRetentionPeriodInDays' failed to satisfy constraint: "
        "Member must not be null"
    ) in body["message"]
    assert (
        "Value at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    ) in body["message"]
    status, body = await raw("ListDomains", {"registrationStatus": "REGISTERED"})
    assert (status, body) == (200, {"domainInfos": []})


async def test_nested_decision_members_are_validated(raw: Any, swfkit: SWFKit) -> None:
    await swfkit.start()
    task = await swfkit.poll_decision()
    decision = schedule_activity_decision("a" * 257)
    status, body = await raw(
        "RespondDecisionTaskCompleted", {"taskToken": task["taskToken"], "decisions": [decision]}
    )
    assert status == 400
    assert (
        "at 'decisions.1.member.scheduleActivityTaskDecisionAttributes.activityId'"
        in body["message"]
    )
    status, body = await raw(
        "RespondDecisionTaskCompleted",
        {"taskToken": task["taskToken"], "decisions": [{"decisionType": "Explode"}]},
    )
    assert status == 400
    assert "enum value set" in body["message"]
    status, body = await raw(
        "RespondDecisionTaskCompleted",
        {"taskToken": task["taskToken"], "decisions": [{"decisionType": "StartTimer"}]},
    )
    assert status == 400
    assert "startTimerDecisionAttributes" in body["message"]
    status, body = await raw(
        "RespondDecisionTaskCompleted",
        {
            "taskToken": task["taskToken"],
            "decisions": [
                schedule_activity_decision("fine"),
                {
                    "decisionType": "StartChildWorkflowExecution",
                    "startChildWorkflowExecutionDecisionAttributes": {
                        "workflowType": {"name": "w", "version": "1"},
                        "workflowId": "child",
                    },
                },
            ],
        },
    )
    assert status == 400
    assert "not emulated" in body["message"]
    # Nothing of the refused answers was applied: the decision task is still open.
    await swfkit.decide([schedule_activity_decision("a1")], task)
    assert (await swfkit.poll_activity())["activityId"] == "a1"


async def test_oversize_heartbeat_details_are_refused_and_change_nothing(swfkit: SWFKit) -> None:
    client = swfkit.client
    task = await swfkit.start_activity("a1", heartbeat_timeout="0.5")
    await client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="kept")
    with pytest.raises(ClientError) as caught:
        await client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="x" * 2049)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value at 'details' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048"
    )
    timed_out = await swfkit.wait_for_event(task["workflowExecution"], "ActivityTaskTimedOut")
    assert timed_out["activityTaskTimedOutEventAttributes"]["details"] == "kept"


@pytest.mark.parametrize(
    ("call", "kwargs", "limit"),
    [
        ("respond_activity_task_completed", {"result": "x" * 32769}, 32768),
        ("respond_activity_task_failed", {"reason": "x" * 257}, 256),
        ("respond_activity_task_failed", {"details": "x" * 32769}, 32768),
        ("respond_activity_task_canceled", {"details": "x" * 32769}, 32768),
    ],
)
async def test_oversize_answers_are_refused(
    swfkit: SWFKit, call: str, kwargs: dict[str, str], limit: int
) -> None:
    task = await swfkit.start_activity("a1")
    with pytest.raises(ClientError, match=f"less than or equal to {limit}"):
        await getattr(swfkit.client, call)(taskToken=task["taskToken"], **kwargs)
    # The task is still open and can be answered properly.
    await getattr(swfkit.client, call)(taskToken=task["taskToken"])


async def test_a_body_over_one_megabyte_is_refused(raw: Any) -> None:
    status, body = await raw("ListDomains", data=b'{"x": "' + b"y" * (1024 * 1024) + b'"}')
    assert status == 413
    assert body["__type"] == VALIDATION


async def test_unknown_domain_and_duplicates_raise_modelled_faults(swf_client: Any) -> None:
    client = swf_client
    faults = client.exceptions
    with pytest.raises(faults.UnknownResourceFault, match="Unknown domain: missing"):
        await client.poll_for_activity_task(domain="missing", taskList={"name": "t"})
    with pytest.raises(faults.UnknownResourceFault):
        await client.count_pending_activity_tasks(domain="missing", taskList={"name": "t"})
    await client.register_domain(name="d", workflowExecutionRetentionPeriodInDays="1")
    with pytest.raises(faults.DomainAlreadyExistsFault):
        await client.register_domain(name="d", workflowExecutionRetentionPeriodInDays="1")
    await client.register_activity_type(domain="d", name="a", version="1")
    with pytest.raises(faults.TypeAlreadyExistsFault):
        await client.register_activity_type(domain="d", name="a", version="1")
    await client.register_workflow_type(domain="d", name="w", version="1")
    with pytest.raises(faults.TypeAlreadyExistsFault):
        await client.register_workflow_type(domain="d", name="w", version="1")
    with pytest.raises(faults.UnknownResourceFault):
        await client.describe_activity_type(domain="d", activityType={"name": "a", "version": "2"})
    with pytest.raises(faults.DefaultUndefinedFault):
        await client.start_workflow_execution(
            domain="d", workflowId="x", workflowType={"name": "w", "version": "1"}
        )
    with pytest.raises(faults.UnknownResourceFault):
        await client.start_workflow_execution(
            domain="d", workflowId="x", workflowType={"name": "nope", "version": "1"}
        )


async def test_raw_replies_match_the_model(raw: Any, swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    await swfkit.schedule_activity("a1")
    status, task = await raw(
        "PollForActivityTask", {"domain": swfkit.domain, "taskList": {"name": "hw-activities"}}
    )
    assert status == 200
    assert_matches_shape(task, "ActivityTask")
    status, reply = await raw("RecordActivityTaskHeartbeat", {"taskToken": task["taskToken"]})
    assert_matches_shape(reply, "ActivityTaskStatus")
    await swfkit.request_cancel_activity("a1")
    await raw("RespondActivityTaskCanceled", {"taskToken": task["taskToken"], "details": "d"})
    decision = await swfkit.poll_decision()
    status, history = await raw(
        "GetWorkflowExecutionHistory", {"domain": swfkit.domain, "execution": execution}
    )
    assert_matches_shape(history, "History")
    status, described = await raw(
        "DescribeWorkflowExecution", {"domain": swfkit.domain, "execution": execution}
    )
    assert_matches_shape(described, "WorkflowExecutionDetail")
    status, empty = await raw(
        "PollForActivityTask", {"domain": swfkit.domain, "taskList": {"name": "empty"}}
    )
    assert empty == {"startedEventId": 0}
    assert decision["taskToken"]
