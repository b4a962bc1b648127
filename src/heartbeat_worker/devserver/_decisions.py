"""Decision tasks: scheduling, long polls, paged events, timeouts, and applying decisions.

An execution has at most one scheduled and one started decision task. Whatever a decider must
see (an activity closing, a timer firing, a signal) schedules one, or, while one is started,
marks the execution so that the next is scheduled when the started one completes. The
decisions themselves are applied by the part of the engine whose state they change
(activity tasks, timers); this module checks them and applies them in order.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from ._model import VALIDATION_EXCEPTION, SWFError
from ._paging import decode_page_token, encode_page_token, query_key
from ._state import DecisionTask, Execution, optional, parse_duration, unknown_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._engine import Engine

__all__ = ["DecisionTasks"]

Json = dict[str, Any]

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


def _attributes_key(decision_type: str) -> str:
    return decision_type[0].lower() + decision_type[1:] + "DecisionAttributes"


class DecisionTasks:
    """The decision tasks of every execution."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Each applies one decision and says whether a new decision task is needed for it.
        self._apply: dict[str, Callable[[Execution, Json, int], bool]] = {
            "ScheduleActivityTask": engine.activities.schedule,
            "RequestCancelActivityTask": engine.activities.request_cancel,
            "StartTimer": engine.timers.start,
            "CancelTimer": engine.timers.cancel,
            "RecordMarker": self._record_marker,
        }

    def need(self, execution: Execution) -> None:
        """Something a decider must see happened: make sure a decision task will follow."""
        if not execution.is_open or execution.scheduled_decision is not None:
            return
        if execution.started_decision is not None:
            execution.decision_needed = True
            return
        self.schedule(execution)

    def schedule(self, execution: Execution) -> None:
        attributes: Json = {
            "taskList": {"name": execution.task_list},
            "startToCloseTimeout": execution.task_start_to_close,
        }
        optional(attributes, "taskPriority", execution.task_priority)
        event_id = execution.record("DecisionTaskScheduled", attributes)
        decision = DecisionTask(execution, event_id)
        execution.scheduled_decision = decision
        self.engine.decision_queue(execution.domain.name, execution.task_list).put(decision)

    def _start(self, decision: DecisionTask, body: Json) -> Json | None:
        engine = self.engine
        execution = decision.execution
        if not execution.is_open or execution.scheduled_decision is not decision:
            return None
        execution.scheduled_decision = None
        attributes: Json = {"scheduledEventId": decision.scheduled_event_id}
        optional(attributes, "identity", body.get("identity"))
        decision.started_event_id = execution.record("DecisionTaskStarted", attributes)
        decision.token = engine.new_token()
        engine.decision_tokens[decision.token] = decision
        execution.started_decision = decision
        execution.decision_needed = False
        seconds = parse_duration(execution.task_start_to_close, "taskStartToCloseTimeout")
        if seconds is not None:
            decision.handle = engine.later(seconds, self.timed_out, decision)
        return self._page(decision, body, 0)

    def _page(self, decision: DecisionTask, body: Json, offset: int) -> Json:
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
                decision.page_key = self.engine.new_token(16)
                self.engine.decision_pages[decision.page_key] = decision
            next_offset = offset + size
            bound = query_key(body, decision.page_key)
            result["nextPageToken"] = encode_page_token("decision", bound, next_offset)
        return result

    async def poll(self, body: Json) -> Json:
        engine = self.engine
        domain = engine.registry.domain(body["domain"])
        token = body.get("nextPageToken")
        if token:
            key, offset = decode_page_token(token, "decision")
            page_key = key.partition("#")[0]
            if key != query_key(body, page_key):
                raise SWFError(
                    VALIDATION_EXCEPTION,
                    "The nextPageToken was issued for another query: repeat the poll's members "
                    "unchanged when asking for the next page",
                )
            decision = engine.decision_pages.get(page_key)
            if decision is None:
                raise SWFError("UnknownResourceFault", "The decision task of this page is closed")
            return self._page(decision, body, offset)
        queue = engine.decision_queue(domain.name, body["taskList"]["name"])
        result = await queue.get(
            engine.poll_timeout,
            functools.partial(self._start, body=body),
            engine.poll_alive(),
            body.get("identity"),
        )
        if result is None:
            return {"startedEventId": 0, "previousStartedEventId": 0}
        return result

    def drop(self, decision: DecisionTask) -> None:
        """Forget a started decision task: its token and pages stop working."""
        engine = self.engine
        if decision.handle is not None:
            decision.handle.cancel()
            decision.handle = None
        if decision.token is not None:
            engine.decision_tokens.pop(decision.token, None)
        if decision.page_key is not None:
            engine.decision_pages.pop(decision.page_key, None)
        decision.execution.started_decision = None

    def timed_out(self, decision: DecisionTask) -> None:
        execution = decision.execution
        if execution.started_decision is not decision:
            return
        self.drop(decision)
        execution.record(
            "DecisionTaskTimedOut",
            {
                "timeoutType": "START_TO_CLOSE",
                "scheduledEventId": decision.scheduled_event_id,
                "startedEventId": decision.started_event_id,
            },
        )
        self.schedule(execution)

    def _check(self, decisions: list[Json]) -> None:
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

    def respond_completed(self, body: Json) -> Json:
        engine = self.engine
        decision = engine.decision_tokens.get(body["taskToken"])
        if decision is None:
            raise unknown_task()
        decisions: list[Json] = body.get("decisions") or []
        self._check(decisions)
        for index, item in enumerate(decisions[:-1], start=1):
            if item["decisionType"] in _CLOSE_DECISIONS:
                # The documentation does not say; SWF refuses the whole answer (docs/devserver.md).
                raise SWFError(
                    VALIDATION_EXCEPTION,
                    f"{item['decisionType']} at 'decisions.{index}.member' is not the last "
                    "decision: a decision that closes the execution must be the last in the list",
                )
        execution = decision.execution
        self.drop(decision)
        attributes: Json = {
            "scheduledEventId": decision.scheduled_event_id,
            "startedEventId": decision.started_event_id,
        }
        context = body.get("executionContext")
        optional(attributes, "executionContext", context)
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
            decision_type = item["decisionType"]
            attributes = item.get(_attributes_key(decision_type)) or {}
            if decision_type in _CLOSE_DECISIONS:
                needed |= self._close(execution, decision_type, attributes, completed_id, unhandled)
            else:
                needed |= self._apply[decision_type](execution, attributes, completed_id)
        if needed and execution.is_open:
            self.schedule(execution)
        return {}

    def _close(
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
            optional(event, name, attributes.get(name))
        execution.record(event_type, event)
        self.engine.executions.close(execution, status)
        return False

    def _record_marker(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        event: Json = {
            "markerName": attributes["markerName"],
            "decisionTaskCompletedEventId": completed_id,
        }
        optional(event, "details", attributes.get("details"))
        execution.record("MarkerRecorded", event)
        return False
