"""A built-in decider for a workflow of one activity: what ``heartbeat-worker execute`` and
``heartbeat-worker demo`` use to run an activity through SWF.

SWF runs nothing without a decider: an activity task only exists once a decision schedules
it, and a workflow only closes when a decision closes it. Smoke tests and operations rarely
need more than "run this activity once and tell me what happened", so this module plays
that part for a single activity:

* it registers its workflow type (idempotently) and starts an execution whose decision
  tasks go to a task list of their own, so that it never takes another decider's tasks,
  and another decider never takes its tasks;
* it schedules the activity, with optional timeout overrides;
* when an attempt times out or fails and retries are left, it schedules the activity again
  (unless the failure's reason is marked non-retryable, see
  :data:`~heartbeat_worker.NON_RETRYABLE_PREFIX`),
  handing the next attempt the last heartbeat details as its checkpoint (see
  :func:`~heartbeat_worker.with_checkpoint`): that is how a long job resumes where the
  previous attempt stopped instead of starting over;
* it can request the activity's cancellation, after a delay or on demand; and
* it closes the workflow the way the activity ended (completed, failed, canceled) and
  returns a typed :class:`RunOutcome` with the whole history.

It does not run the activity: a worker must be serving the activity's task list.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import anyio

from ._checkpoint import with_checkpoint
from ._definition import format_timeout
from ._errors import SWFLimitError
from ._failures import is_non_retryable
from ._limits import DATA_MAX, FAILURE_REASON_MAX, cut_end, cut_start
from ._logging import get_logger
from ._swf import Backoff, SWFClient, error_code, is_transient, retry_transient

__all__ = [
    "CANCEL_SIGNAL",
    "WORKFLOW_TYPE",
    "ActivityRequest",
    "HistoryEvent",
    "OneActivityWorkflow",
    "RunOutcome",
    "RunStatus",
    "run_activity",
]

Json = dict[str, Any]

WORKFLOW_TYPE: Final[Mapping[str, str]] = {"name": "heartbeat-worker.one-activity", "version": "1"}
"""The workflow type the decider registers and starts; its defaults are never relied on,
since every execution is started with all of its settings explicit."""

CANCEL_SIGNAL: Final = "heartbeat-worker.cancel-activity"
"""The signal that asks the decider to cancel the activity.

``RequestCancelActivityTask`` is a decision, and decisions can only be made in answer to a
decision task, which SWF only schedules when something happens in the execution. A signal is
that something: it wakes the decider up, wherever it runs. A ``RequestCancelWorkflowExecution``
from outside (the console, the CLI) is honoured the same way.
"""

DEFAULT_EXECUTION_TIMEOUT: Final = 24 * 3600.0
DECISION_TIMEOUT: Final = 30.0
"""Seconds SWF gives this decider to answer a decision task; it answers in milliseconds, and
a crashed decider's task comes back after this long."""

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
    attached to its cancellation, or for a timeout the last heartbeat details SWF recorded.
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
class _Ending:
    """The outcome decided, and the decision that closes the workflow accordingly."""

    status: RunStatus
    decision: Json
    result: str | None = None
    reason: str | None = None
    details: str | None = None
    timeout_type: str | None = None


@dataclass(slots=True)
class _State:
    attempts: int = 0
    open_activity: str | None = None
    cancel_requested: bool = False
    checkpoint: Any = None
    last_event_id: int = 0
    ending: _Ending | None = None


