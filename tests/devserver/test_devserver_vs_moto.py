"""The same calls against the dev server and moto_server: same events, same attribute names.

Only for what moto implements (register, start, schedule, poll, heartbeat, complete, fail,
history). Outside that subset moto is lacking, which is why the dev server exists: its
heartbeat always answers ``cancelRequested: false``, it has no RespondActivityTaskCanceled, no
START_TO_CLOSE or SCHEDULE_TO_START activity timeouts, and its polls answer at once instead of
waiting for a task. The differences inside the subset are spelled out below, next to where
they are worked around.
"""

from __future__ import annotations

from typing import Any

import pytest

from heartbeat_worker.devserver import DevServer
from swfkit import (
    SWFKit,
    attributes,
    schedule_activity_decision,
)

pytestmark = pytest.mark.anyio


async def _run_sequence(kit: SWFKit) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The calls under comparison; returns the history and a few replies."""
    await kit.register_domain()
    await kit.register_workflow_type()
    # Explicit defaults everywhere: moto does not implement the *_UNDEFINED failures.
    await kit.register_activity_type(
        heartbeat_timeout="300",
        schedule_to_start_timeout="300",
        schedule_to_close_timeout="600",
        start_to_close_timeout="300",
    )
    execution = await kit.start(input="start-input")
    decision = await kit.poll_decision()
    await kit.decide(
        [
            schedule_activity_decision("good", input="in-1"),
            schedule_activity_decision("bad", input="in-2", heartbeat_timeout="120"),
        ],
        decision,
    )
    first = await kit.poll_activity(identity="worker-1")
    second = await kit.poll_activity(identity="worker-2")
    heartbeat = await kit.client.record_activity_task_heartbeat(
        taskToken=first["taskToken"], details="half"
    )
    await kit.client.respond_activity_task_completed(taskToken=first["taskToken"], result="ok")
    await kit.client.respond_activity_task_failed(
        taskToken=second["taskToken"], reason="boom", details="trace"
    )
    with pytest.raises(kit.client.exceptions.UnknownResourceFault):
        await kit.client.respond_activity_task_completed(taskToken=first["taskToken"])
    replies = {
        "heartbeat": {k: v for k, v in heartbeat.items() if k != "ResponseMetadata"},
        "activity_task_keys": sorted(k for k in first if k != "ResponseMetadata"),
        "decision_task_keys": sorted(k for k in decision if k != "ResponseMetadata"),
    }
    history = await kit.history(execution)
    return history, replies


def _shape(events: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(event["eventType"], sorted(attributes(event))) for event in events]


async def test_the_dev_server_records_what_moto_records(
    dev_server: DevServer, swf_client: Any, moto_client: Any
) -> None:
    ours, our_replies = await _run_sequence(SWFKit(swf_client, domain="diff"))
    theirs, their_replies = await _run_sequence(SWFKit(moto_client, domain="diff"))

    # moto answers the decision task without previousStartedEventId, which SWF always sends
    # (0 before the first decision): the dev server follows SWF.
    their_replies["decision_task_keys"] = sorted(
        {*their_replies["decision_task_keys"], "previousStartedEventId"}
    )
    assert our_replies == their_replies
    assert our_replies["heartbeat"] == {"cancelRequested": False}

    # moto schedules a second decision task while one is already scheduled and not yet
    # started (after ActivityTaskFailed here). SWF keeps at most one scheduled decision task
    # per execution, whose events the decider reads when it starts; so does the dev server.
    assert [e["eventType"] for e in theirs[-2:]] == ["ActivityTaskFailed", "DecisionTaskScheduled"]
    theirs = theirs[:-1]
    our_shape, their_shape = _shape(ours), _shape(theirs)
    assert [t for t, _ in our_shape] == [t for t, _ in their_shape]
    for (event_type, our_names), (_, their_names) in zip(our_shape, their_shape, strict=True):
        expected = set(their_names)
        if event_type == "ActivityTaskScheduled":
            # moto records only the timeouts the decision gave, not the type defaults that
            # apply; SWF's event holds the effective values, which workers rely on.
            expected |= {
                "heartbeatTimeout",
                "scheduleToStartTimeout",
                "scheduleToCloseTimeout",
                "startToCloseTimeout",
            }
        assert set(our_names) == expected, event_type

    # Values that must agree, beyond the names.
    ours_by_type = {event["eventType"]: attributes(event) for event in ours}
    theirs_by_type = {event["eventType"]: attributes(event) for event in theirs}
    for event_type in ("ActivityTaskCompleted", "ActivityTaskFailed"):
        assert ours_by_type[event_type] == theirs_by_type[event_type]
