from __future__ import annotations

from typing import Any

import pytest

from swfkit import SWFKit, attributes


@pytest.mark.anyio
async def test_an_activity_runs_from_schedule_to_completion(swfkit: SWFKit) -> None:
    task = await swfkit.start_activity("a1", input="payload")
    assert task["activityId"] == "a1"
    assert task["input"] == "payload"
    reply = await swfkit.client.record_activity_task_heartbeat(
        taskToken=task["taskToken"], details="half"
    )
    assert reply["cancelRequested"] is False
    await swfkit.client.respond_activity_task_completed(taskToken=task["taskToken"], result="ok")
    completed = await swfkit.wait_for_event(task["workflowExecution"], "ActivityTaskCompleted")
    assert attributes(completed)["result"] == "ok"


def test_boto3_client_works_against_the_threaded_server(boto3_swf_client: Any) -> None:
    client = boto3_swf_client
    client.register_domain(name="d", workflowExecutionRetentionPeriodInDays="1")
    with pytest.raises(client.exceptions.UnknownResourceFault):
        client.describe_domain(name="missing")
    assert client.describe_domain(name="d")["domainInfo"]["status"] == "REGISTERED"
    listed = client.list_domains(registrationStatus="REGISTERED")["domainInfos"]
    assert [domain["name"] for domain in listed] == ["d"]
