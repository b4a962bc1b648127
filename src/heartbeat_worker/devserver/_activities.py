"""Activity tasks: scheduling and cancelling them (decisions), long polls, heartbeats, answers,
and the four activity timeouts.

Each timeout is a timer of its own. The heartbeat timer is not re-armed on every heartbeat,
which would cost a timer per call: a heartbeat only moves the task's deadline, and the timer,
when it fires early, re-arms itself for what is left.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Final

from ._state import ActivityTask, Execution, optional, parse_duration, unknown_task

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["OPEN_ACTIVITIES_MAX", "ActivityTasks"]

Json = dict[str, Any]

OPEN_ACTIVITIES_MAX: Final = 1000
"""Open activity tasks per execution, SWF's quota."""

_TIMEOUTS: Final = (
    # (decision member, type default, cause when neither is set)
    (
        "scheduleToCloseTimeout",
        "defaultTaskScheduleToCloseTimeout",
        "DEFAULT_SCHEDULE_TO_CLOSE_TIMEOUT_UNDEFINED",
    ),
    (
        "scheduleToStartTimeout",
        "defaultTaskScheduleToStartTimeout",
        "DEFAULT_SCHEDULE_TO_START_TIMEOUT_UNDEFINED",
    ),
    (
        "startToCloseTimeout",
        "defaultTaskStartToCloseTimeout",
        "DEFAULT_START_TO_CLOSE_TIMEOUT_UNDEFINED",
    ),
    ("heartbeatTimeout", "defaultTaskHeartbeatTimeout", "DEFAULT_HEARTBEAT_TIMEOUT_UNDEFINED"),
)


