"""Run activities in unit tests, without SWF.

An activity is easy to call directly, but then ``heartbeat()``, ``info()`` and
``cancel_requested()`` have no task to talk to, and nothing exercises what matters most
about a long job: its progress details, its behaviour when cancelled, its cleanup. This
module runs the activity through the worker's own task execution and heartbeater, exactly
as a worker would, with SWF replaced by an in-memory task client. What a test sees here is
what SWF would see: the heartbeats actually sent, cancellation delivered through a heartbeat
reply, and the one answer the worker gives.

Most tests need a single call::

    outcome = await run_activity(etl, {"rows": 1000}, cancel_after_heartbeats=3)
    assert outcome.status == "canceled"
    assert outcome.details == {"rolled_back": True}

Tests that act in the middle of a run use the handle::

    async with start_activity(etl, {"rows": 1000}) as run:
        await run.wait_for_heartbeats(2)
        run.request_cancel()
        outcome = await run.wait()

:func:`run_activity_sync` does the same from a plain (non-async) test.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, ParamSpec, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskGroup
from botocore.exceptions import ClientError

from ._checkpoint import with_checkpoint
from ._codec import decode_result
from ._context import ActivityInfo, StopReason, heartbeat_observer
from ._converter import DEFAULT_CONVERTER, Converter
from ._definition import Activity, ActivityType
from ._definition import activity as as_activity
from ._execution import ExecutionSettings, OutcomeKind, TaskExecution
from ._heartbeater import (
    DEFAULT_HEARTBEAT_FRACTION,
    DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
    HeartbeatScheduler,
)
from ._timeouts import TaskTimeouts

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "ActivityOutcome",
    "ActivityRun",
    "Answer",
    "InMemoryTaskClient",
    "Status",
    "run_activity",
    "run_activity_sync",
    "start_activity",
]

DEFAULT_HEARTBEAT_INTERVAL = 0.05
"""Seconds between heartbeats in a test run, unless told otherwise.

A worker beats at a third of the heartbeat timeout, which would make a test wait many
seconds for a cancellation to arrive (it only arrives with a heartbeat reply). Beating
this often keeps tests fast while going through exactly the same code."""

DOMAIN = "testing"
TASK_LIST = "testing"
WORKFLOW_ID = "testing-workflow"
RUN_ID = "testing-run"
ACTIVITY_ID = "testing-activity"
"""The identifiers a test run's task carries (``info()`` reports them)."""

Declared = Literal["declared"]
"""Use the timeout the ``@activity`` decorator declares."""

_tokens = itertools.count(1)
P = ParamSpec("P")
T = TypeVar("T")


class Status(StrEnum):
    """How a run ended, named after the answer SWF received (``LEFT``: none at all)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    LEFT = "left"
    """No answer: the task was lost (SWF forgot it, or it timed out), as a worker leaves it."""
    COMPLETES_LATER = "completes later"
    """No answer: the activity raised ``CompleteLater``, leaving the task to another process."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One ``RespondActivityTask*`` call, with its fields exactly as sent."""

    status: Status
    result: str | None = None
    reason: str | None = None
    details: str | None = None


def _task_closed(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "UnknownResourceFault", "Message": "Unknown activity task"},
            "ResponseMetadata": {
                "HTTPStatusCode": 400,
                "HTTPHeaders": {},
                "RequestId": "testing",
                "HostId": "",
                "RetryAttempts": 0,
            },
        },
        operation,
    )