class OneActivityWorkflow:
    """One execution of the one-activity workflow, decided from this process.

    ``await workflow.start()`` starts the execution and ``await workflow.run()`` decides
    until it closes; :meth:`request_cancel` may be called meanwhile (from the same event
    loop). :func:`run_activity` does all three.

    ``client`` makes the short calls and, unless ``poll_client`` is given, the long polls
    too. A poll holds its connection for up to 60 s on SWF, so a client shared with other
    work needs a connection pool large enough for both
    (:func:`~heartbeat_worker._swf.open_connection` makes such a pair).
    """

    def __init__(
        self,
        client: SWFClient,
        domain: str,
        request: ActivityRequest,
        *,
        poll_client: SWFClient | None = None,
        retries: int = 0,
        cancel_after: float | None = None,
        workflow_id: str | None = None,
        execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
        identity: str = "heartbeat-worker-decider",
        page_size: int | None = None,
        decision_timeout: float = DECISION_TIMEOUT,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be zero or more")
        if cancel_after is not None and cancel_after < 0:
            raise ValueError("cancel_after must be zero or more seconds")
        # Plain dictionaries in and out: the stubs' TypedDicts add little to a decider.
        self._client: Any = client
        self._poll_client: Any = poll_client or client
        self.domain = domain
        self.request = request
        self.retries = retries
        self.cancel_after = cancel_after
        self.workflow_id = workflow_id or f"{request.name[:200]}-{uuid.uuid4().hex[:12]}"
        self.run_id: str | None = None
        self.decision_task_list = f"heartbeat-worker-decider-{uuid.uuid4().hex}"
        self.execution_timeout = execution_timeout
        self.identity = identity
        self.decision_timeout = decision_timeout
        # SWF's default page is 1000 events; smaller pages exercise the paging in tests.
        self._paging: Json = {"maximumPageSize": page_size} if page_size else {}
        self.log = get_logger(domain=domain, workflow_id=self.workflow_id)
        self._state = _State()
        self._started_at: float | None = None

    @property
    def execution(self) -> dict[str, str]:
        """``{"workflowId", "runId"}`` of the started execution."""
        if self.run_id is None:
            raise RuntimeError("the execution has not been started")
        return {"workflowId": self.workflow_id, "runId": self.run_id}

    @property
    def attempts(self) -> int:
        """How many times the activity has been scheduled so far."""
        return self._state.attempts

    async def start(self) -> dict[str, str]:
        """Register the workflow type if needed and start the execution."""
        await register_workflow_type(self._client, self.domain)
        started = await self._client.start_workflow_execution(
            domain=self.domain,
            workflowId=self.workflow_id,
            workflowType=dict(WORKFLOW_TYPE),
            taskList={"name": self.decision_task_list},
            executionStartToCloseTimeout=format_timeout(self.execution_timeout),
            taskStartToCloseTimeout=format_timeout(self.decision_timeout),
            childPolicy="TERMINATE",
            tagList=[f"activity:{self.request.name[:200]}"],
        )
        self.run_id = started["runId"]
        self._started_at = time.monotonic()
        self.log.info("execution started", activity_type=self.request.name)
        return self.execution

    async def request_cancel(self) -> None:
        """Ask for the activity's cancellation; the decider requests it at its next decision.

        Harmless once the activity has ended: the workflow closes as the activity did.
        """
        try:
            await retry_transient(
                lambda: self._client.signal_workflow_execution(
                    domain=self.domain, signalName=CANCEL_SIGNAL, **self.execution
                ),
                deadline=anyio.current_time() + 30,
                what="SignalWorkflowExecution",
            )
        except Exception as error:
            if error_code(error) != "UnknownResourceFault":  # closed already
                raise

    async def run(self) -> RunOutcome:
        """Decide until the execution closes, then return the outcome."""
        if self.run_id is None:
            await self.start()
        async with anyio.create_task_group() as group:
            if self.cancel_after is not None:
                group.start_soon(self._cancel_later, self.cancel_after)
            try:
                outcome = await self._decide_until_closed()
            finally:
                group.cancel_scope.cancel()
        return outcome

    async def schedule_only(self) -> dict[str, str]:
        """Start the execution and schedule the activity, then leave it: nothing will close
        the execution, which stays open until its timeout (``execute --no-wait``)."""
        if self.run_id is None:
            await self.start()
        while True:
            task = await self._poll()
            if task is None:
                continue
            await self._decide(task)
            return self.execution

    # -- deciding --------------------------------------------------------------------------

    async def _cancel_later(self, delay: float) -> None:
        assert self._started_at is not None
        await anyio.sleep(max(0.0, self._started_at + delay - time.monotonic()))
        self.log.info("requesting cancellation", after=delay)
        await self.request_cancel()

    async def _decide_until_closed(self) -> RunOutcome:
        while True:
            task = await self._poll()
            if task is not None:
                await self._decide(task)
                if self._state.ending is None:
                    continue
            # Either a close decision was sent (it fails if events arrived meanwhile, and a
            # new decision task follows), or a poll came back empty: something else may
            # have closed the execution, such as its timeout or a termination.
            described = await self._call("DescribeWorkflowExecution", self._describe)
            if described["executionInfo"]["executionStatus"] == "CLOSED":
                return await self._outcome(described["executionInfo"].get("closeStatus"))

    async def _describe(self) -> Any:
        return await self._client.describe_workflow_execution(
            domain=self.domain, execution=self.execution
        )

    async def _poll(self) -> Json | None:
        """One long poll, with every page of the history; None when it came back empty."""
        backoff = Backoff(initial=0.5, maximum=10.0)
        arguments = {
            "domain": self.domain,
            "taskList": {"name": self.decision_task_list},
            "identity": self.identity,
            **self._paging,
        }
        while True:
            try:
                task: Json = await self._poll_client.poll_for_decision_task(**arguments)
                break
            except Exception as error:
                if not is_transient(error):
                    raise
                delay = backoff.next_delay()
                self.log.warning("decision poll failed; retrying", error=repr(error))
                await anyio.sleep(delay)
        if not task.get("taskToken"):
            return None
        # The task is ours now: a failed page is retried on its own, since polling afresh
        # would not return this task again before its timeout.
        events: list[Json] = list(task.get("events", ()))
        page = task
        while page.get("nextPageToken"):
            page = await self._call(
                "PollForDecisionTask",
                functools.partial(
                    self._poll_client.poll_for_decision_task,
                    nextPageToken=page["nextPageToken"],
                    **arguments,
                ),
            )
            events.extend(page.get("events", ()))
        task["events"] = events
        return task

    async def _decide(self, task: Json) -> None:
        before = dataclasses.replace(self._state)
        new = [e for e in task["events"] if int(e["eventId"]) > before.last_event_id]
        decisions: list[Json] = []
        for event in new:
            decisions.extend(self._on_event(event))
        if new:
            self._state.last_event_id = int(new[-1]["eventId"])
        token = task["taskToken"]
        try:
            await self._call(
                "RespondDecisionTaskCompleted",
                lambda: self._client.respond_decision_task_completed(
                    taskToken=token, decisions=decisions
                ),
            )
        except Exception as error:
            # Nothing was decided: forget these events, so that the next decision task
            # (SWF schedules one when this one times out) decides them again.
            self._state = before
            if error_code(error) != "UnknownResourceFault":
                raise
            self.log.warning("decision task closed before it was answered; waiting for the next")

    def _on_event(self, event: Json) -> list[Json]:
        """The decisions one new event calls for, updating the state as it goes."""
        state = self._state
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
            if self._may_retry():
                return [self._schedule()]
            timeout_type = attributes.get("timeoutType", "UNKNOWN")
            return self._end(
                RunStatus.TIMED_OUT,
                reason=f"activity timed out ({timeout_type})",
                details=details,
                timeout_type=timeout_type,
            )
        # ActivityTaskFailed. The worker answers a shutdown with the activity's latest
        # progress as details, which is then the checkpoint; a traceback (not JSON) is not.
        details = attributes.get("details")
        if details is not None:
            with contextlib.suppress(ValueError):
                state.checkpoint = json.loads(details)
        reason = attributes.get("reason")
        if self._may_retry() and not is_non_retryable(reason):
            return [self._schedule()]
        return self._end(RunStatus.FAILED, reason=reason, details=details)

    def _may_retry(self) -> bool:
        state = self._state
        return not state.cancel_requested and state.attempts <= self.retries

    def _schedule(self) -> Json:
        state = self._state
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
        decision: Json
        if status is RunStatus.COMPLETED:
            decision = {
                "decisionType": "CompleteWorkflowExecution",
                "completeWorkflowExecutionDecisionAttributes": _present(result=result),
            }
        elif status is RunStatus.CANCELED:
            decision = {
                "decisionType": "CancelWorkflowExecution",
                "cancelWorkflowExecutionDecisionAttributes": _present(details=details),
            }
        else:
            decision = {
                "decisionType": "FailWorkflowExecution",
                "failWorkflowExecutionDecisionAttributes": _present(
                    reason=None if reason is None else cut_end(reason, FAILURE_REASON_MAX),
                    details=None if details is None else cut_start(details, DATA_MAX),
                ),
            }
        self._state.ending = _Ending(status, decision, result, reason, details, timeout_type)
        return [decision]

    async def _outcome(self, close_status: str | None) -> RunOutcome:
        events = tuple(HistoryEvent.from_swf(e) for e in await self._history())
        ending = self._state.ending
        if close_status == "TIMED_OUT":
            ending = _Ending(
                RunStatus.TIMED_OUT,
                {},
                reason="workflow execution timed out",
                timeout_type="EXECUTION_START_TO_CLOSE",
            )
        elif ending is None or close_status not in ("COMPLETED", "FAILED", "CANCELED"):
            closing = events[-1].attributes if events else {}
            ending = _Ending(
                RunStatus.TERMINATED,
                {},
                reason=closing.get("reason") or f"execution closed: {close_status}",
                details=closing.get("details"),
            )
        return RunOutcome(
            ending.status,
            workflow_id=self.workflow_id,
            run_id=self.execution["runId"],
            attempts=self._state.attempts,
            result=ending.result,
            reason=ending.reason,
            details=ending.details,
            timeout_type=ending.timeout_type,
            events=events,
        )

    async def _history(self) -> list[Json]:
        events: list[Json] = []
        token: str | None = None
        while True:
            arguments: Json = {"domain": self.domain, "execution": self.execution, **self._paging}
            if token:
                arguments["nextPageToken"] = token
            page = await self._call(
                "GetWorkflowExecutionHistory",
                functools.partial(self._client.get_workflow_execution_history, **arguments),
            )
            events.extend(page["events"])
            token = page.get("nextPageToken")
            if not token:
                return events

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        return await retry_transient(call, deadline=anyio.current_time() + 30, what=what)


async def register_workflow_type(client: SWFClient, domain: str) -> None:
    """Register :data:`WORKFLOW_TYPE` in ``domain`` unless it exists (types are immutable,
    and the decider passes every setting when it starts an execution)."""
    try:
        await client.register_workflow_type(
            domain=domain,
            name=WORKFLOW_TYPE["name"],
            version=WORKFLOW_TYPE["version"],
            description="One activity, scheduled by heartbeat-worker's built-in decider",
        )
    except Exception as error:
        if error_code(error) != "TypeAlreadyExistsFault":
            raise


async def run_activity(
    client: SWFClient,
    domain: str,
    request: ActivityRequest,
    *,
    poll_client: SWFClient | None = None,
    retries: int = 0,
    cancel_after: float | None = None,
    workflow_id: str | None = None,
    execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
) -> RunOutcome:
    """Run ``request`` through SWF in a workflow of its own and return how it ended.

    ``retries`` schedules the activity again after a timeout or failure, resuming from the
    last heartbeat details; ``cancel_after`` requests cancellation that many seconds after
    the execution started.
    """
    workflow = OneActivityWorkflow(
        client,
        domain,
        request,
        poll_client=poll_client,
        retries=retries,
        cancel_after=cancel_after,
        workflow_id=workflow_id,
        execution_timeout=execution_timeout,
    )
    await workflow.start()
    return await workflow.run()


def _decode(details: str) -> Any:
    """Heartbeat details as a JSON value; details that are not JSON are kept as a string."""
    try:
        return json.loads(details)
    except ValueError:
        return details


def _present(**members: str | None) -> Json:
    return {name: value for name, value in members.items() if value is not None}