class ActivityTasks:
    """The activity tasks of every execution."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Decisions

    def schedule(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        """``ScheduleActivityTask``; True when it failed (the decider must see why)."""
        activity_type = attributes["activityType"]
        activity_id = attributes["activityId"]

        def failed(cause: str) -> bool:
            execution.record(
                "ScheduleActivityTaskFailed",
                {
                    "activityType": activity_type,
                    "activityId": activity_id,
                    "cause": cause,
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True

        record = execution.domain.activity_types.get(
            (activity_type["name"], activity_type["version"])
        )
        if record is None:
            return failed("ACTIVITY_TYPE_DOES_NOT_EXIST")
        if record.deprecated:
            return failed("ACTIVITY_TYPE_DEPRECATED")
        if activity_id in execution.activities:
            return failed("ACTIVITY_ID_ALREADY_IN_USE")
        if len(execution.activities) >= OPEN_ACTIVITIES_MAX:
            return failed("OPEN_ACTIVITIES_LIMIT_EXCEEDED")
        defaults = record.configuration
        timeouts: dict[str, str] = {}
        task_list = attributes.get("taskList") or defaults.get("defaultTaskList")
        for member, default, cause in _TIMEOUTS:
            value = attributes.get(member)
            if value is None:
                value = defaults.get(default)
            if value is None:
                return failed(cause)
            if member == "scheduleToCloseTimeout" and task_list is None:
                return failed("DEFAULT_TASK_LIST_UNDEFINED")
            timeouts[member] = value
        assert task_list is not None
        priority = attributes.get("taskPriority", defaults.get("defaultTaskPriority"))
        event: Json = {
            "activityType": activity_type,
            "activityId": activity_id,
            **timeouts,
            "taskList": task_list,
            "decisionTaskCompletedEventId": completed_id,
        }
        optional(event, "input", attributes.get("input"))
        optional(event, "control", attributes.get("control"))
        optional(event, "taskPriority", priority)
        scheduled_id = execution.record("ActivityTaskScheduled", event)
        # The model: "the time when the last activity task was scheduled for this execution".
        execution.latest_activity_task_timestamp = time.time()
        task = ActivityTask(
            execution=execution,
            activity_id=activity_id,
            activity_type=activity_type,
            task_list=task_list["name"],
            input=attributes.get("input"),
            scheduled_event_id=scheduled_id,
            schedule_to_start=parse_duration(timeouts["scheduleToStartTimeout"], ""),
            schedule_to_close=parse_duration(timeouts["scheduleToCloseTimeout"], ""),
            start_to_close=parse_duration(timeouts["startToCloseTimeout"], ""),
            heartbeat=parse_duration(timeouts["heartbeatTimeout"], ""),
        )
        execution.activities[activity_id] = task
        self.engine.task_changed(task)
        self._arm(task, "SCHEDULE_TO_START", task.schedule_to_start)
        self._arm(task, "SCHEDULE_TO_CLOSE", task.schedule_to_close)
        self.engine.activity_queue(execution.domain.name, task.task_list).put(task)
        return False

    def request_cancel(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        """``RequestCancelActivityTask``; True when the decider has something new to see."""
        activity_id = attributes["activityId"]
        task = execution.activities.get(activity_id)
        if task is None:
            execution.record(
                "RequestCancelActivityTaskFailed",
                {
                    "activityId": activity_id,
                    "cause": "ACTIVITY_ID_UNKNOWN",
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True
        requested_id = execution.record(
            "ActivityTaskCancelRequested",
            {"decisionTaskCompletedEventId": completed_id, "activityId": activity_id},
        )
        task.cancel_requested_event_id = requested_id
        self.engine.task_changed(task)
        if task.started_event_id:
            # The worker learns of it from its next heartbeat.
            return False
        self.close(task)
        execution.record(
            "ActivityTaskCanceled",
            {
                "scheduledEventId": task.scheduled_event_id,
                "startedEventId": 0,
                "latestCancelRequestedEventId": requested_id,
            },
        )
        return True

    # Timeouts

    def _arm(self, task: ActivityTask, timeout_type: str, seconds: float | None) -> None:
        if seconds is not None:
            task.handles[timeout_type] = self.engine.later(
                seconds, self.timed_out, task, timeout_type
            )

    def heartbeat_due(self, task: ActivityTask) -> None:
        if task.closed:
            return
        loop = self.engine.loop
        remaining = task.heartbeat_deadline - loop.time()
        if remaining > 0:
            task.handles["HEARTBEAT"] = self.engine.later(remaining, self.heartbeat_due, task)
            return
        self.timed_out(task, "HEARTBEAT")

    def timed_out(self, task: ActivityTask, timeout_type: str) -> None:
        if task.closed:
            return
        task.handles.pop(timeout_type, None)
        attributes: Json = {
            "timeoutType": timeout_type,
            "scheduledEventId": task.scheduled_event_id,
            "startedEventId": task.started_event_id,
        }
        optional(attributes, "details", task.details)
        self.close(task)
        task.execution.record("ActivityTaskTimedOut", attributes)
        self.engine.decisions.need(task.execution)

    def close(self, task: ActivityTask) -> None:
        """Close the task, whatever its state: its timers stop and its token stops working."""
        task.closed = True
        task.cancel_timers()
        self.engine.task_changed(task)
        if task.token is not None:
            self.engine.activity_tokens.pop(task.token, None)
        else:
            self.engine.activity_queue(task.execution.domain.name, task.task_list).remove(task)
        task.execution.activities.pop(task.activity_id, None)

    # Polls

    def _start(self, task: ActivityTask, identity: str | None) -> Json | None:
        if task.closed or task.started_event_id:
            return None
        engine = self.engine
        execution = task.execution
        attributes: Json = {"scheduledEventId": task.scheduled_event_id}
        optional(attributes, "identity", identity)
        task.started_event_id = execution.record("ActivityTaskStarted", attributes)
        handle = task.handles.pop("SCHEDULE_TO_START", None)
        if handle is not None:
            handle.cancel()
        task.token = engine.new_token()
        engine.activity_tokens[task.token] = task
        engine.task_changed(task)
        self._arm(task, "START_TO_CLOSE", task.start_to_close)
        if task.heartbeat is not None:
            # The heartbeat clock starts now.
            task.heartbeat_deadline = engine.loop.time() + task.heartbeat
            task.handles["HEARTBEAT"] = engine.later(task.heartbeat, self.heartbeat_due, task)
        result: Json = {
            "taskToken": task.token,
            "activityId": task.activity_id,
            "startedEventId": task.started_event_id,
            "workflowExecution": execution.reference(),
            "activityType": task.activity_type,
        }
        optional(result, "input", task.input)
        return result

    async def poll(self, body: Json) -> Json:
        engine = self.engine
        domain = engine.registry.domain(body["domain"])
        queue = engine.activity_queue(domain.name, body["taskList"]["name"])
        result = await queue.get(
            engine.poll_timeout,
            functools.partial(self._start, identity=body.get("identity")),
            engine.poll_alive(),
            body.get("identity"),
        )
        if result is None:
            return {"startedEventId": 0}
        return result

    # Heartbeats and answers

    def _started(self, token: str) -> ActivityTask:
        task = self.engine.activity_tokens.get(token)
        if task is None:
            raise unknown_task()
        return task

    def heartbeat(self, body: Json) -> Json:
        task = self._started(body["taskToken"])
        task.details = body.get("details")
        task.heartbeats += 1
        task.last_heartbeat_at = time.time()
        if task.heartbeat is not None:
            task.heartbeat_deadline = self.engine.loop.time() + task.heartbeat
        store = self.engine.store
        if store is not None:
            store.heartbeat(task)
        return {"cancelRequested": task.cancel_requested_event_id is not None}

    def _finish(self, body: Json, event_type: str, members: tuple[str, ...]) -> Json:
        task = self._started(body["taskToken"])
        attributes: Json = {
            "scheduledEventId": task.scheduled_event_id,
            "startedEventId": task.started_event_id,
        }
        for name in members:
            optional(attributes, name, body.get(name))
        if event_type == "ActivityTaskCanceled":
            optional(attributes, "latestCancelRequestedEventId", task.cancel_requested_event_id)
        self.close(task)
        task.execution.record(event_type, attributes)
        self.engine.decisions.need(task.execution)
        return {}

    def respond_completed(self, body: Json) -> Json:
        return self._finish(body, "ActivityTaskCompleted", ("result",))

    def respond_failed(self, body: Json) -> Json:
        return self._finish(body, "ActivityTaskFailed", ("reason", "details"))

    def respond_canceled(self, body: Json) -> Json:
        return self._finish(body, "ActivityTaskCanceled", ("details",))
