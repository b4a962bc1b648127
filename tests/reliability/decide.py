"""A bulk decider for the reliability tests: schedule many activities in one decision, and
read what became of them from the history."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from botocore.exceptions import ClientError

from heartbeat_worker._logging import get_logger
from swfkit import SWFKit

Json = dict[str, Any]

DOMAIN = "hw-test"
CLOSING = frozenset(
    {"ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskCanceled", "ActivityTaskTimedOut"}
)


def attributes(event: Json) -> Json:
    kind: str = event["eventType"]
    found: Json = event[kind[0].lower() + kind[1:] + "EventAttributes"]
    return found


@dataclass
class Outcomes:
    """What the history says about each activity of an execution."""

    scheduled: dict[int, str] = field(default_factory=dict)  # event id -> activity id
    started: set[str] = field(default_factory=set)
    closings: dict[str, list[Json]] = field(default_factory=dict)  # activity id -> events

    @classmethod
    def from_history(cls, events: Sequence[Json]) -> Outcomes:
        found = cls()
        for event in events:
            kind = event["eventType"]
            if kind == "ActivityTaskScheduled":
                found.scheduled[event["eventId"]] = attributes(event)["activityId"]
            elif kind == "ActivityTaskStarted":
                found.started.add(found.scheduled[attributes(event)["scheduledEventId"]])
            elif kind in CLOSING:
                activity_id = found.scheduled[attributes(event)["scheduledEventId"]]
                found.closings.setdefault(activity_id, []).append(event)
        return found

    def kinds(self) -> Counter[str]:
        return Counter(e["eventType"] for events in self.closings.values() for e in events)

    def duplicates(self) -> int:
        """Closing events beyond the first, over all activities."""
        return sum(len(events) - 1 for events in self.closings.values())

    def closing(self, activity_id: str) -> Json:
        (event,) = self.closings[activity_id]
        return event


class Decider:
    """Starts executions and schedules activities in them, each execution with a decision
    task list of its own."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.kit = SWFKit(client, DOMAIN)

    async def setup(self) -> None:
        """Register the domain, the workflow type and the activity types of
        ``activities.py``, so that activities can be scheduled before a worker starts."""
        from heartbeat_worker._registration import register
        from heartbeat_worker._worker import Activity

        from . import activities

        served = [value for value in vars(activities).values() if isinstance(value, Activity)]
        await register(self.client, DOMAIN, served, get_logger())
        await self.kit.register_workflow_type(execution_timeout="600")

    async def schedule(
        self,
        activity: str,
        inputs: Sequence[Any],
        *,
        task_list: str,
        version: str = "1",
        heartbeat_timeout: str | None = None,
        start_to_close_timeout: str = "120",
        raw_inputs: bool = False,
        prefix: str = "a",
    ) -> Json:
        """One execution with ``len(inputs)`` activities (at most 1000), ids ``a0``, ``a1``...

        Returns the execution reference plus ``"decisions"``, its decision task list."""
        decisions = f"decisions-{uuid.uuid4().hex[:10]}"
        execution = await self.kit.start(taskList={"name": decisions})
        task = await self.kit.poll_decision(task_list=decisions)
        schedules = []
        for index, value in enumerate(inputs):
            attributes_: Json = {
                "activityType": {"name": activity, "version": version},
                "activityId": f"{prefix}{index}",
                "taskList": {"name": task_list},
                "scheduleToStartTimeout": "NONE",
                "scheduleToCloseTimeout": "NONE",
                "startToCloseTimeout": start_to_close_timeout,
            }
            if heartbeat_timeout is not None:
                attributes_["heartbeatTimeout"] = heartbeat_timeout
            if value is not None:
                attributes_["input"] = value if raw_inputs else json.dumps(value)
            schedules.append(
                {
                    "decisionType": "ScheduleActivityTask",
                    "scheduleActivityTaskDecisionAttributes": attributes_,
                }
            )
        await self.client.respond_decision_task_completed(
            taskToken=task["taskToken"], decisions=schedules
        )
        return {**execution, "decisions": decisions}

    async def history(self, execution: Json) -> list[Json]:
        return await self.kit.history(
            {"workflowId": execution["workflowId"], "runId": execution["runId"]}
        )

    async def outcomes(self, execution: Json) -> Outcomes:
        return Outcomes.from_history(await self.history(execution))

    async def wait_closed(self, execution: Json, count: int, deadline: float = 30) -> Outcomes:
        """Wait (reading the history) until ``count`` activities have a closing event."""
        with anyio.fail_after(deadline):
            while True:
                found = await self.outcomes(execution)
                if len(found.closings) >= count:
                    return found
                await anyio.sleep(0.1)

    async def wait_started(self, execution: Json, count: int, deadline: float = 30) -> Outcomes:
        with anyio.fail_after(deadline):
            while True:
                found = await self.outcomes(execution)
                if len(found.started) >= count:
                    return found
                await anyio.sleep(0.05)

    async def terminate(self, execution: Json) -> None:
        try:
            await self.client.terminate_workflow_execution(
                domain=DOMAIN, workflowId=execution["workflowId"], runId=execution["runId"]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "UnknownResourceFault":
                raise


def report(title: str, figures: dict[str, Any]) -> None:
    """Print a test's figures (shown by ``pytest -s``; docs/reliability.md records them)."""
    width = max(len(name) for name in figures)
    lines = [f"\n== reliability: {title}"]
    lines += [f"   {name.ljust(width)}  {value}" for name, value in figures.items()]
    print("\n".join(lines))