class InMemoryTaskClient:
    """SWF's side of one activity task, in memory (satisfies ``TaskClient``).

    It records every call, replies to heartbeats with ``cancelRequested`` once
    :attr:`cancel_requested` is set, and, like SWF, forgets the task once it is answered or
    :attr:`closed`: further calls then fail with ``UnknownResourceFault``.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.heartbeats: list[str | None] = []
        """The ``details`` of every ``RecordActivityTaskHeartbeat`` call, as sent."""
        self.answers: list[Answer] = []
        self.calls: list[str] = []
        """Every operation received, in order, including those that were refused."""
        self.cancel_requested = False
        self.closed = False
        self._on_change = on_change

    def _receive(self, operation: str) -> None:
        self.calls.append(operation)
        if self.closed:
            self._changed()
            raise _task_closed(operation)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _answer(self, operation: str, answer: Answer) -> dict[str, Any]:
        self._receive(operation)
        self.answers.append(answer)
        self.closed = True
        self._changed()
        return {}

    async def record_activity_task_heartbeat(
        self, *, taskToken: str, details: str | None = None
    ) -> dict[str, Any]:
        self._receive("RecordActivityTaskHeartbeat")
        self.heartbeats.append(details)
        self._changed()
        return {"cancelRequested": self.cancel_requested}

    async def respond_activity_task_completed(
        self, *, taskToken: str, result: str | None = None
    ) -> dict[str, Any]:
        return self._answer("RespondActivityTaskCompleted", Answer(Status.COMPLETED, result=result))

    async def respond_activity_task_failed(
        self, *, taskToken: str, reason: str | None = None, details: str | None = None
    ) -> dict[str, Any]:
        return self._answer(
            "RespondActivityTaskFailed", Answer(Status.FAILED, reason=reason, details=details)
        )

    async def respond_activity_task_canceled(
        self, *, taskToken: str, details: str | None = None
    ) -> dict[str, Any]:
        return self._answer("RespondActivityTaskCanceled", Answer(Status.CANCELED, details=details))


class _FixedTimeouts:
    """A ``TimeoutSource`` that knows the answer, and tells when it was asked."""

    def __init__(self, timeouts: TaskTimeouts, on_resolve: Callable[[], None]) -> None:
        self._timeouts = timeouts
        self._on_resolve = on_resolve

    def guess(self, task: dict[str, Any], declared: ActivityType) -> tuple[TaskTimeouts, bool]:
        return self._timeouts, False  # not final: resolve() tells the run it started

    async def resolve(self, task: dict[str, Any], declared: ActivityType) -> TaskTimeouts:
        self._on_resolve()
        return self._timeouts


def _decode(value: str | None) -> Any:
    return None if value is None else json.loads(value)


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """How a run ended, with everything SWF would have seen, decoded.

    ``status`` is a :class:`Status`, a string enum, so ``outcome.status == "completed"``
    works in assertions.
    """

    status: Status
    result: Any = None
    """The return value (completed runs), decoded by the activity's return type hint with
    the run's converter: a dataclass comes back as that dataclass."""
    reason: str | None = None
    """The failure reason (failed runs), or why the task was left (left runs)."""
    details: Any = None
    """Canceled runs: the decoded cancel details. Failed runs: the details string as sent
    (the traceback's end for an exception; the latest progress JSON for a shutdown)."""
    heartbeats: tuple[Any, ...] = ()
    """The argument of every ``heartbeat()`` call the activity made, in order (None for a
    call without details)."""
    sent: tuple[Any, ...] = ()
    """The decoded details of every heartbeat the heartbeater sent, in order."""
    answer: Answer | None = None
    """The answer exactly as sent; None when the task was left."""

    @property
    def completed(self) -> bool:
        return self.status is Status.COMPLETED

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def canceled(self) -> bool:
        return self.status is Status.CANCELED

    @property
    def left(self) -> bool:
        return self.status is Status.LEFT

    @property
    def last_sent(self) -> Any:
        """The details of the last heartbeat SWF received: what a decider would find in
        ``ActivityTaskTimedOut`` and pass to the next attempt as its checkpoint."""
        return self.sent[-1] if self.sent else None

    def expect_completed(self) -> Any:
        """Return the result, or fail the test with the reason and details SWF received."""
        if self.status is not Status.COMPLETED:
            raise AssertionError(
                f"the activity did not complete but {self.status.value}: "
                f"reason={self.reason!r} details={self.details!r}"
            )
        return self.result


