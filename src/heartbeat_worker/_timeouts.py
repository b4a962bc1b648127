"""Which heartbeat and start-to-close timeouts are in force for a task.

``PollForActivityTask`` does not say, and a decider may override the type's defaults for
each task it schedules. Two ways to find out, with different API costs:

``"registered"`` (default)
    ``DescribeActivityType`` once per activity type per worker process, then from a cache.
    Cheap (SWF throttles that call at 6 per second per account), right unless deciders
    override timeouts per schedule.
``"history"``
    ``GetWorkflowExecutionHistory`` for every task, newest events first, until the task's
    ``ActivityTaskScheduled`` event: one call (rarely more) per task, against a 60 per
    second account quota; exact even when deciders override timeouts.

Either way, a failed look-up falls back to the next best value (the registered defaults,
then the decorator's), with a warning, rather than leaving a task without a heartbeater.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio

from ._definition import ActivityType
from ._logging import get_logger
from ._swf import SWFClient, is_transient, retry_transient

__all__ = ["ResolveMode", "TaskTimeouts", "TimeoutResolver", "TimeoutSource", "parse_timeout"]

ResolveMode = Literal["registered", "history"]

_LOOKUP_TIME = 10.0


def parse_timeout(value: str | None) -> float | None:
    if value is None or value == "NONE":
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class TaskTimeouts:
    heartbeat: float | None
    start_to_close: float | None

    @classmethod
    def from_declared(cls, activity_type: ActivityType) -> TaskTimeouts:
        return cls(activity_type.heartbeat_timeout, activity_type.start_to_close_timeout)


class TimeoutSource(Protocol):
    def guess(self, task: dict[str, Any], declared: ActivityType) -> tuple[TaskTimeouts, bool]:
        """The timeouts as far as known without a call, and whether they are final (if
        not, :meth:`resolve` finds the ones in force)."""
        ...

    async def resolve(self, task: dict[str, Any], declared: ActivityType) -> TaskTimeouts: ...


class TimeoutResolver:
    def __init__(self, client: SWFClient, domain: str, mode: ResolveMode) -> None:
        self._client = client
        self._domain = domain
        self._mode = mode
        self._registered: dict[tuple[str, str], TaskTimeouts] = {}
        self._lookups: dict[tuple[str, str], anyio.Lock] = {}
        self._log = get_logger(domain=domain)

    def guess(self, task: dict[str, Any], declared: ActivityType) -> tuple[TaskTimeouts, bool]:
        registered = self._registered.get(declared.key)
        if registered is None:
            return TaskTimeouts.from_declared(declared), False
        return registered, self._mode == "registered"

    async def resolve(self, task: dict[str, Any], declared: ActivityType) -> TaskTimeouts:
        if self._mode == "history":
            found = await self._from_history(task)
            if found is not None:
                return found
        return await self._from_registration(declared)

    async def _from_registration(self, declared: ActivityType) -> TaskTimeouts:
        key = declared.key
        if key in self._registered:
            return self._registered[key]
        # One look-up per type even when many tasks of a new type arrive at once.
        lock = self._lookups.setdefault(key, anyio.Lock())
        async with lock:
            if key in self._registered:
                return self._registered[key]
            try:
                reply = await retry_transient(
                    lambda: self._client.describe_activity_type(
                        domain=self._domain,
                        activityType={"name": declared.name, "version": declared.version},
                    ),
                    deadline=anyio.current_time() + _LOOKUP_TIME,
                    what="DescribeActivityType",
                )
            except Exception as error:
                self._log.warning(
                    "cannot read the registered timeouts; using the decorator's",
                    activity_type=declared.name,
                    activity_version=declared.version,
                    error=repr(error),
                )
                if is_transient(error):
                    return TaskTimeouts.from_declared(declared)  # not cached: try again later
                self._registered[key] = TaskTimeouts.from_declared(declared)
                return self._registered[key]
            configuration = reply["configuration"]
            found = TaskTimeouts(
                heartbeat=parse_timeout(configuration.get("defaultTaskHeartbeatTimeout")),
                start_to_close=parse_timeout(configuration.get("defaultTaskStartToCloseTimeout")),
            )
            if found != TaskTimeouts.from_declared(declared):
                self._log.warning(
                    "registered timeouts differ from the decorator's; the registered ones win",
                    activity_type=declared.name,
                    activity_version=declared.version,
                    registered_heartbeat=found.heartbeat,
                    declared_heartbeat=declared.heartbeat_timeout,
                    registered_start_to_close=found.start_to_close,
                    declared_start_to_close=declared.start_to_close_timeout,
                )
            self._registered[key] = found
            return found

    async def _from_history(self, task: dict[str, Any]) -> TaskTimeouts | None:
        started_event_id = int(task["startedEventId"])
        scheduled_event_id: int | None = None
        arguments: dict[str, Any] = {
            "domain": self._domain,
            "execution": task["workflowExecution"],
            "reverseOrder": True,
            "maximumPageSize": 100,
        }
        try:
            while True:
                page = await retry_transient(
                    lambda: self._client.get_workflow_execution_history(**arguments),
                    deadline=anyio.current_time() + _LOOKUP_TIME,
                    what="GetWorkflowExecutionHistory",
                )
                for event in page["events"]:
                    event_id = event["eventId"]
                    if event_id == started_event_id:
                        started = event["activityTaskStartedEventAttributes"]
                        scheduled_event_id = started["scheduledEventId"]
                    elif event_id == scheduled_event_id:
                        scheduled = event["activityTaskScheduledEventAttributes"]
                        return TaskTimeouts(
                            heartbeat=parse_timeout(scheduled.get("heartbeatTimeout")),
                            start_to_close=parse_timeout(scheduled.get("startToCloseTimeout")),
                        )
                    if scheduled_event_id is not None and event_id < scheduled_event_id:
                        break
                token = page.get("nextPageToken")
                if not token:
                    break
                arguments["nextPageToken"] = token
        except Exception as error:
            self._log.warning(
                "cannot read the task's timeouts from history; using the registered ones",
                workflow_id=task["workflowExecution"]["workflowId"],
                error=repr(error),
            )
            return None
        self._log.warning(
            "the task's ActivityTaskScheduled event was not found in history",
            workflow_id=task["workflowExecution"]["workflowId"],
        )
        return None
