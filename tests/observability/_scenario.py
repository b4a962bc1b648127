"""Driving activity tasks for the observability tests: schedule many in one execution, ask
for a cancellation, wait for their closing events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio

from swfkit import SWFKit, request_cancel_decision, schedule_activity_decision

CLOSING = {
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskCanceled",
    "ActivityTaskTimedOut",
}


async def schedule(
    kit: SWFKit, activities: list[tuple[str, str, Any]], **timeouts: str
) -> dict[str, Any]:
    """Start an execution (decisions on a task list of its own) and schedule
    ``(activity_id, type name, payload)`` in one decision; ``timeouts`` as in
    :func:`swfkit.schedule_activity_decision` (default: heartbeat 10 s, start-to-close 60 s)."""
    timeouts.setdefault("heartbeat_timeout", "10")
    timeouts.setdefault("start_to_close_timeout", "60")
    decisions = f"decisions-{uuid.uuid4().hex[:8]}"
    execution = await kit.start(taskList={"name": decisions})
    task = await kit.poll_decision(task_list=decisions)
    await kit.decide(
        [
            schedule_activity_decision(
                activity_id,
                activity_type={"name": name, "version": "1"},
                input=json.dumps(payload),
                schedule_to_close_timeout="NONE",
                schedule_to_start_timeout="NONE",
                **timeouts,
            )
            for activity_id, name, payload in activities
        ],
        task,
    )
    execution["decisions"] = decisions
    return execution


async def request_cancel(kit: SWFKit, execution: dict[str, Any], activity_id: str) -> None:
    """Decide RequestCancelActivityTask; a signal gives the decider a decision task to do it."""
    ids = {"workflowId": execution["workflowId"], "runId": execution["runId"]}
    await kit.client.signal_workflow_execution(domain=kit.domain, signalName="cancel", **ids)
    task = await kit.poll_decision(task_list=execution["decisions"])
    await kit.decide([request_cancel_decision(activity_id)], task)


async def closed(
    kit: SWFKit, execution: dict[str, Any], count: int, deadline: float = 20
) -> dict[str, str]:
    """Wait until ``count`` activity tasks of ``execution`` have closed; returns
    ``{activity id: closing event type}``."""
    ids = {"workflowId": execution["workflowId"], "runId": execution["runId"]}
    with anyio.fail_after(deadline):
        while True:
            events = await kit.history(ids)
            scheduled = {
                event["eventId"]: event["activityTaskScheduledEventAttributes"]["activityId"]
                for event in events
                if event["eventType"] == "ActivityTaskScheduled"
            }
            found: dict[str, str] = {}
            for event in events:
                if event["eventType"] in CLOSING:
                    key = event["eventType"][0].lower() + event["eventType"][1:]
                    attributes = event[key + "EventAttributes"]
                    found[scheduled[attributes["scheduledEventId"]]] = event["eventType"]
            if len(found) >= count:
                return found
            await anyio.sleep(0.05)