class ActivityRun:
    """A running activity, as handed out by :func:`start_activity`."""

    def __init__(
        self,
        activity: Activity[..., Any],
        task: dict[str, Any],
        converter: Converter = DEFAULT_CONVERTER,
    ) -> None:
        self.activity = activity
        self.converter = converter
        self.heartbeats: list[Any] = []
        """The argument of every ``heartbeat()`` call so far (see :class:`ActivityOutcome`)."""
        self.client = InMemoryTaskClient(on_change=self._notify)
        self._task = task
        self._changed = anyio.Event()
        self._resolved = False
        self._finished = False
        self._error: BaseException | None = None
        self._triggers: list[tuple[int, Callable[[], None]]] = []
        self._loop_thread = threading.get_ident()
        self._loop_token = anyio.lowlevel.current_token()
        self.execution: TaskExecution | None = None

    # -- what a test may do mid-run --------------------------------------------------------

    def request_cancel(self) -> None:
        """Have SWF request cancellation, as a decider's ``RequestCancelActivityTask`` does.

        As in production, the activity hears of it with the next heartbeat reply, within
        one heartbeat interval.
        """
        self.client.cancel_requested = True

    def request_shutdown(self) -> None:
        """Stop the activity as a worker does once its graceful shutdown time has passed.

        The run then ends failed with reason ``worker shutdown`` (so that a decider may
        reschedule at once), unless the activity finishes first.
        """
        if self.execution is not None:
            self.execution.stop(StopReason.SHUTDOWN, "worker shutdown")

    def lose_task(self) -> None:
        """Make SWF forget the task, as when it timed out or its workflow was closed.

        The next heartbeat gets ``UnknownResourceFault``; the worker stops the activity and
        sends no answer, so the run ends :attr:`Status.LEFT`.
        """
        self.client.closed = True

    async def wait_for_heartbeats(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait until the activity has made ``count`` ``heartbeat()`` calls in all."""
        await self._wait_until(
            lambda: len(self.heartbeats) >= count, f"{count} heartbeat() calls", timeout
        )

    async def wait_for_beats(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait until the heartbeater has sent ``count`` heartbeats to SWF in all."""
        await self._wait_until(
            lambda: len(self.client.heartbeats) >= count, f"{count} heartbeats sent", timeout
        )

    async def wait(self, *, timeout: float = 30.0) -> ActivityOutcome:
        """Wait for the answer (or, for a lost task, for the activity to end)."""
        await self._wait_until(self._ended, "the end of the run", timeout, may_end=True)
        return self._outcome()

    # -- what a test may read --------------------------------------------------------------

    @property
    def sent(self) -> list[Any]:
        """The decoded details of every heartbeat sent so far."""
        return [_decode(details) for details in self.client.heartbeats]

    @property
    def info(self) -> ActivityInfo | None:
        """What ``info()`` tells the activity; None until it started (or if it never did)."""
        execution = self.execution
        return None if execution is None or execution.context is None else execution.context.info

    @property
    def done(self) -> bool:
        return self._ended()

    @property
    def outcome(self) -> ActivityOutcome | None:
        """The outcome once the run ended, else None."""
        return self._outcome() if self._ended() else None

    # -- machinery -------------------------------------------------------------------------

    def _ended(self) -> bool:
        return self._finished or bool(self.client.answers)

    def _outcome(self) -> ActivityOutcome:
        if self._error is not None:
            raise RuntimeError("the task execution itself failed") from self._error
        heartbeats, sent = tuple(self.heartbeats), tuple(self.sent)
        if not self.client.answers:
            execution = self.execution
            left = None if execution is None else execution.outcome
            reason = None if left is None else left.reason
            status = Status.LEFT
            if left is not None and left.kind is OutcomeKind.LATER:
                status = Status.COMPLETES_LATER
            return ActivityOutcome(status, reason=reason, heartbeats=heartbeats, sent=sent)
        answer = self.client.answers[0]
        details = answer.details
        return ActivityOutcome(
            answer.status,
            result=decode_result(answer.result, self.activity.function, self.converter),
            reason=answer.reason,
            details=_decode(details) if answer.status is Status.CANCELED else details,
            heartbeats=heartbeats,
            sent=sent,
            answer=answer,
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float, *, may_end: bool = False
    ) -> None:
        """Wait for ``condition``; unless ``may_end``, the run ending first is an error."""
        try:
            with anyio.fail_after(timeout):
                while not condition():
                    if self._ended() and not may_end:
                        outcome = self._outcome()
                        raise AssertionError(
                            f"the run ended ({outcome.status.value}) before {what}: "
                            f"{len(self.heartbeats)} heartbeat() calls, "
                            f"{len(self.client.heartbeats)} heartbeats sent, "
                            f"reason={outcome.reason!r}"
                        )
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"waited {timeout} s for {what} in vain: {len(self.heartbeats)} heartbeat() "
                f"calls, {len(self.client.heartbeats)} heartbeats sent so far"
            ) from None

    def _on_heartbeat(self, details: Any) -> None:
        """Runs on the event loop for every ``heartbeat()`` call."""
        self.heartbeats.append(details)
        for count, action in self._triggers:
            if len(self.heartbeats) == count:
                action()
        self._notify()

    def _observer(self, details: Any) -> None:
        """The observer ``heartbeat()`` calls; from an activity's thread, it hops to the loop
        and waits there, so the order of calls and any triggered action stay exact."""
        if threading.get_ident() == self._loop_thread:
            self._on_heartbeat(details)
            return
        # RuntimeError: the test's event loop is gone, and an abandoned thread still runs.
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(self._on_heartbeat, details, token=self._loop_token)

    async def _run(
        self,
        settings: ExecutionSettings,
        timeouts: TaskTimeouts,
        thread_limit: int,
        helpers: TaskGroup,
    ) -> None:
        heartbeat_observer.set(self._observer)

        def resolved() -> None:
            self._resolved = True
            self._notify()

        # The worker's services, for this one task: a scheduler, and a group for helpers.
        heartbeats = HeartbeatScheduler(max_in_flight=1)
        helpers.start_soon(heartbeats.run)
        try:
            async with contextlib.AsyncExitStack() as stack:
                processes = None
                if self.activity.executor == "process":
                    # One child process, started for this run as a worker starts its pool.
                    from ._process_pool import ProcessPool

                    processes = await stack.enter_async_context(ProcessPool(1, [self.activity]))
                self.execution = TaskExecution(
                    self._task,
                    self.activity,
                    settings=settings,
                    client=self.client,
                    resolver=_FixedTimeouts(timeouts, resolved),
                    thread_limiter=anyio.CapacityLimiter(thread_limit),
                    heartbeats=heartbeats,
                    helpers=helpers,
                    processes=processes,
                )
                await self.execution.run()
        except Exception as error:
            self._error = error
            raise
        finally:
            self._finished = True
            self._notify()


