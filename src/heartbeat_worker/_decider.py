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

It does not run the activity: a worker must be serving the activity's task list. The values
it takes and returns live in :mod:`heartbeat_worker._run_outcome`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio

from ._decisions import CANCEL_SIGNAL, OneActivityDecisions
from ._definition import format_timeout
from ._logging import get_logger
from ._run_outcome import (
    ActivityRequest,
    Ending,
    HistoryEvent,
    RunOutcome,
    RunStatus,
)
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

DEFAULT_EXECUTION_TIMEOUT: Final = 24 * 3600.0
DECISION_TIMEOUT: Final = 30.0
"""Seconds SWF gives this decider to answer a decision task; it answers in milliseconds, and
a crashed decider's task comes back after this long."""


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
        self._decisions = OneActivityDecisions(request, retries, self.log)
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
        return self._decisions.state.attempts

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
                if self._decisions.state.ending is None:
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
        before = dataclasses.replace(self._decisions.state)
        new = [e for e in task["events"] if int(e["eventId"]) > before.last_event_id]
        decisions: list[Json] = []
        for event in new:
            decisions.extend(self._decisions.on_event(event))
        if new:
            self._decisions.state.last_event_id = int(new[-1]["eventId"])
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
            self._decisions.state = before
            if error_code(error) != "UnknownResourceFault":
                raise
            self.log.warning("decision task closed before it was answered; waiting for the next")

    async def _outcome(self, close_status: str | None) -> RunOutcome:
        events = tuple(HistoryEvent.from_swf(e) for e in await self._history())
        ending = self._decisions.state.ending
        if close_status == "TIMED_OUT":
            ending = Ending(
                RunStatus.TIMED_OUT,
                {},
                reason="workflow execution timed out",
                timeout_type="EXECUTION_START_TO_CLOSE",
            )
        elif ending is None or close_status not in ("COMPLETED", "FAILED", "CANCELED"):
            closing = events[-1].attributes if events else {}
            ending = Ending(
                RunStatus.TERMINATED,
                {},
                reason=closing.get("reason") or f"execution closed: {close_status}",
                details=closing.get("details"),
            )
        return RunOutcome(
            ending.status,
            workflow_id=self.workflow_id,
            run_id=self.execution["runId"],
            attempts=self._decisions.state.attempts,
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
