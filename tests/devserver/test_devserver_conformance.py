"""Conformance with SWF's model where the dev server used to be laxer than SWF: names, durations,
nesting, timestamps, ARNs, tags, page tokens, and decisions after a close decision."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from swfkit import (
    DECISION_TASK_LIST,
    DOMAIN,
    SWFKit,
    aio_session,
    attributes,
    client_config,
    complete_workflow_decision,
    event_types,
    schedule_activity_decision,
)

pytestmark = pytest.mark.anyio

VALIDATION = "com.amazon.coral.validate#ValidationException"
SERIALIZATION = "com.amazon.coral.service#SerializationException"


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = error.value.response["Error"]["Code"]
    return code


# 1. Names and ids


@pytest.mark.parametrize("name", ["bad:name", "arn", " leading", "trailing ", "a/b", "x\u0085y"])
async def test_forbidden_domain_names_are_refused(kit: SWFKit, name: str) -> None:
    with pytest.raises(ClientError) as error:
        await kit.client.register_domain(name=name, workflowExecutionRetentionPeriodInDays="1")
    assert _code(error) == "ValidationException"
    listed = await kit.client.list_domains(registrationStatus="REGISTERED")
    assert name not in [info["name"] for info in listed["domainInfos"]]


@pytest.mark.parametrize(
    "member", [{"name": "a|b"}, {"name": "arn"}, {"version": "1:2"}, {"name": "tab\there"}]
)
async def test_forbidden_activity_type_names_are_refused(
    swfkit: SWFKit, member: dict[str, str]
) -> None:
    arguments = {"name": "fine", "version": "1", **member}
    with pytest.raises(ClientError) as error:
        await swfkit.client.register_activity_type(domain=DOMAIN, **arguments)
    assert _code(error) == "ValidationException"
    assert repr(next(iter(member.values())))[1:-1][:3] in error.value.response["Error"]["Message"]


@pytest.mark.parametrize("workflow_id", ["x/y", "x:y", "arn", "x\u0007"])
async def test_forbidden_workflow_ids_are_refused(swfkit: SWFKit, workflow_id: str) -> None:
    with pytest.raises(ClientError) as error:
        await swfkit.start(workflow_id)
    assert _code(error) == "ValidationException"
    count = await swfkit.client.count_open_workflow_executions(
        domain=DOMAIN, startTimeFilter={"oldestDate": 0}
    )
    assert count["count"] == 0


async def test_a_forbidden_activity_id_refuses_the_decisions_whole(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    task = await swfkit.poll_decision()
    with pytest.raises(ClientError) as error:
        await swfkit.client.respond_decision_task_completed(
            taskToken=task["taskToken"],
            decisions=[schedule_activity_decision("fine"), schedule_activity_decision("a:b")],
        )
    assert _code(error) == "ValidationException"
    assert "scheduleActivityTaskDecisionAttributes.activityId" in str(error.value)
    # Nothing applied, and the task can still be answered.
    assert "ActivityTaskScheduled" not in event_types(await swfkit.history(execution))
    await swfkit.client.respond_decision_task_completed(
        taskToken=task["taskToken"], decisions=[schedule_activity_decision("fine")]
    )


async def test_a_forbidden_activity_type_name_in_a_decision_fails_with_its_cause(
    swfkit: SWFKit,
) -> None:
    execution = await swfkit.start()
    await swfkit.decide(
        [schedule_activity_decision("a1", activity_type={"name": "no|such", "version": "1"})]
    )
    failed = await swfkit.wait_for_event(execution, "ScheduleActivityTaskFailed")
    assert attributes(failed)["cause"] == "ACTIVITY_TYPE_DOES_NOT_EXIST"


# 2. Durations


@pytest.mark.parametrize("value", ["\u0663", "1\u0660", "\uff11", "31536001", "99999999"])
async def test_durations_take_ascii_digits_up_to_a_year(swfkit: SWFKit, value: str) -> None:
    with pytest.raises(ClientError) as error:
        await swfkit.client.register_activity_type(
            domain=DOMAIN, name="t", version="1", defaultTaskHeartbeatTimeout=value
        )
    assert _code(error) == "ValidationException"
    with pytest.raises(ClientError) as error:
        await swfkit.start(executionStartToCloseTimeout=value)
    assert _code(error) == "ValidationException"


async def test_a_year_is_accepted_and_none_is_not_an_execution_default(swfkit: SWFKit) -> None:
    await swfkit.start(executionStartToCloseTimeout="31536000")
    with pytest.raises(ClientError) as error:
        await swfkit.client.register_workflow_type(
            domain=DOMAIN, name="w", version="1", defaultExecutionStartToCloseTimeout="NONE"
        )
    assert _code(error) == "ValidationException"


async def test_a_decision_with_a_duration_over_a_year_is_refused(swfkit: SWFKit) -> None:
    await swfkit.start()
    task = await swfkit.poll_decision()
    with pytest.raises(ClientError) as error:
        await swfkit.client.respond_decision_task_completed(
            taskToken=task["taskToken"],
            decisions=[schedule_activity_decision("a1", heartbeat_timeout="40000000")],
        )
    assert _code(error) == "ValidationException"


# 3. Nesting


@pytest.mark.parametrize("depth", [100_000, 40])
async def test_deeply_nested_json_is_a_serialization_error(raw: Any, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    status, answer = await raw("", data=body, target="SimpleWorkflowService.ListDomains")
    assert status == 400
    assert answer["__type"] == SERIALIZATION
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    status, answer = await raw("", data=nested, target="SimpleWorkflowService.ListDomains")
    assert (status, answer["__type"]) == (400, SERIALIZATION)


async def test_brackets_inside_strings_do_not_count_as_nesting(raw: Any) -> None:
    status, _ = await raw(
        "RegisterDomain",
        {"name": "d", "description": "[" * 1000, "workflowExecutionRetentionPeriodInDays": "1"},
    )
    assert status == 200


# 4. latestActivityTaskTimestamp


async def test_latest_activity_task_timestamp_is_set_when_scheduled(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    described = await swfkit.client.describe_workflow_execution(domain=DOMAIN, execution=execution)
    assert "latestActivityTaskTimestamp" not in described
    await swfkit.schedule_activity("a1")
    scheduled = await swfkit.wait_for_event(execution, "ActivityTaskScheduled")
    described = await swfkit.client.describe_workflow_execution(domain=DOMAIN, execution=execution)
    stamp = described["latestActivityTaskTimestamp"].timestamp()
    assert stamp == pytest.approx(scheduled["eventTimestamp"].timestamp(), abs=0.01)


# 5. ARN region, 6. tags


def _regional(endpoint: str, region: str) -> Any:
    from swfkit import DUMMY_CREDENTIALS

    return aio_session().create_client(
        "swf",
        region_name=region,
        endpoint_url=endpoint,
        config=client_config(aio=True),
        **DUMMY_CREDENTIALS,
    )


async def test_the_arn_names_the_region_of_the_credential_scope(dev_server: Any) -> None:
    async with _regional(dev_server.endpoint_url, "eu-west-3") as client:
        await client.register_domain(name="paris", workflowExecutionRetentionPeriodInDays="1")
        info = (await client.describe_domain(name="paris"))["domainInfo"]
        assert info["arn"] == "arn:aws:swf:eu-west-3:000000000000:/domain/paris"
        listed = await client.list_domains(registrationStatus="REGISTERED")
        assert listed["domainInfos"][0]["arn"] == info["arn"]
    async with _regional(dev_server.endpoint_url, "ap-south-1") as client:
        info = (await client.describe_domain(name="paris"))["domainInfo"]
        assert info["arn"] == "arn:aws:swf:ap-south-1:000000000000:/domain/paris"


async def test_tags_on_register_and_tag_untag_list(kit: SWFKit) -> None:
    client = kit.client
    await client.register_domain(
        name="tagged",
        workflowExecutionRetentionPeriodInDays="1",
        tags=[{"key": "team", "value": "data"}, {"key": "env"}],
    )
    arn = (await client.describe_domain(name="tagged"))["domainInfo"]["arn"]
    listed = await client.list_tags_for_resource(resourceArn=arn)
    assert listed["tags"] == [{"key": "team", "value": "data"}, {"key": "env", "value": ""}]
    await client.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "ml"}])
    await client.untag_resource(resourceArn=arn, tagKeys=["env", "absent"])
    listed = await client.list_tags_for_resource(resourceArn=arn)
    assert listed["tags"] == [{"key": "team", "value": "ml"}]


async def test_tag_limits_and_unknown_resources(swfkit: SWFKit) -> None:
    client = swfkit.client
    arn = (await client.describe_domain(name=DOMAIN))["domainInfo"]["arn"]
    fifty = [{"key": f"k{index}", "value": "v"} for index in range(50)]
    await client.tag_resource(resourceArn=arn, tags=fifty)
    with pytest.raises(ClientError) as error:
        await client.tag_resource(resourceArn=arn, tags=[{"key": "one-more"}])
    assert _code(error) == "TooManyTagsFault"
    with pytest.raises(ClientError) as error:
        await client.register_domain(
            name="crowded",
            workflowExecutionRetentionPeriodInDays="1",
            tags=[*fifty, {"key": "k50"}],
        )
    assert _code(error) == "TooManyTagsFault"
    for tags in ([{"key": "k" * 129}], [{"key": "k", "value": "v" * 257}], [{"key": "a#b"}]):
        with pytest.raises(ClientError) as error:
            await client.tag_resource(resourceArn=arn, tags=tags)
        assert _code(error) == "ValidationException"
    for unknown in (
        arn.replace(DOMAIN, "nosuch"),
        arn.replace("us-east-1", "eu-west-1"),
        "arn:aws:swf:us-east-1:000000000000:/domain",
    ):
        with pytest.raises(ClientError) as error:
            await client.list_tags_for_resource(resourceArn=unknown)
        assert _code(error) == "UnknownResourceFault"
    assert len((await client.list_tags_for_resource(resourceArn=arn))["tags"]) == 50


# 7. Page tokens


async def test_a_page_token_is_refused_with_other_filters_or_order(swfkit: SWFKit) -> None:
    for index in range(3):
        await swfkit.start(f"wf-{index}", tagList=["even" if index % 2 == 0 else "odd"])
    client = swfkit.client
    first = await client.list_open_workflow_executions(
        domain=DOMAIN, startTimeFilter={"oldestDate": 0}, maximumPageSize=1
    )
    token = first["nextPageToken"]
    for other in (
        {"reverseOrder": True},
        {"tagFilter": {"tag": "even"}},
        {"startTimeFilter": {"oldestDate": 1}},
    ):
        query: dict[str, Any] = {"startTimeFilter": {"oldestDate": 0}, **other}
        with pytest.raises(ClientError) as error:
            await client.list_open_workflow_executions(
                domain=DOMAIN, maximumPageSize=1, nextPageToken=token, **query
            )
        assert _code(error) == "ValidationException"
    # The same query, even with another page size, goes on.
    second = await client.list_open_workflow_executions(
        domain=DOMAIN, startTimeFilter={"oldestDate": 0}, maximumPageSize=2, nextPageToken=token
    )
    ids = {info["execution"]["workflowId"] for info in first["executionInfos"]}
    ids |= {info["execution"]["workflowId"] for info in second["executionInfos"]}
    assert ids == {"wf-0", "wf-1", "wf-2"}


async def test_history_and_decision_page_tokens_are_bound_to_their_order(swfkit: SWFKit) -> None:
    execution = await swfkit.start()
    client = swfkit.client
    page = await client.get_workflow_execution_history(
        domain=DOMAIN, execution=execution, maximumPageSize=1
    )
    with pytest.raises(ClientError) as error:
        await client.get_workflow_execution_history(
            domain=DOMAIN,
            execution=execution,
            maximumPageSize=1,
            reverseOrder=True,
            nextPageToken=page["nextPageToken"],
        )
    assert _code(error) == "ValidationException"
    task = await client.poll_for_decision_task(
        domain=DOMAIN, taskList={"name": DECISION_TASK_LIST}, maximumPageSize=1
    )
    with pytest.raises(ClientError) as error:
        await client.poll_for_decision_task(
            domain=DOMAIN,
            taskList={"name": DECISION_TASK_LIST},
            maximumPageSize=1,
            reverseOrder=True,
            nextPageToken=task["nextPageToken"],
        )
    assert _code(error) == "ValidationException"
    following = await client.poll_for_decision_task(
        domain=DOMAIN,
        taskList={"name": DECISION_TASK_LIST},
        maximumPageSize=1,
        nextPageToken=task["nextPageToken"],
    )
    assert following["events"][0]["eventId"] == 2


# 8. Decisions after a close decision


@pytest.mark.parametrize(
    "decisions",
    [
        [complete_workflow_decision("done"), schedule_activity_decision("late")],
        [
            complete_workflow_decision("done"),
            {
                "decisionType": "FailWorkflowExecution",
                "failWorkflowExecutionDecisionAttributes": {},
            },
        ],
        [
            {
                "decisionType": "CancelWorkflowExecution",
                "cancelWorkflowExecutionDecisionAttributes": {},
            },
            {"decisionType": "RecordMarker", "recordMarkerDecisionAttributes": {"markerName": "m"}},
        ],
    ],
)
async def test_a_close_decision_must_be_the_last(swfkit: SWFKit, decisions: list[Any]) -> None:
    execution = await swfkit.start()
    task = await swfkit.poll_decision()
    with pytest.raises(ClientError) as error:
        await swfkit.client.respond_decision_task_completed(
            taskToken=task["taskToken"], decisions=decisions
        )
    assert _code(error) == "ValidationException"
    assert "decisions.1.member" in str(error.value)
    # Nothing was applied: the execution is open and the task still answerable.
    assert event_types(await swfkit.history(execution))[-1] == "DecisionTaskStarted"
    await swfkit.client.respond_decision_task_completed(
        taskToken=task["taskToken"], decisions=[decisions[0]]
    )
    described = await swfkit.client.describe_workflow_execution(domain=DOMAIN, execution=execution)
    assert described["executionInfo"]["executionStatus"] == "CLOSED"