def _timeout(value: float | Declared | None, declared: float | None) -> float | None:
    return declared if value == "declared" else value


async def _after_delay(delay: float, action: Callable[[], None]) -> None:
    await anyio.sleep(delay)
    action()


@asynccontextmanager
async def start_activity(
    activity: Activity[..., Any] | Callable[..., Any],
    input: Any = None,
    *,
    raw_input: str | None = None,
    checkpoint: Any = None,
    heartbeat_timeout: float | Declared | None = "declared",
    start_to_close_timeout: float | Declared | None = "declared",
    heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
    cancel_grace_period: float = 3.0,
    cancel_after_heartbeats: int | None = None,
    cancel_after: float | None = None,
    shutdown_after_heartbeats: int | None = None,
    shutdown_after: float | None = None,
    timeout: float = 30.0,
    converter: Converter = DEFAULT_CONVERTER,
    progress_timeout: float | None = None,
) -> AsyncIterator[ActivityRun]:
    """Start ``activity`` as a worker would and hand out an :class:`ActivityRun`.

    ``activity`` is a decorated activity or a plain function. ``input`` is JSON-encoded as
    a decider would schedule it (None schedules no input); ``raw_input`` gives the exact
    input string instead, for example to test input that is not JSON. ``checkpoint`` wraps
    the input with :func:`~heartbeat_worker.with_checkpoint`, so the activity finds it in
    ``info().checkpoint``.

    ``heartbeat_timeout`` and ``start_to_close_timeout`` replace the decorator's values as
    the timeouts in force (what ``info()`` reports, and what the heartbeater watches: a
    run past its start-to-close timeout is stopped and left, as SWF would time it out).
    ``heartbeat_interval`` paces the heartbeater (None: as a worker does, a third of the
    heartbeat timeout). ``cancel_grace_period`` is the worker's setting of that name.

    ``converter`` encodes ``input`` and decodes the arguments and the result by the
    activity's type hints, as ``Worker(converter=...)`` does (``input`` may be a dataclass,
    for example). ``progress_timeout`` is the worker's default progress timeout (the
    activity's own, if it declares one, wins): a run that goes that long without a
    ``heartbeat()`` call ends failed with a reason starting ``stalled:``.

    ``cancel_after_heartbeats=N`` requests cancellation during the activity's Nth
    ``heartbeat()`` call; ``cancel_after`` after so many seconds. The ``shutdown_after*``
    options do the same for :meth:`ActivityRun.request_shutdown`.

    Leaving the block normally waits for the run to end; if the run takes longer than
    ``timeout`` seconds in all, it is cancelled and :class:`TimeoutError` is raised. An
    exception from the block cancels the run.
    """
    if raw_input is not None and (input is not None or checkpoint is not None):
        raise ValueError("pass either raw_input or input (and checkpoint), not both")
    definition = activity if isinstance(activity, Activity) else as_activity(activity)
    declared = definition.activity_type
    timeouts = TaskTimeouts(
        heartbeat=_timeout(heartbeat_timeout, declared.heartbeat_timeout),
        start_to_close=_timeout(start_to_close_timeout, declared.start_to_close_timeout),
    )
    if heartbeat_interval is None:
        fraction, without_timeout = DEFAULT_HEARTBEAT_FRACTION, DEFAULT_INTERVAL_WITHOUT_TIMEOUT
    else:
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive seconds, or None")
        fraction = heartbeat_interval / timeouts.heartbeat if timeouts.heartbeat else 1.0
        without_timeout = heartbeat_interval
    settings = ExecutionSettings(
        domain=DOMAIN,
        task_list=TASK_LIST,
        heartbeat_fraction=fraction,
        heartbeat_interval_without_timeout=without_timeout,
        cancel_grace_period=cancel_grace_period,
        converter=converter,
        progress_timeout=progress_timeout,
    )
    if raw_input is None and checkpoint is not None:
        plain = None if input is None else converter.decode(converter.encode(input))
        raw_input = with_checkpoint(plain, checkpoint)
    elif raw_input is None and input is not None:
        raw_input = converter.encode(input)
    task: dict[str, Any] = {
        "taskToken": f"testing-token-{next(_tokens)}",
        "activityId": ACTIVITY_ID,
        "activityType": {"name": declared.name, "version": declared.version},
        "workflowExecution": {"workflowId": WORKFLOW_ID, "runId": RUN_ID},
        "startedEventId": 3,
    }
    if raw_input is not None:
        task["input"] = raw_input

    run = ActivityRun(definition, task, converter)
    if cancel_after_heartbeats is not None:
        run._triggers.append((cancel_after_heartbeats, run.request_cancel))
    if shutdown_after_heartbeats is not None:
        run._triggers.append((shutdown_after_heartbeats, run.request_shutdown))
    deadline = anyio.current_time() + timeout
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(run._run, settings, timeouts, 1, group)
        try:
            # Hand the run out once the activity is about to start (or ended without
            # starting, for bad input), so that request_shutdown() has an activity to stop.
            await run._wait_until(
                lambda: run._resolved or run._ended(), "the start", timeout, may_end=True
            )
            _start_timers(group, run, cancel_after, shutdown_after)
            yield run
            await run.wait(timeout=max(deadline - anyio.current_time(), 0.0))
            # The answer is in; a coroutine that ignored cancellation may still be running.
            with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
                await run._wait_until(lambda: run._finished, "its end", timeout, may_end=True)
        except Exception as error:
            failure = error  # raised below, not wrapped in the task group's ExceptionGroup
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


