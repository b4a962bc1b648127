"""Helpers that drive an SWF workflow by hand, for tests that need activity tasks.

They play the decider's part (there is no decider in this project) against any SWF endpoint,
the dev server or moto: register a domain and types, start an execution, schedule an activity
with chosen timeouts, request its cancellation, read the history. Every wait has a deadline,
so a test fails with a clear message instead of hanging.

Works with an aiobotocore SWF client, or with a boto3 client wrapped in :class:`AsyncBoto3`.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

Json = dict[str, Any]

DOMAIN = "hw-test"
DECISION_TASK_LIST = "hw-decisions"
ACTIVITY_TASK_LIST = "hw-activities"
WORKFLOW_TYPE: Json = {"name": "hw-workflow", "version": "1"}
ACTIVITY_TYPE: Json = {"name": "hw-activity", "version": "1"}
DEFAULT_DEADLINE = 10.0


class AsyncBoto3:
    """A boto3 client with awaitable methods, so one test body can drive both SDKs."""

    def __init__(self, client: Any) -> None:
        self.sync = client
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.sync, name)

        async def call(**kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(functools.partial(method, **kwargs))

        return call


def schedule_activity_decision(
    activity_id: str,
    *,
    activity_type: Json | None = None,
    task_list: str | None = ACTIVITY_TASK_LIST,
    input: str | None = None,
    heartbeat_timeout: str | None = None,
    schedule_to_start_timeout: str | None = None,
    schedule_to_close_timeout: str | None = None,
    start_to_close_timeout: str | None = None,
) -> Json:
    """A ScheduleActivityTask decision; None leaves a member out (the type's default applies)."""
    attributes: Json = {"activityType": activity_type or ACTIVITY_TYPE, "activityId": activity_id}
    optional = {
        "taskList": {"name": task_list} if task_list is not None else None,
        "input": input,
        "heartbeatTimeout": heartbeat_timeout,
        "scheduleToStartTimeout": schedule_to_start_timeout,
        "scheduleToCloseTimeout": schedule_to_close_timeout,
        "startToCloseTimeout": start_to_close_timeout,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    return {
        "decisionType": "ScheduleActivityTask",
        "scheduleActivityTaskDecisionAttributes": attributes,
    }


def request_cancel_decision(activity_id: str) -> Json:
    return {
        "decisionType": "RequestCancelActivityTask",
        "requestCancelActivityTaskDecisionAttributes": {"activityId": activity_id},
    }


def complete_workflow_decision(result: str | None = None) -> Json:
    attributes = {"result": result} if result is not None else {}
    return {
        "decisionType": "CompleteWorkflowExecution",
        "completeWorkflowExecutionDecisionAttributes": attributes,
    }


def attributes(event: Json) -> Json:
    """The ``<eventType>EventAttributes`` member of a history event."""
    event_type: str = event["eventType"]
    result: Json = event[event_type[0].lower() + event_type[1:] + "EventAttributes"]
    return result


def event_types(events: list[Json]) -> list[str]:
    return [event["eventType"] for event in events]


class SWFKit:
    """A hand-driven decider bound to one client and one domain."""

    def __init__(self, client: Any, domain: str = DOMAIN) -> None:
        self.client = client
        self.domain = domain
        # A decision task polled while waiting for an event, kept for the next decide().
        self.held_decision: Json | None = None

    async def register_domain(self) -> None:
        await self.client.register_domain(
            name=self.domain, workflowExecutionRetentionPeriodInDays="1"
        )

    async def register_activity_type(
        self,
        activity_type: Json | None = None,
        *,
        task_list: str | None = ACTIVITY_TASK_LIST,
        heartbeat_timeout: str | None = "NONE",
        schedule_to_start_timeout: str | None = "NONE",
        schedule_to_close_timeout: str | None = "NONE",
        start_to_close_timeout: str | None = "NONE",
    ) -> None:
        """Register an activity type; its defaults are all ``NONE`` unless given (None: unset)."""
        activity_type = activity_type or ACTIVITY_TYPE
        defaults = {
            "defaultTaskList": {"name": task_list} if task_list is not None else None,
            "defaultTaskHeartbeatTimeout": heartbeat_timeout,
            "defaultTaskScheduleToStartTimeout": schedule_to_start_timeout,
            "defaultTaskScheduleToCloseTimeout": schedule_to_close_timeout,
            "defaultTaskStartToCloseTimeout": start_to_close_timeout,
        }
        await self.client.register_activity_type(
            domain=self.domain,
            name=activity_type["name"],
            version=activity_type["version"],
            **{key: value for key, value in defaults.items() if value is not None},
        )

    async def register_workflow_type(
        self,
        workflow_type: Json | None = None,
        *,
        execution_timeout: str = "300",
        decision_timeout: str = "30",
    ) -> None:
        workflow_type = workflow_type or WORKFLOW_TYPE
        await self.client.register_workflow_type(
            domain=self.domain,
            name=workflow_type["name"],
            version=workflow_type["version"],
            defaultTaskList={"name": DECISION_TASK_LIST},
            defaultExecutionStartToCloseTimeout=execution_timeout,
            defaultTaskStartToCloseTimeout=decision_timeout,
            defaultChildPolicy="TERMINATE",
        )

    async def setup(self) -> None:
        """Register the domain, the default workflow type and the default activity type."""
        await self.register_domain()
        await self.register_workflow_type()
        await self.register_activity_type()

    async def start(
        self, workflow_id: str | None = None, *, input: str | None = None, **extra: Any
    ) -> Json:
        """Start an execution; returns ``{"workflowId", "runId"}``, usable as ``execution=``."""
        workflow_id = workflow_id or f"wf-{uuid.uuid4().hex[:12]}"
        if input is not None:
            extra["input"] = input
        extra.setdefault("workflowType", WORKFLOW_TYPE)
        started = await self.client.start_workflow_execution(
            domain=self.domain, workflowId=workflow_id, **extra
        )
        return {"workflowId": workflow_id, "runId": started["runId"]}

    async def poll_decision(
        self, task_list: str = DECISION_TASK_LIST, deadline: float = DEFAULT_DEADLINE
    ) -> Json:
        """The next decision task, with all its event pages; fails after ``deadline`` s."""
        if self.held_decision is not None:
            task, self.held_decision = self.held_decision, None
            return task
        task = await self._poll(self.client.poll_for_decision_task, task_list, deadline, "decision")
        events = list(task["events"])
        page = task
        while page.get("nextPageToken"):
            page = await self.client.poll_for_decision_task(
                domain=self.domain,
                taskList={"name": task_list},
                nextPageToken=page["nextPageToken"],
            )
            events.extend(page["events"])
        task["events"] = events
        return task

    async def poll_activity(
        self,
        task_list: str = ACTIVITY_TASK_LIST,
        deadline: float = DEFAULT_DEADLINE,
        identity: str = "swfkit",
    ) -> Json:
        """The next activity task; fails after ``deadline`` seconds without one."""
        return await self._poll(
            self.client.poll_for_activity_task, task_list, deadline, "activity", identity
        )

    async def _poll(
        self,
        poll: Callable[..., Awaitable[Json]],
        task_list: str,
        deadline: float,
        kind: str,
        identity: str = "swfkit",
    ) -> Json:
        give_up = time.monotonic() + deadline
        while True:
            task = await poll(domain=self.domain, taskList={"name": task_list}, identity=identity)
            if task.get("taskToken"):
                return task
            if time.monotonic() >= give_up:
                raise TimeoutError(f"no {kind} task on {task_list!r} within {deadline} s")

    async def decide(self, decisions: list[Json], task: Json | None = None) -> Json:
        """Answer ``task`` (by default the next decision task) with ``decisions``."""
        if task is None:
            task = await self.poll_decision()
        await self.client.respond_decision_task_completed(
            taskToken=task["taskToken"], decisions=decisions
        )
        return task

    async def schedule_activity(
        self, activity_id: str = "activity-1", task: Json | None = None, **options: Any
    ) -> Json:
        """Schedule one activity from the next decision task; ``options`` as in
        :func:`schedule_activity_decision` (``heartbeat_timeout="0.5"``...)."""
        return await self.decide([schedule_activity_decision(activity_id, **options)], task)

    async def request_cancel_activity(self, activity_id: str, task: Json | None = None) -> Json:
        return await self.decide([request_cancel_decision(activity_id)], task)

    async def start_activity(self, activity_id: str = "activity-1", **options: Any) -> Json:
        """Start an execution, schedule one activity and poll it: the started activity task."""
        await self.start()
        await self.schedule_activity(activity_id, **options)
        return await self.poll_activity()

    async def history(self, execution: Json, *, reverse: bool = False) -> list[Json]:
        """Every event of ``execution``, following the pages."""
        events: list[Json] = []
        token: str | None = None
        while True:
            kwargs: Json = {"nextPageToken": token} if token else {}
            page = await self.client.get_workflow_execution_history(
                domain=self.domain, execution=execution, reverseOrder=reverse, **kwargs
            )
            events.extend(page["events"])
            token = page.get("nextPageToken")
            if not token:
                return events

    async def wait_for_event(
        self, execution: Json, event_type: str, deadline: float = DEFAULT_DEADLINE
    ) -> Json:
        """The first ``event_type`` event of ``execution``, waiting for it by long-polling
        decision tasks (SWF schedules one for every event a decider must see).

        A decision task polled meanwhile is kept for the next :meth:`decide`; one kept from
        before is answered with no decisions first, so that new events can schedule another.
        """
        give_up = time.monotonic() + deadline
        while True:
            for event in await self.history(execution):
                if event["eventType"] == event_type:
                    return event
            if time.monotonic() >= give_up:
                raise TimeoutError(f"no {event_type} event within {deadline} s")
            if self.held_decision is not None:
                held, self.held_decision = self.held_decision, None
                await self.client.respond_decision_task_completed(
                    taskToken=held["taskToken"], decisions=[]
                )
            task: Json = await self.client.poll_for_decision_task(
                domain=self.domain, taskList={"name": DECISION_TASK_LIST}, identity="swfkit"
            )
            if task.get("taskToken"):
                self.held_decision = task
