"""What the built-in one-activity decider takes and returns, and how it closes a workflow.

The data half of :mod:`heartbeat_worker._decider`, apart so that the decider module keeps to
the deciding: the request (:class:`ActivityRequest`), the history as typed events
(:class:`HistoryEvent`), the outcome (:class:`RunOutcome`, :class:`RunStatus`), and the
close decision that matches an outcome (:func:`close_decision`). Plain values, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._definition import format_timeout
from ._limits import DATA_MAX, FAILURE_REASON_MAX, cut_end, cut_start

__all__ = [
    "ActivityRequest",
    "Ending",
    "HistoryEvent",
    "RunOutcome",
    "RunStatus",
    "close_decision",
]

Json = dict[str, Any]


class RunStatus(enum.Enum):
    """How the run ended: the activity's own end, or the workflow's when it came first."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed out"
    TERMINATED = "terminated"
    """Closed from outside (terminated, or continued as new): not by this decider."""


@dataclass(frozen=True, slots=True)
class ActivityRequest:
    """The activity to run and how to schedule it.

    ``input`` is the raw string SWF carries (JSON for activities of this framework). A
    timeout left at None takes the default registered with the activity type; values are
    seconds (SWF itself takes whole seconds; the dev server accepts fractions, which keeps
    tests fast).
    """

    name: str
    task_list: str
    version: str = "1"
    input: str | None = None
    heartbeat_timeout: float | None = None
    start_to_close_timeout: float | None = None
    schedule_to_start_timeout: float | None = None
    schedule_to_close_timeout: float | None = None

    def schedule_decision(self, activity_id: str, input: str | None) -> Json:
        attributes: Json = {
            "activityType": {"name": self.name, "version": self.version},
            "activityId": activity_id,
            "taskList": {"name": self.task_list},
        }
        if input is not None:
            attributes["input"] = input
        overrides = {
            "heartbeatTimeout": self.heartbeat_timeout,
            "startToCloseTimeout": self.start_to_close_timeout,
            "scheduleToStartTimeout": self.schedule_to_start_timeout,
            "scheduleToCloseTimeout": self.schedule_to_close_timeout,
        }
        for member, seconds in overrides.items():
            if seconds is not None:
                attributes[member] = format_timeout(seconds)
        return {
            "decisionType": "ScheduleActivityTask",
            "scheduleActivityTaskDecisionAttributes": attributes,
        }


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One event of the execution's history, as SWF recorded it."""

    event_id: int
    event_type: str
    timestamp: datetime
    attributes: Mapping[str, Any]

    @classmethod
    def from_swf(cls, event: Mapping[str, Any]) -> HistoryEvent:
        event_type: str = event["eventType"]
        key = event_type[0].lower() + event_type[1:] + "EventAttributes"
        return cls(
            event_id=int(event["eventId"]),
            event_type=event_type,
            timestamp=event["eventTimestamp"],
            attributes=event.get(key) or {},
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What became of the activity, with the evidence (the history) attached.

    ``details`` depends on ``status``: the failure's details, the details the activity
    attached to its cancellation, or for a timeout the last heartbeat details SWF recorded
    for any attempt (a retry that timed out before its first progress keeps the earlier).
    """

    status: RunStatus
    workflow_id: str
    run_id: str
    attempts: int
    result: str | None = None
    reason: str | None = None
    details: str | None = None
    timeout_type: str | None = None
    events: tuple[HistoryEvent, ...] = ()

    @property
    def completed(self) -> bool:
        return self.status is RunStatus.COMPLETED

    def first(self, event_type: str) -> HistoryEvent | None:
        return next((e for e in self.events if e.event_type == event_type), None)

    def last(self, event_type: str) -> HistoryEvent | None:
        return next((e for e in reversed(self.events) if e.event_type == event_type), None)

    @property
    def duration(self) -> float | None:
        """Seconds from the start of the execution to its close."""
        if len(self.events) < 2:
            return None
        return (self.events[-1].timestamp - self.events[0].timestamp).total_seconds()

    @property
    def cancel_latency(self) -> float | None:
        """Seconds from SWF recording the cancel request to the activity's answer.

        This spans the worker's next heartbeat (the only way it hears of the request) and
        the activity's clean-up; None unless the run ended canceled after a request.
        """
        requested = self.last("ActivityTaskCancelRequested")
        canceled = self.last("ActivityTaskCanceled")
        if requested is None or canceled is None:
            return None
        return (canceled.timestamp - requested.timestamp).total_seconds()


@dataclass(slots=True)
class Ending:
    """The outcome decided, and the decision that closes the workflow accordingly."""

    status: RunStatus
    decision: Json
    result: str | None = None
    reason: str | None = None
    details: str | None = None
    timeout_type: str | None = None


def close_decision(
    status: RunStatus,
    *,
    result: str | None = None,
    reason: str | None = None,
    details: str | None = None,
) -> Json:
    """The decision that closes the workflow the way the activity ended."""
    if status is RunStatus.COMPLETED:
        return {
            "decisionType": "CompleteWorkflowExecution",
            "completeWorkflowExecutionDecisionAttributes": _present(result=result),
        }
    if status is RunStatus.CANCELED:
        return {
            "decisionType": "CancelWorkflowExecution",
            "cancelWorkflowExecutionDecisionAttributes": _present(details=details),
        }
    return {
        "decisionType": "FailWorkflowExecution",
        "failWorkflowExecutionDecisionAttributes": _present(
            reason=None if reason is None else cut_end(reason, FAILURE_REASON_MAX),
            details=None if details is None else cut_start(details, DATA_MAX),
        ),
    }


def _present(**members: str | None) -> Json:
    return {name: value for name, value in members.items() if value is not None}