def _start_timers(
    group: TaskGroup, run: ActivityRun, cancel_after: float | None, shutdown_after: float | None
) -> None:
    if cancel_after is not None:
        group.start_soon(_after_delay, cancel_after, run.request_cancel)
    if shutdown_after is not None:
        group.start_soon(_after_delay, shutdown_after, run.request_shutdown)


async def run_activity(
    activity: Activity[..., Any] | Callable[..., Any],
    input: Any = None,
    *,
    raw_input: str | None = None,
    checkpoint: Any = None,
    heartbeat_timeout: float | Declared | None = "declared",
    start_to_close_timeout: float | Declared | None = "declared",
    heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
    cancel_grace_period: float = 3.0,
    cancel_after_heartbeats: int | None = None,
    cancel_after: float | None = None,
    shutdown_after_heartbeats: int | None = None,
    shutdown_after: float | None = None,
    timeout: float = 30.0,
    converter: Converter = DEFAULT_CONVERTER,
    progress_timeout: float | None = None,
) -> ActivityOutcome:
    """Run ``activity`` to its end as a worker would, and return the outcome.

    The options are those of :func:`start_activity`.
    """
    async with start_activity(
        activity,
        input,
        raw_input=raw_input,
        checkpoint=checkpoint,
        heartbeat_timeout=heartbeat_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_interval=heartbeat_interval,
        cancel_grace_period=cancel_grace_period,
        cancel_after_heartbeats=cancel_after_heartbeats,
        cancel_after=cancel_after,
        shutdown_after_heartbeats=shutdown_after_heartbeats,
        shutdown_after=shutdown_after,
        timeout=timeout,
        converter=converter,
        progress_timeout=progress_timeout,
    ) as run:
        return await run.wait(timeout=timeout)


def _in_own_event_loop(function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of ``function``, with the same (type-checked) parameters."""

    def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
        async def main() -> T:
            return await function(*args, **kwargs)

        return anyio.run(main, backend="asyncio")

    blocking.__name__ = blocking.__qualname__ = f"{function.__name__}_sync"
    blocking.__module__ = function.__module__
    blocking.__doc__ = (
        f":func:`{function.__name__}` for a plain ``def`` test: same parameters, but it runs "
        "its own event loop (asyncio), so call it where no event loop is running."
    )
    return blocking


run_activity_sync = _in_own_event_loop(run_activity)
