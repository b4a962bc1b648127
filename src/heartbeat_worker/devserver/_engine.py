"""The SWF state machine: workflow executions, decision and activity tasks, and their timers.

Everything runs on one event loop and no handler awaits between checking a request and
changing the state, so a request either fails before it changes anything or applies entirely.
Timeouts are ``loop.call_later`` timers, so they fire whether or not anyone calls the server.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ._model import VALIDATION_EXCEPTION, SWFError
from ._paging import decode_page_token, encode_page_token, page
from ._queue import TaskQueue
from ._registry import Registry
from ._state import (
    ActivityTask,
    DecisionTask,
    Domain,
    Execution,
    Timer,
    parse_duration,
)

__all__ = ["Engine"]

Json = dict[str, Any]
SyncHandler = Callable[[Json], Json]
AsyncHandler = Callable[[Json], Awaitable[Json]]

OPEN_ACTIVITIES_MAX: Final = 1000

# Decisions the server does not emulate; refused whole rather than half applied.
_UNSUPPORTED_DECISIONS: Final = frozenset(
    {
        "ContinueAsNewWorkflowExecution",
        "SignalExternalWorkflowExecution",
        "RequestCancelExternalWorkflowExecution",
        "StartChildWorkflowExecution",
        "ScheduleLambdaFunction",
    }
)
# Decisions whose attributes structure is required although the model marks it optional.
_ATTRIBUTES_REQUIRED: Final = frozenset(
    {
        "ScheduleActivityTask",
        "RequestCancelActivityTask",
        "RecordMarker",
        "StartTimer",
        "CancelTimer",
    }
)
_CLOSE_DECISIONS: Final = {
    "CompleteWorkflowExecution": ("WorkflowExecutionCompleted", "COMPLETED"),
    "FailWorkflowExecution": ("WorkflowExecutionFailed", "FAILED"),
    "CancelWorkflowExecution": ("WorkflowExecutionCanceled", "CANCELED"),
}
_ACTIVITY_TIMEOUTS: Final = (
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


def _unknown_task() -> SWFError:
    # Never echo the token: it is a credential for the task.
    return SWFError(
        "UnknownResourceFault",
        "Unknown task token: the task does not exist, is already closed, or the token is invalid",
    )


def _attributes_key(decision_type: str) -> str:
    return decision_type[0].lower() + decision_type[1:] + "DecisionAttributes"


def _optional(target: Json, name: str, value: Any) -> None:
    if value is not None:
        target[name] = value


class Engine:
    """The whole emulated service; one instance per server."""

    def __init__(self, poll_timeout: float) -> None:
        self.poll_timeout = poll_timeout
        self.loop = asyncio.get_running_loop()
        self.registry = Registry()
        self.activity_queues: dict[tuple[str, str], TaskQueue[ActivityTask, Json]] = {}
        self.decision_queues: dict[tuple[str, str], TaskQueue[DecisionTask, Json]] = {}
        self.activity_tokens: dict[str, ActivityTask] = {}
        self.decision_tokens: dict[str, DecisionTask] = {}
        self.decision_pages: dict[str, DecisionTask] = {}
        self.sync_handlers: dict[str, SyncHandler] = {
            **self.registry.handlers(),
            "StartWorkflowExecution": self.start_workflow_execution,
            "SignalWorkflowExecution": self.signal_workflow_execution,
            "RequestCancelWorkflowExecution": self.request_cancel_workflow_execution,
            "TerminateWorkflowExecution": self.terminate_workflow_execution,
            "DescribeWorkflowExecution": self.describe_workflow_execution,
            "GetWorkflowExecutionHistory": self.get_workflow_execution_history,
            "ListOpenWorkflowExecutions": self.list_open_workflow_executions,
            "ListClosedWorkflowExecutions": self.list_closed_workflow_executions,
            "CountOpenWorkflowExecutions": self.count_open_workflow_executions,
            "CountClosedWorkflowExecutions": self.count_closed_workflow_executions,
            "CountPendingActivityTasks": self.count_pending_activity_tasks,
            "CountPendingDecisionTasks": self.count_pending_decision_tasks,
            "RespondDecisionTaskCompleted": self.respond_decision_task_completed,
            "RecordActivityTaskHeartbeat": self.record_activity_task_heartbeat,
            "RespondActivityTaskCompleted": self.respond_activity_task_completed,
            "RespondActivityTaskFailed": self.respond_activity_task_failed,
            "RespondActivityTaskCanceled": self.respond_activity_task_canceled,
        }
        self._deciders: dict[str, Callable[[Execution, Json, int], bool]] = {
            "ScheduleActivityTask": self._schedule_activity,
            "RequestCancelActivityTask": self._request_cancel_activity,
            "StartTimer": self._start_timer,
            "CancelTimer": self._cancel_timer,
            "RecordMarker": self._record_marker,
        }
        self.async_handlers: dict[str, AsyncHandler] = {
            "PollForActivityTask": self.poll_for_activity_task,
            "PollForDecisionTask": self.poll_for_decision_task,
        }

    def close(self) -> None:
        """Answer the waiting polls and stop every timer, so that nothing fires after the
        server is gone."""
        for activity_queue in self.activity_queues.values():
            activity_queue.release()
        for decision_queue in self.decision_queues.values():
            decision_queue.release()
        for domain in self.registry.domains.values():
            for execution in domain.open_executions.values():
                if execution.handle is not None:
                    execution.handle.cancel()
                for task in execution.activities.values():
                    task.cancel_timers()
                for timer in execution.timers.values():
                    timer.handle.cancel()
                for decision in (execution.started_decision, execution.scheduled_decision):
                    if decision is not None and decision.handle is not None:
                        decision.handle.cancel()

    # Queues

    def _activity_queue(self, domain: str, task_list: str) -> TaskQueue[ActivityTask, Json]:
        key = (domain, task_list)
        queue = self.activity_queues.get(key)
        if queue is None:
            queue = self.activity_queues[key] = TaskQueue()
        return queue

    def _decision_queue(self, domain: str, task_list: str) -> TaskQueue[DecisionTask, Json]:
        key = (domain, task_list)
        queue = self.decision_queues.get(key)
        if queue is None:
            queue = self.decision_queues[key] = TaskQueue()
        return queue

    # Executions

    def start_workflow_execution(self, body: Json) -> Json:
        domain = self.registry.active_domain(body["domain"])
        record = self.registry.workflow_type(domain, body["workflowType"])
        if record.deprecated:
            raise SWFError(
                "TypeDeprecatedFault",
                f"WorkflowType=[name={record.name}, version={record.version}] is deprecated",
            )
        defaults = record.configuration

        def resolved(member: str, default: str) -> Any:
            value = body.get(member)
            if value is None:
                value = defaults.get(default)
            if value is None:
                raise SWFError(
                    "DefaultUndefinedFault",
                    f"{member} is not given and the workflow type has no {default}",
                )
            return value

        task_list = resolved("taskList", "defaultTaskList")["name"]
        execution_timeout = resolved(
            "executionStartToCloseTimeout", "defaultExecutionStartToCloseTimeout"
        )
        task_timeout = resolved("taskStartToCloseTimeout", "defaultTaskStartToCloseTimeout")
        child_policy = resolved("childPolicy", "defaultChildPolicy")
        seconds = parse_duration(execution_timeout, "executionStartToCloseTimeout")
        if seconds is None:
            raise SWFError(
                VALIDATION_EXCEPTION,
                "1 validation error detected: Value 'NONE' at 'executionStartToCloseTimeout' "
                "failed to satisfy constraint: Member must be a number of seconds",
            )
        parse_duration(task_timeout, "taskStartToCloseTimeout")
        workflow_id = body["workflowId"]
        if workflow_id in domain.open_executions:
            raise SWFError(
                "WorkflowExecutionAlreadyStartedFault",
                f"An execution with workflowId {workflow_id} is already open",
            )
        priority = body.get("taskPriority", defaults.get("defaultTaskPriority"))
        execution = Execution(
            domain=domain,
            workflow_id=workflow_id,
            run_id=uuid.uuid4().hex,
            workflow_type={"name": record.name, "version": record.version},
            task_list=task_list,
            task_priority=priority,
            execution_start_to_close=execution_timeout,
            task_start_to_close=task_timeout,
            child_policy=child_policy,
            tag_list=list(body.get("tagList") or ()),
            start_timestamp=time.time(),
        )
        attributes: Json = {
            "executionStartToCloseTimeout": execution_timeout,
            "taskStartToCloseTimeout": task_timeout,
            "childPolicy": child_policy,
            "taskList": {"name": task_list},
            "workflowType": execution.workflow_type,
        }
        _optional(attributes, "input", body.get("input"))
        _optional(attributes, "taskPriority", priority)
        if execution.tag_list:
            attributes["tagList"] = execution.tag_list
        _optional(attributes, "lambdaRole", body.get("lambdaRole"))
        execution.record("WorkflowExecutionStarted", attributes)
        domain.open_executions[workflow_id] = execution
        domain.runs[(workflow_id, execution.run_id)] = execution
        execution.handle = self.loop.call_later(seconds, self._workflow_timed_out, execution)
        self._schedule_decision(execution)
        return {"runId": execution.run_id}

    def _open_execution(self, body: Json) -> Execution:
        domain = self.registry.domain(body["domain"])
        execution = domain.open_executions.get(body["workflowId"])
        run_id = body.get("runId")
        if execution is None or (run_id and run_id != execution.run_id):
            raise SWFError(
                "UnknownResourceFault", f"Unknown execution: workflowId={body['workflowId']}"
            )
        return execution

    def _any_execution(self, body: Json) -> Execution:
        domain = self.registry.domain(body["domain"])
        reference = body["execution"]
        execution = domain.runs.get((reference["workflowId"], reference["runId"]))
        if execution is None:
            raise SWFError(
                "UnknownResourceFault",
                f"Unknown execution: WorkflowExecution=[workflowId={reference['workflowId']}, "
                f"runId={reference['runId']}]",
            )
        return execution

    def signal_workflow_execution(self, body: Json) -> Json:
        execution = self._open_execution(body)
        attributes: Json = {"signalName": body["signalName"]}
        _optional(attributes, "input", body.get("input"))
        execution.record("WorkflowExecutionSignaled", attributes)
        self._need_decision(execution)
        return {}

    def request_cancel_workflow_execution(self, body: Json) -> Json:
        execution = self._open_execution(body)
        if not execution.cancel_requested:
            execution.cancel_requested = True
            execution.record("WorkflowExecutionCancelRequested", {})
            self._need_decision(execution)
        return {}

    def terminate_workflow_execution(self, body: Json) -> Json:
        execution = self._open_execution(body)
        attributes: Json = {"childPolicy": body.get("childPolicy") or execution.child_policy}
        _optional(attributes, "reason", body.get("reason"))
        _optional(attributes, "details", body.get("details"))
        execution.record("WorkflowExecutionTerminated", attributes)
        self._close(execution, "TERMINATED")
        return {}

    def _workflow_timed_out(self, execution: Execution) -> None:
        if not execution.is_open:
            return
        execution.record(
            "WorkflowExecutionTimedOut",
            {"timeoutType": "START_TO_CLOSE", "childPolicy": execution.child_policy},
        )
        self._close(execution, "TIMED_OUT")

    def _close(self, execution: Execution, status: str) -> None:
        """Close the execution and everything still open in it: tasks, timers, decisions."""
        execution.close_status = status
        execution.close_timestamp = time.time()
        if execution.handle is not None:
            execution.handle.cancel()
            execution.handle = None
        for task in list(execution.activities.values()):
            self._close_activity(task)
        for timer in execution.timers.values():
            timer.handle.cancel()
        execution.timers.clear()
        scheduled = execution.scheduled_decision
        if scheduled is not None:
            self._decision_queue(execution.domain.name, execution.task_list).remove(scheduled)
            execution.scheduled_decision = None
        if execution.started_decision is not None:
            self._drop_decision(execution.started_decision)
        del execution.domain.open_executions[execution.workflow_id]

    def describe_workflow_execution(self, body: Json) -> Json:
        execution = self._any_execution(body)
        configuration: Json = {
            "taskStartToCloseTimeout": execution.task_start_to_close,
            "executionStartToCloseTimeout": execution.execution_start_to_close,
            "taskList": {"name": execution.task_list},
            "childPolicy": execution.child_policy,
        }
        _optional(configuration, "taskPriority", execution.task_priority)
        open_decisions = int(
            execution.scheduled_decision is not None or execution.started_decision is not None
        )
        result: Json = {
            "executionInfo": execution.info(),
            "executionConfiguration": configuration,
            "openCounts": {
                "openActivityTasks": len(execution.activities),
                "openDecisionTasks": open_decisions,
                "openTimers": len(execution.timers),
                "openChildWorkflowExecutions": 0,
                "openLambdaFunctions": 0,
            },
        }
        _optional(result, "latestActivityTaskTimestamp", execution.latest_activity_task_timestamp)
        _optional(result, "latestExecutionContext", execution.latest_execution_context)
        return result

    def get_workflow_execution_history(self, body: Json) -> Json:
        execution = self._any_execution(body)
        key = f"{execution.workflow_id}/{execution.run_id}"
        return page(execution.events, body, "events", "history", key)

    # Listing and counting executions

    def _matching(self, body: Json, *, closed: bool) -> list[Execution]:
        domain = self.registry.domain(body["domain"])
        exclusive = [
            name
            for name in ("executionFilter", "typeFilter", "tagFilter", "closeStatusFilter")
            if body.get(name) is not None
        ]
        if len(exclusive) > 1:
            raise SWFError(
                VALIDATION_EXCEPTION,
                "executionFilter, typeFilter, tagFilter and closeStatusFilter are mutually "
                f"exclusive; got {', '.join(exclusive)}",
            )
        start_filter = body.get("startTimeFilter")
        close_filter = body.get("closeTimeFilter")
        if closed and (start_filter is None) == (close_filter is None):
            raise SWFError(
                VALIDATION_EXCEPTION, "Exactly one of startTimeFilter and closeTimeFilter is needed"
            )
        execution_filter = body.get("executionFilter")
        type_filter = body.get("typeFilter")
        tag_filter = body.get("tagFilter")
        status_filter = body.get("closeStatusFilter")

        def in_range(moment: float | None, window: Json | None) -> bool:
            if window is None:
                return True
            if moment is None or moment < window["oldestDate"]:
                return False
            latest = window.get("latestDate")
            return latest is None or moment <= latest

        found = []
        for execution in domain.runs.values():
            if execution.is_open == closed:
                continue
            if not in_range(execution.start_timestamp, start_filter):
                continue
            if closed and not in_range(execution.close_timestamp, close_filter):
                continue
            if execution_filter and execution.workflow_id != execution_filter["workflowId"]:
                continue
            if type_filter and (
                execution.workflow_type["name"] != type_filter["name"]
                or type_filter.get("version") not in (None, execution.workflow_type["version"])
            ):
                continue
            if tag_filter and tag_filter["tag"] not in execution.tag_list:
                continue
            if status_filter and execution.close_status != status_filter["status"]:
                continue
            found.append(execution)
        # SWF lists newest first unless reverseOrder is set.
        if close_filter is not None:
            found.sort(key=lambda execution: execution.close_timestamp or 0.0, reverse=True)
        else:
            found.sort(key=lambda execution: execution.start_timestamp, reverse=True)
        return found

    def list_open_workflow_executions(self, body: Json) -> Json:
        infos = [execution.info() for execution in self._matching(body, closed=False)]
        return page(infos, body, "executionInfos", "open-executions", body["domain"])

    def list_closed_workflow_executions(self, body: Json) -> Json:
        infos = [execution.info() for execution in self._matching(body, closed=True)]
        return page(infos, body, "executionInfos", "closed-executions", body["domain"])

    def count_open_workflow_executions(self, body: Json) -> Json:
        return {"count": len(self._matching(body, closed=False)), "truncated": False}

    def count_closed_workflow_executions(self, body: Json) -> Json:
        return {"count": len(self._matching(body, closed=True)), "truncated": False}

    def count_pending_activity_tasks(self, body: Json) -> Json:
        domain = self.registry.domain(body["domain"]).name
        queue = self.activity_queues.get((domain, body["taskList"]["name"]))
        return {"count": len(queue) if queue is not None else 0, "truncated": False}

    def count_pending_decision_tasks(self, body: Json) -> Json:
        domain = self.registry.domain(body["domain"]).name
        queue = self.decision_queues.get((domain, body["taskList"]["name"]))
        return {"count": len(queue) if queue is not None else 0, "truncated": False}

    # Decision tasks

    def _need_decision(self, execution: Execution) -> None:
        """Something a decider must see happened: make sure a decision task will follow."""
        if not execution.is_open or execution.scheduled_decision is not None:
            return
        if execution.started_decision is not None:
            execution.decision_needed = True
            return
        self._schedule_decision(execution)

    def _schedule_decision(self, execution: Execution) -> None:
        attributes: Json = {
            "taskList": {"name": execution.task_list},
            "startToCloseTimeout": execution.task_start_to_close,
        }
        _optional(attributes, "taskPriority", execution.task_priority)
        event_id = execution.record("DecisionTaskScheduled", attributes)
        decision = DecisionTask(execution, event_id)
        execution.scheduled_decision = decision
        self._decision_queue(execution.domain.name, execution.task_list).put(decision)

    def _start_decision(self, decision: DecisionTask, body: Json) -> Json | None:
        execution = decision.execution
        if not execution.is_open or execution.scheduled_decision is not decision:
            return None
        execution.scheduled_decision = None
        attributes: Json = {"scheduledEventId": decision.scheduled_event_id}
        _optional(attributes, "identity", body.get("identity"))
        decision.started_event_id = execution.record("DecisionTaskStarted", attributes)
        decision.token = secrets.token_urlsafe(32)
        self.decision_tokens[decision.token] = decision
        execution.started_decision = decision
        execution.decision_needed = False
        seconds = parse_duration(execution.task_start_to_close, "taskStartToCloseTimeout")
        if seconds is not None:
            decision.handle = self.loop.call_later(seconds, self._decision_timed_out, decision)
        return self._decision_page(decision, body, 0)

    def _decision_page(self, decision: DecisionTask, body: Json, offset: int) -> Json:
        execution = decision.execution
        events = execution.events[: decision.started_event_id]
        previous = execution.previous_started_event_id
        if body.get("startAtPreviousStartedEvent") and previous:
            events = events[previous - 1 :]
        if body.get("reverseOrder"):
            events = events[::-1]
        size = body.get("maximumPageSize") or 1000
        assert decision.token is not None
        result: Json = {
            "taskToken": decision.token,
            "startedEventId": decision.started_event_id,
            "workflowExecution": execution.reference(),
            "workflowType": execution.workflow_type,
            "events": events[offset : offset + size],
            "previousStartedEventId": previous,
        }
        if offset + size < len(events):
            if decision.page_key is None:
                decision.page_key = secrets.token_urlsafe(16)
                self.decision_pages[decision.page_key] = decision
            next_offset = offset + size
            result["nextPageToken"] = encode_page_token("decision", decision.page_key, next_offset)
        return result

    async def poll_for_decision_task(self, body: Json) -> Json:
        domain = self.registry.domain(body["domain"])
        token = body.get("nextPageToken")
        if token:
            key, offset = decode_page_token(token, "decision")
            decision = self.decision_pages.get(key)
            if decision is None:
                raise SWFError("UnknownResourceFault", "The decision task of this page is closed")
            return self._decision_page(decision, body, offset)
        queue = self._decision_queue(domain.name, body["taskList"]["name"])
        result = await queue.get(
            self.poll_timeout, functools.partial(self._start_decision, body=body)
        )
        if result is None:
            return {"startedEventId": 0, "previousStartedEventId": 0}
        return result

    def _drop_decision(self, decision: DecisionTask) -> None:
        if decision.handle is not None:
            decision.handle.cancel()
            decision.handle = None
        if decision.token is not None:
            self.decision_tokens.pop(decision.token, None)
        if decision.page_key is not None:
            self.decision_pages.pop(decision.page_key, None)
        decision.execution.started_decision = None

    def _decision_timed_out(self, decision: DecisionTask) -> None:
        execution = decision.execution
        if execution.started_decision is not decision:
            return
        self._drop_decision(decision)
        execution.record(
            "DecisionTaskTimedOut",
            {
                "timeoutType": "START_TO_CLOSE",
                "scheduledEventId": decision.scheduled_event_id,
                "startedEventId": decision.started_event_id,
            },
        )
        self._schedule_decision(execution)

    def _check_decisions(self, decisions: list[Json]) -> None:
        """Refuse the whole answer before anything is applied, as SWF validates it first."""
        for index, decision in enumerate(decisions, start=1):
            decision_type = decision["decisionType"]
            path = f"decisions.{index}.member"
            if decision_type in _UNSUPPORTED_DECISIONS:
                raise SWFError(
                    VALIDATION_EXCEPTION,
                    f"Decision {decision_type} at '{path}' is not emulated by the "
                    "heartbeat-worker dev server",
                )
            key = _attributes_key(decision_type)
            attributes = decision.get(key)
            if attributes is None:
                if decision_type in _ATTRIBUTES_REQUIRED:
                    raise SWFError(
                        VALIDATION_EXCEPTION,
                        f"1 validation error detected: Value null at '{path}.{key}' failed to "
                        "satisfy constraint: Member must not be null",
                    )
                continue
            for name, value in attributes.items():
                if name.endswith("Timeout") and isinstance(value, str):
                    seconds = parse_duration(value, f"{path}.{key}.{name}")
                    if seconds is None and name == "startToFireTimeout":
                        raise SWFError(
                            VALIDATION_EXCEPTION,
                            f"1 validation error detected: Value 'NONE' at '{path}.{key}.{name}' "
                            "failed to satisfy constraint: Member must be a number of seconds",
                        )

    def respond_decision_task_completed(self, body: Json) -> Json:
        decision = self.decision_tokens.get(body["taskToken"])
        if decision is None:
            raise _unknown_task()
        decisions: list[Json] = body.get("decisions") or []
        self._check_decisions(decisions)
        execution = decision.execution
        self._drop_decision(decision)
        attributes: Json = {
            "scheduledEventId": decision.scheduled_event_id,
            "startedEventId": decision.started_event_id,
        }
        context = body.get("executionContext")
        _optional(attributes, "executionContext", context)
        if context is not None:
            execution.latest_execution_context = context
        new_task_list = body.get("taskList")
        if new_task_list is not None:
            attributes["taskList"] = new_task_list
            execution.task_list = new_task_list["name"]
        completed_id = execution.record("DecisionTaskCompleted", attributes)
        execution.previous_started_event_id = decision.started_event_id
        needed = execution.decision_needed
        execution.decision_needed = False
        unhandled = needed
        for item in decisions:
            if not execution.is_open:
                break
            decision_type = item["decisionType"]
            attributes = item.get(_attributes_key(decision_type)) or {}
            if decision_type in _CLOSE_DECISIONS:
                needed |= self._close_decision(
                    execution, decision_type, attributes, completed_id, unhandled
                )
            else:
                needed |= self._deciders[decision_type](execution, attributes, completed_id)
        if needed and execution.is_open:
            self._schedule_decision(execution)
        return {}

    def _close_decision(
        self,
        execution: Execution,
        decision_type: str,
        attributes: Json,
        completed_id: int,
        unhandled: bool,
    ) -> bool:
        if unhandled:
            # Events arrived while the decider was deciding: SWF refuses to close on them.
            execution.record(
                decision_type + "Failed",
                {"cause": "UNHANDLED_DECISION", "decisionTaskCompletedEventId": completed_id},
            )
            return True
        event_type, status = _CLOSE_DECISIONS[decision_type]
        event: Json = {"decisionTaskCompletedEventId": completed_id}
        for name in ("result", "reason", "details"):
            _optional(event, name, attributes.get(name))
        execution.record(event_type, event)
        self._close(execution, status)
        return False

    def _schedule_activity(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
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
        for member, default, cause in _ACTIVITY_TIMEOUTS:
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
        _optional(event, "input", attributes.get("input"))
        _optional(event, "control", attributes.get("control"))
        _optional(event, "taskPriority", priority)
        scheduled_id = execution.record("ActivityTaskScheduled", event)
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
        self._arm(task, "SCHEDULE_TO_START", task.schedule_to_start)
        self._arm(task, "SCHEDULE_TO_CLOSE", task.schedule_to_close)
        self._activity_queue(execution.domain.name, task.task_list).put(task)
        return False

    def _request_cancel_activity(
        self, execution: Execution, attributes: Json, completed_id: int
    ) -> bool:
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
        if task.started_event_id:
            # The worker learns of it from its next heartbeat.
            return False
        self._close_activity(task)
        execution.record(
            "ActivityTaskCanceled",
            {
                "scheduledEventId": task.scheduled_event_id,
                "startedEventId": 0,
                "latestCancelRequestedEventId": requested_id,
            },
        )
        return True

    def _start_timer(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        timer_id = attributes["timerId"]
        if timer_id in execution.timers:
            execution.record(
                "StartTimerFailed",
                {
                    "timerId": timer_id,
                    "cause": "TIMER_ID_ALREADY_IN_USE",
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True
        fire_after = attributes["startToFireTimeout"]
        event: Json = {
            "timerId": timer_id,
            "startToFireTimeout": fire_after,
            "decisionTaskCompletedEventId": completed_id,
        }
        _optional(event, "control", attributes.get("control"))
        started_id = execution.record("TimerStarted", event)
        seconds = parse_duration(fire_after, "startToFireTimeout") or 0.0
        handle = self.loop.call_later(seconds, self._timer_fired, execution, timer_id, started_id)
        execution.timers[timer_id] = Timer(timer_id, started_id, handle)
        return False

    def _timer_fired(self, execution: Execution, timer_id: str, started_id: int) -> None:
        timer = execution.timers.get(timer_id)
        if timer is None or timer.started_event_id != started_id:
            return
        del execution.timers[timer_id]
        execution.record("TimerFired", {"timerId": timer_id, "startedEventId": started_id})
        self._need_decision(execution)

    def _cancel_timer(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        timer_id = attributes["timerId"]
        timer = execution.timers.pop(timer_id, None)
        if timer is None:
            execution.record(
                "CancelTimerFailed",
                {
                    "timerId": timer_id,
                    "cause": "TIMER_ID_UNKNOWN",
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True
        timer.handle.cancel()
        execution.record(
            "TimerCanceled",
            {
                "timerId": timer_id,
                "startedEventId": timer.started_event_id,
                "decisionTaskCompletedEventId": completed_id,
            },
        )
        return False

    def _record_marker(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        event: Json = {
            "markerName": attributes["markerName"],
            "decisionTaskCompletedEventId": completed_id,
        }
        _optional(event, "details", attributes.get("details"))
        execution.record("MarkerRecorded", event)
        return False

    # Activity tasks

    def _arm(self, task: ActivityTask, timeout_type: str, seconds: float | None) -> None:
        if seconds is not None:
            task.handles[timeout_type] = self.loop.call_later(
                seconds, self._activity_timed_out, task, timeout_type
            )

    def _start_activity(self, task: ActivityTask, identity: str | None) -> Json | None:
        if task.closed or task.started_event_id:
            return None
        execution = task.execution
        attributes: Json = {"scheduledEventId": task.scheduled_event_id}
        _optional(attributes, "identity", identity)
        task.started_event_id = execution.record("ActivityTaskStarted", attributes)
        execution.latest_activity_task_timestamp = time.time()
        handle = task.handles.pop("SCHEDULE_TO_START", None)
        if handle is not None:
            handle.cancel()
        task.token = secrets.token_urlsafe(32)
        self.activity_tokens[task.token] = task
        self._arm(task, "START_TO_CLOSE", task.start_to_close)
        if task.heartbeat is not None:
            # The heartbeat clock starts now; heartbeats only move the deadline, and the timer
            # re-arms itself until the deadline really passes.
            task.heartbeat_deadline = self.loop.time() + task.heartbeat
            task.handles["HEARTBEAT"] = self.loop.call_later(
                task.heartbeat, self._heartbeat_due, task
            )
        result: Json = {
            "taskToken": task.token,
            "activityId": task.activity_id,
            "startedEventId": task.started_event_id,
            "workflowExecution": execution.reference(),
            "activityType": task.activity_type,
        }
        _optional(result, "input", task.input)
        return result

    def _heartbeat_due(self, task: ActivityTask) -> None:
        if task.closed:
            return
        remaining = task.heartbeat_deadline - self.loop.time()
        if remaining > 0:
            task.handles["HEARTBEAT"] = self.loop.call_later(remaining, self._heartbeat_due, task)
            return
        self._activity_timed_out(task, "HEARTBEAT")

    def _activity_timed_out(self, task: ActivityTask, timeout_type: str) -> None:
        if task.closed:
            return
        task.handles.pop(timeout_type, None)
        attributes: Json = {
            "timeoutType": timeout_type,
            "scheduledEventId": task.scheduled_event_id,
            "startedEventId": task.started_event_id,
        }
        _optional(attributes, "details", task.details)
        self._close_activity(task)
        task.execution.record("ActivityTaskTimedOut", attributes)
        self._need_decision(task.execution)

    def _close_activity(self, task: ActivityTask) -> None:
        task.closed = True
        task.cancel_timers()
        if task.token is not None:
            self.activity_tokens.pop(task.token, None)
        else:
            self._activity_queue(task.execution.domain.name, task.task_list).remove(task)
        task.execution.activities.pop(task.activity_id, None)

    async def poll_for_activity_task(self, body: Json) -> Json:
        domain: Domain = self.registry.domain(body["domain"])
        queue = self._activity_queue(domain.name, body["taskList"]["name"])
        result = await queue.get(
            self.poll_timeout,
            functools.partial(self._start_activity, identity=body.get("identity")),
        )
        if result is None:
            return {"startedEventId": 0}
        return result

    def _started_activity(self, token: str) -> ActivityTask:
        task = self.activity_tokens.get(token)
        if task is None:
            raise _unknown_task()
        return task

    def record_activity_task_heartbeat(self, body: Json) -> Json:
        task = self._started_activity(body["taskToken"])
        task.details = body.get("details")
        task.heartbeats += 1
        task.last_heartbeat_at = time.time()
        if task.heartbeat is not None:
            task.heartbeat_deadline = self.loop.time() + task.heartbeat
        return {"cancelRequested": task.cancel_requested_event_id is not None}

    def _finish_activity(self, body: Json, event_type: str, members: tuple[str, ...]) -> Json:
        task = self._started_activity(body["taskToken"])
        attributes: Json = {
            "scheduledEventId": task.scheduled_event_id,
            "startedEventId": task.started_event_id,
        }
        for name in members:
            _optional(attributes, name, body.get(name))
        if event_type == "ActivityTaskCanceled":
            _optional(attributes, "latestCancelRequestedEventId", task.cancel_requested_event_id)
        self._close_activity(task)
        task.execution.record(event_type, attributes)
        self._need_decision(task.execution)
        return {}

    def respond_activity_task_completed(self, body: Json) -> Json:
        return self._finish_activity(body, "ActivityTaskCompleted", ("result",))

    def respond_activity_task_failed(self, body: Json) -> Json:
        return self._finish_activity(body, "ActivityTaskFailed", ("reason", "details"))

    def respond_activity_task_canceled(self, body: Json) -> Json:
        return self._finish_activity(body, "ActivityTaskCanceled", ("details",))
