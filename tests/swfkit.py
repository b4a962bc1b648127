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
# The dev server of the fixtures answers an empty poll after this long: short, so that tests
# waiting for nothing stay fast.
TEST_POLL_TIMEOUT = 1.0
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@functools.cache
def aio_session() -> Any:
    """One aiobotocore session for every test: a new one loads the service models again."""
    from aiobotocore.session import get_session

    return get_session()


def aio_client(endpoint_url: str) -> Any:
    """An aiobotocore SWF client for ``endpoint_url`` with the test settings (no retries,
    dummy credentials), to use as ``async with aio_client(url) as client``."""
    return aio_session().create_client(
        "swf",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        config=client_config(aio=True),
        **DUMMY_CREDENTIALS,
    )


def record_task_tokens(session: Any, tokens: set[str]) -> None:
    """Add to ``tokens`` every task token the clients of ``session`` (a botocore or
    aiobotocore session) receive from a poll, through botocore's documented event hooks:
    tests look for them where they must not be, such as log lines and printed output."""

    def record(parsed: Json, **_: Any) -> None:
        token = parsed.get("taskToken")
        if token:
            tokens.add(token)

    for operation in ("PollForActivityTask", "PollForDecisionTask"):
        session.register(f"after-call.swf.{operation}", record)


def client_config(*, aio: bool = False) -> Any:
    """SDK client settings for the dev server: no retries (a retried poll or answer would
    hide server behaviour) and a read timeout well above the poll timeout."""
    settings: Json = {
        "retries": {"max_attempts": 1, "mode": "standard"},
        "read_timeout": TEST_POLL_TIMEOUT + 10,
        "connect_timeout": 5,
        "max_pool_connections": 32,
    }
    if aio:
        from aiobotocore.config import AioConfig

        return AioConfig(**settings)
    from botocore.config import Config

    return Config(**settings)


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
        # The execution last started, which decide() wakes up when it needs a decision task.
        self.execution: Json | None = None

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
        self.execution = {"workflowId": workflow_id, "runId": started["runId"]}
        return self.execution

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

    async def next_decision(self, execution: Json | None = None) -> Json:
        """A decision task to answer: the one held, a pending one, or else one obtained by
        signalling ``execution`` (default: the last started), as a decider would be woken up
        by an outside event."""
        if self.held_decision is None:
            pending = await self.client.count_pending_decision_tasks(
                domain=self.domain, taskList={"name": DECISION_TASK_LIST}
            )
            if pending["count"] == 0:
                execution = execution or self.execution
                assert execution is not None, "start an execution first"
                await self.client.signal_workflow_execution(
                    domain=self.domain, signalName="swfkit-wake-up", **execution
                )
        return await self.poll_decision()

    async def decide(self, decisions: list[Json], task: Json | None = None) -> Json:
        """Answer ``task`` (by default :meth:`next_decision`) with ``decisions``."""
        if task is None:
            task = await self.next_decision()
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


def assert_matches_shape(value: Any, shape_name: str, path: str = "") -> None:
    """Check raw JSON from the server against botocore's SWF model: every member known,
    every required member present, every value of the modelled type.

    botocore's parser drops members it does not know, so only the raw JSON can show a
    misnamed attribute.
    """
    from heartbeat_worker.devserver._model import model

    _check_shape(value, model().shape_for(shape_name), path or shape_name)


def _check_shape(value: Any, shape: Any, path: str) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: members not in the model: {sorted(unknown)}"
        missing = [name for name in shape.required_members if name not in value]
        assert not missing, f"{path}: required members missing: {missing}"
        for name, item in value.items():
            _check_shape(item, shape.members[name], f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list"
        for index, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        enum = shape.metadata.get("enum")
        assert not enum or value in enum, f"{path}: {value!r} not in {enum}"
        assert len(value) <= shape.metadata.get("max", len(value)), f"{path}: too long"
    elif kind in ("integer", "long"):
        assert type(value) is int, f"{path}: not an int"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: not a boolean"
    elif kind == "timestamp":
        assert isinstance(value, int | float), f"{path}: not epoch seconds"
