"""The one-activity workflow's decisions, event by event: the pure half of the decider.

:class:`~heartbeat_worker._decider.OneActivityWorkflow` polls, pages histories and answers
decision tasks; what to decide for each new event lives here, with no I/O, so that the
rules (schedule, retry with the last checkpoint, cancel on request, close the way the
activity ended) read in one place and can be tried without SWF.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Final

from structlog.typing import FilteringBoundLogger

from ._checkpoint import with_checkpoint
from ._errors import SWFLimitError
from ._failures import is_non_retryable
from ._run_outcome import ActivityRequest, Ending, HistoryEvent, RunStatus, close_decision

__all__ = ["CANCEL_SIGNAL", "DeciderState", "OneActivityDecisions"]

Json = dict[str, Any]

CANCEL_SIGNAL: Final = "heartbeat-worker.cancel-activity"
"""The signal that asks the decider to cancel the activity.

``RequestCancelActivityTask`` is a decision, and decisions can only be made in answer to a
decision task, which SWF only schedules when something happens in the execution. A signal is
that something: it wakes the decider up, wherever it runs. A ``RequestCancelWorkflowExecution``
from outside (the console, the CLI) is honoured the same way.
"""

_CLOSING_EVENTS: Final = frozenset(
    {
        "ActivityTaskCompleted",
        "ActivityTaskFailed",
        "ActivityTaskTimedOut",
        "ActivityTaskCanceled",
    }
)


_CLOSE_REFUSED: Final = frozenset(
    {
        "CompleteWorkflowExecutionFailed",
        "FailWorkflowExecutionFailed",
        "CancelWorkflowExecutionFailed",
    }
)


@dataclass(slots=True)
class DeciderState:
    attempts: int = 0
    open_activity: str | None = None
    cancel_requested: bool = False
    checkpoint: Any = None
    last_details: str | None = None
    """The latest heartbeat details any attempt left (attempt 2 may time out with none)."""
    last_event_id: int = 0
    ending: Ending | None = None


class OneActivityDecisions:
    """What to decide for each new event of one execution; ``state`` is all it remembers."""

    def __init__(self, request: ActivityRequest, retries: int, log: FilteringBoundLogger) -> None:
        self.request = request
        self.retries = retries
        self.log = log
        self.state = DeciderState()

    def on_event(self, event: Json) -> list[Json]:
        """The decisions one new event calls for, updating the state as it goes."""
        state = self.state
        kind = event["eventType"]
        attributes = HistoryEvent.from_swf(event).attributes
        if kind == "WorkflowExecutionStarted":
            return [self._schedule()]
        if kind in ("WorkflowExecutionSignaled", "WorkflowExecutionCancelRequested"):
            if kind == "WorkflowExecutionSignaled" and attributes["signalName"] != CANCEL_SIGNAL:
                return []
            if state.open_activity is None or state.cancel_requested:
                return []
            state.cancel_requested = True
            return [
                {
                    "decisionType": "RequestCancelActivityTask",
                    "requestCancelActivityTaskDecisionAttributes": {
                        "activityId": state.open_activity
                    },
                }
            ]
        if kind == "ScheduleActivityTaskFailed":
            state.open_activity = None
            cause = attributes.get("cause", "unknown cause")
            return self._end(RunStatus.FAILED, reason=f"cannot schedule the activity: {cause}")
        if kind not in _CLOSING_EVENTS:
            if kind in _CLOSE_REFUSED and state.ending is not None:
                # The close was refused because events came in while deciding: resend it.
                return [state.ending.decision]
            return []
        state.open_activity = None
        if kind == "ActivityTaskCompleted":
            return self._end(RunStatus.COMPLETED, result=attributes.get("result"))
        if kind == "ActivityTaskCanceled":
            return self._end(RunStatus.CANCELED, details=attributes.get("details"))
        if kind == "ActivityTaskTimedOut":
            details = attributes.get("details")
            if details is not None:
                state.checkpoint = _decode(details)
                state.last_details = details
            if self._may_retry():
                return [self._schedule()]
            timeout_type = attributes.get("timeoutType", "UNKNOWN")
            return self._end(
                RunStatus.TIMED_OUT,
                reason=f"activity timed out ({timeout_type})",
                details=state.last_details,
                timeout_type=timeout_type,
            )
        # ActivityTaskFailed. The worker answers a shutdown with the activity's latest
        # progress as details, which is then the checkpoint; a traceback (not JSON) is not.
        details = attributes.get("details")
        if details is not None:
            with contextlib.suppress(ValueError):
                state.checkpoint = json.loads(details)
                state.last_details = details
        reason = attributes.get("reason")
        if self._may_retry() and not is_non_retryable(reason):
            return [self._schedule()]
        return self._end(RunStatus.FAILED, reason=reason, details=details)

    def _may_retry(self) -> bool:
        state = self.state
        return not state.cancel_requested and state.attempts <= self.retries

    def _schedule(self) -> Json:
        state = self.state
        state.attempts += 1
        activity_id = f"{self.request.name[:200]}-{state.attempts}"
        state.open_activity = activity_id
        input = self.request.input
        if state.checkpoint is not None:
            input = self._resume_input(input, state.checkpoint)
        self.log.info("scheduling activity", attempt=state.attempts, activity_id=activity_id)
        return self.request.schedule_decision(activity_id, input)

    def _resume_input(self, input: str | None, checkpoint: Any) -> str | None:
        try:
            decoded = None if input is None else json.loads(input)
        except ValueError:
            self.log.warning("input is not JSON: retrying without the checkpoint")
            return input
        try:
            return with_checkpoint(decoded, checkpoint)
        except SWFLimitError as error:
            self.log.warning("retrying without the checkpoint", error=str(error))
            return input

    def _end(
        self,
        status: RunStatus,
        *,
        result: str | None = None,
        reason: str | None = None,
        details: str | None = None,
        timeout_type: str | None = None,
    ) -> list[Json]:
        decision = close_decision(status, result=result, reason=reason, details=details)
        self.state.ending = Ending(status, decision, result, reason, details, timeout_type)
        return [decision]


def _decode(details: str) -> Any:
    """Heartbeat details as a JSON value; details that are not JSON are kept as a string."""
    try:
        return json.loads(details)
    except ValueError:
        return details
