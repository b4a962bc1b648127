"""One task, from the poll reply to the answer: run the activity beside its heartbeater,
then answer SWF exactly once (or deliberately not at all, with a log line saying why).

The answer always follows from one :class:`Outcome`:

=====================  ==============================================================
activity returned      ``RespondActivityTaskCompleted`` (result JSON-encoded)
activity raised        ``RespondActivityTaskFailed`` (reason: type and message of the first
                       real error, looking into exception groups; details: the whole
                       traceback, causes included, its end kept). Any BaseException
                       counts, ``SystemExit`` or a stray ``CancelledError`` too.
stopped, SWF cancel    ``RespondActivityTaskCanceled`` (details: those the activity
                       attached to ``ActivityCancelled``, else its latest progress; JSON
                       stays JSON). SWF's cancel request wins over a shutdown stop.
stopped, shutdown      ``RespondActivityTaskFailed`` with reason ``worker shutdown``
stopped, task lost     nothing: SWF has closed the task already
stopped, stalled       ``RespondActivityTaskFailed`` with reason ``stalled: ...`` and the
                       latest progress as details (see ``_stall.py``)
raised ActivityFailed  ``RespondActivityTaskFailed`` with its reason and details
raised CompleteLater   nothing: another process answers with the task token
=====================  ==============================================================

An exception of a type the activity declares ``non_retryable`` fails with the reason marked
non-retryable (``_failures.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from structlog.typing import FilteringBoundLogger

from ._checkpoint import unwrap_input
from ._codec import InputError, bind_input, encode_result, signature_hints
from ._context import ActivityContext, ActivityInfo, StopReason, bind
from ._converter import DEFAULT_CONVERTER, Converter
from ._definition import Activity
from ._errors import (
    ActivityCancelled,
    ActivityFailed,
    ActivityProcessError,
    CompleteLater,
    SWFLimitError,
)
from ._failures import chosen_failure, mark_non_retryable
from ._heartbeater import Heartbeater, HeartbeatScheduler, heartbeat_interval
from ._interceptor import (
    AnswerInput,
    ExecuteActivityInput,
    Interceptor,
    TaskDescription,
    intercept_client,
)
from ._logging import get_logger, token_hash
from ._outcome import SHUTDOWN_REASON, Outcome, OutcomeKind, is_cancellation, leaves
from ._running import InContext, ThreadWatch
from ._stall import (
    activity_stack,
    effective_progress_timeout,
    stalled_reason,
    watch_progress,
)
from ._swf import Backoff, TaskClient, is_task_closed, retry_transient
from ._timeouts import TaskTimeouts, TimeoutSource

if TYPE_CHECKING:
    from ._process_pool import ProcessPool

__all__ = ["SHUTDOWN_REASON", "ExecutionSettings", "Outcome", "OutcomeKind", "TaskExecution"]

_ANSWER_RETRY_MAX = 10.0
_PROVISIONAL_INTERVAL = 1.0
"""Seconds between the beats of a task whose heartbeat timeout is still being looked up:
the look-up may find a timeout shorter than the best guess."""


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    domain: str
    task_list: str
    heartbeat_fraction: float
    heartbeat_interval_without_timeout: float
    cancel_grace_period: float
    converter: Converter = DEFAULT_CONVERTER
    progress_timeout: float | None = None
    """The default progress timeout of activities that declare none (None: off)."""


class TaskExecution:
    """Runs one polled task; :meth:`stop` may be called by the heartbeater or the worker.

    The activity runs in the task that calls :meth:`run`, with no task group of its own:
    most tasks are never asked to stop, and spawning is the costliest thing a task would
    otherwise do besides its SWF calls. It runs in a fresh copy of the caller's context
    (see :mod:`._running`), so nothing it sets survives it. A stop request starts the one
    helper a task may need, in ``helpers``: the grace timer, which answers in the activity's
    place if it is still running when the grace period ends.

    Slots, and scopes made only when needed: a worker keeps one of these per running
    activity, and thousands of sleeping activities are the case the heartbeat budget is for.
    """

    __slots__ = (
        "__weakref__",
        "_activity",
        "_activity_scope",
        "_answered",
        "_client",
        "_early_stop",
        "_heartbeats",
        "_helpers",
        "_interceptor",
        "_lateness_planned",
        "_on_loop",
        "_processes",
        "_received",
        "_resolve_scope",
        "_resolver",
        "_returned",
        "_settings",
        "_stall_watch",
        "_started",
        "_started_at",
        "_task",
        "_thread_limiter",
        "_token",
        "_token_hash",
        "answered",
        "context",
        "counted",
        "description",
        "heartbeat_interval",
        "heartbeater",
        "left_why",
        "log",
        "outcome",
        "thread_returned",
    )

    def __init__(
        self,
        task: dict[str, Any],
        activity: Activity[..., Any] | None,
        *,
        settings: ExecutionSettings,
        client: TaskClient,
        resolver: TimeoutSource,
        thread_limiter: anyio.CapacityLimiter,
        heartbeats: HeartbeatScheduler,
        helpers: TaskGroup,
        interceptor: Interceptor | None = None,
        processes: ProcessPool | None = None,
    ) -> None:
        self._task = task
        self._activity = activity
        self._settings = settings
        self._client = client
        self._resolver = resolver
        self._thread_limiter = thread_limiter
        self._heartbeats = heartbeats
        self._helpers = helpers
        self._processes = processes
        self._token: str = task["taskToken"]
        self._token_hash = token_hash(self._token)
        activity_type = task["activityType"]
        execution = task["workflowExecution"]
        # Bound now, once: a lazy logger binds its fields again on every call, even on a
        # call its level filters out.
        self.log: FilteringBoundLogger = get_logger(
            domain=settings.domain,
            task_list=settings.task_list,
            activity_type=activity_type["name"],
            activity_version=activity_type["version"],
            activity_id=task["activityId"],
            workflow_id=execution["workflowId"],
            run_id=execution["runId"],
            token=self._token_hash,
        ).bind()
        self.context: ActivityContext | None = None
        self.heartbeater: Heartbeater | None = None
        self.heartbeat_interval: float | None = None
        self.outcome: Outcome | None = None
        """Set once, by whoever answers: the running task, or the grace timer in its place."""
        self.answered = False
        """Whether the answer reached SWF, or the task was deliberately left to its timeout."""
        self.left_why: str | None = None
        """Why the worker gave up on answering, once it has (see :meth:`leave`)."""
        self.counted = False
        """Whether the worker has counted this task's outcome (it does so once)."""
        self.thread_returned: anyio.Event | None = None
        """Set when the activity's thread was abandoned while still running: the event is
        set once the thread finally returns."""
        self._activity_scope = anyio.CancelScope()
        self._resolve_scope: anyio.CancelScope | None = None
        self._on_loop = activity is not None and activity.is_coroutine
        # Both exist only once a stop is requested (most tasks never need them).
        self._returned: anyio.Event | None = None
        self._answered: anyio.Event | None = None
        self._early_stop: tuple[StopReason, str] | None = None
        self._stall_watch: anyio.CancelScope | None = None
        self._started = time.monotonic()
        self._received = anyio.current_time()
        self._started_at = datetime.now(UTC)
        self._interceptor = interceptor
        self.description: TaskDescription | None = None
        """What interceptors see of the task; None without interceptors."""
        if interceptor is not None:
            self.description = TaskDescription.from_task(
                task, settings.domain, settings.task_list, self._token_hash
            )
            self._client = intercept_client(
                client, interceptor, self.description, self._heartbeat_lateness
            )
            self._lateness_planned = -1.0

    @property
    def runs_on_loop(self) -> bool:
        """Whether the activity runs as a coroutine, sharing the event loop with heartbeats."""
        return self._on_loop

    # -- the worker's and the heartbeater's entry points ---------------------------------

    async def run(self) -> Outcome:
        """Run the task and answer it; returns the outcome the answer followed from.

        Raises only when the task running it is cancelled (the worker's hard deadline, or
        whoever runs the worker cancelling it); anything the activity raises, whatever its
        type, becomes the task's failure.
        """
        self.log.debug("task received")
        activity = self._activity
        if activity is None:
            activity_type = self._task["activityType"]
            return await self.hand_back(
                f"unknown activity type {activity_type['name']!r} version "
                f"{activity_type['version']!r}: this worker does not implement it"
            )
        raw_input, checkpoint = unwrap_input(self._task.get("input"))
        try:
            arguments = bind_input(
                activity.signature,
                raw_input,
                converter=self._settings.converter,
                hints=signature_hints(activity.function),
            )
        except InputError as error:
            return await self.hand_back(f"bad input: {error}")
        timeouts, final = self._resolver.guess(self._task, activity.activity_type)
        acknowledged: float | None = None
        if not final:
            timeouts, acknowledged = await self._resolve_beating(timeouts, checkpoint, activity)
        self.context = context = self._make_context(timeouts, checkpoint, activity)
        self.heartbeat_interval = heartbeat_interval(
            timeouts.heartbeat,
            self._settings.heartbeat_fraction,
            self._settings.heartbeat_interval_without_timeout,
        )
        self.heartbeater = heartbeater = Heartbeater(
            context,
            self._client,
            self._token,
            interval=self.heartbeat_interval,
            on_stop=self.stop,
            log=self.log,
        )
        self._heartbeats.add(heartbeater, started_at=self._received)
        if context.progress_timeout is not None:
            self._stall_watch = anyio.CancelScope()
            self._helpers.start_soon(watch_progress, context, self._stalled, self._stall_watch)
        if acknowledged is not None:
            heartbeater.last_acknowledged = acknowledged
        try:
            if self._early_stop is not None:
                # Stopped while its timeouts were being resolved: the activity never starts.
                context.request_stop(self._early_stop[0])
                self.log.info(
                    "stopped before the activity started",
                    reason=self._early_stop[0].value,
                    why=self._early_stop[1],
                )
                outcome = self._stopped_outcome(details=None)
            else:
                outcome = await self._call(activity, arguments.args, arguments.kwargs)
            if self._returned is not None:
                self._returned.set()
            if self.outcome is not None:
                # The grace timer answered while the activity ignored its stop request.
                assert self._answered is not None
                await self._answered.wait()
                return self.outcome
            self.outcome = outcome
            return await self._answer(outcome)
        finally:
            self._stop_beating()

    async def hand_back(self, reason: str) -> Outcome:
        """Answer failed without running the activity (it cannot run, or the worker is
        stopping), so that a decider can reschedule it at once."""
        self.outcome = outcome = Outcome.failed(reason)
        return await self._answer(outcome)

    async def _resolve_beating(
        self, guess: TaskTimeouts, checkpoint: Any, activity: Activity[..., Any]
    ) -> tuple[TaskTimeouts, float]:
        """Look the task's timeouts up while a provisional heartbeater keeps it alive.

        The look-up may retry for seconds, and the first beat must not wait for it: a
        heartbeat timeout shorter than the look-up would expire first. The provisional
        heartbeater beats with the timeouts best known so far, at least every
        ``_PROVISIONAL_INTERVAL``; a fast look-up replaces it before its first beat. A stop
        request meanwhile ends the look-up. Returns the timeouts and the time of the last
        acknowledged beat.
        """
        provisional = Heartbeater(
            self._make_context(guess, checkpoint, activity),
            self._client,
            self._token,
            interval=min(
                _PROVISIONAL_INTERVAL,
                heartbeat_interval(
                    guess.heartbeat,
                    self._settings.heartbeat_fraction,
                    self._settings.heartbeat_interval_without_timeout,
                ),
            ),
            on_stop=self.stop,
            log=self.log,
        )
        self._heartbeats.add(provisional, started_at=self._received)
        self._resolve_scope = scope = anyio.CancelScope()
        if self._early_stop is not None:
            scope.cancel()  # stopped before the look-up began
        try:
            with scope:
                found = await self._resolver.resolve(self._task, activity.activity_type)
                return found, provisional.last_acknowledged
            return guess, provisional.last_acknowledged
        finally:
            self._heartbeats.remove(provisional)
            provisional.release()

    def stop(self, reason: StopReason, why: str) -> None:
        """Ask the activity to stop. The first reason wins and decides the answer, except
        that SWF's cancel request overrides the worker's own shutdown: a workflow that
        cancelled the task must hear "canceled", not a failure it may retry."""
        if self.outcome is not None:
            return
        context = self.context
        if context is None:
            # Still preparing (resolving timeouts): the stop applies once the context exists.
            if self._early_stop is None or _overrides(reason, self._early_stop[0]):
                self._early_stop = (reason, why)
            if self._resolve_scope is not None:
                self._resolve_scope.cancel()
            return
        if not context.request_stop(reason):
            if _overrides(reason, context.stop_reason):
                context.stop_reason = reason
                self.log.info("cancel requested while stopping; answering canceled", why=why)
            return
        self._returned = anyio.Event()
        self._helpers.start_soon(self._enforce_grace)
        if reason is StopReason.STALLED:
            # Before the cancellation unwinds it: the stack shows where it is stuck.
            self.log.warning(
                "activity stalled; stopping it", why=why, stack=activity_stack(context)
            )
        else:
            log = self.log.warning if reason is StopReason.TASK_LOST else self.log.info
            log("stopping activity", reason=reason.value, why=why)
        if self._on_loop:
            self._activity_scope.cancel()
        elif self._processes is not None:
            self._processes.stop(context)  # a child's flag; the grace timer ends the child

    def _stalled(self, idle: float) -> None:
        context = self.context
        assert context is not None
        context.stalled_reason = stalled_reason(context, idle)
        self.stop(StopReason.STALLED, context.stalled_reason)

    def leave(self, why: str) -> bool:
        """Give up on answering (the worker's hard deadline): log it, unless the task was
        answered or left already. Returns whether this call left it."""
        if self.answered or self.left_why is not None:
            return False
        self.left_why = why
        self.log.error(
            "task left to SWF's timeout",
            why=why,
            outcome=None if self.outcome is None else self.outcome.kind.value,
            duration=round(time.monotonic() - self._started, 3),
        )
        return True

    # -- running ---------------------------------------------------------------------------

    def _stop_beating(self) -> None:
        """Stop beating once the answer is in (or the task is left to SWF).

        Beating goes on while the answer is sent: an answer retried through an outage of the
        Respond* calls would otherwise let the heartbeat timeout expire first. A heartbeat
        that crosses the answer draws ``UnknownResourceFault``, and the stop it asks for is
        ignored, the task being answered already.
        """
        heartbeater = self.heartbeater
        if heartbeater is not None:
            self._heartbeats.remove(heartbeater)
            heartbeater.release()
        if self._stall_watch is not None:
            self._stall_watch.cancel()

    async def _call(
        self, activity: Activity[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Outcome:
        context = self.context
        assert context is not None
        # A fresh copy of the worker's context: what the activity (and the interceptors
        # around it) set stays in it.
        scope = contextvars.copy_context()
        scope.run(bind, context)
        try:
            with self._activity_scope:
                if self._interceptor is None:
                    value = await InContext(self._invoke(activity, args, kwargs), scope)
                else:
                    assert self.description is not None
                    call = self._interceptor.execute_activity(
                        ExecuteActivityInput(
                            task=self.description,
                            info=context.info,
                            function=activity.function,
                            args=args,
                            kwargs=kwargs,
                            in_thread=not activity.is_coroutine,
                            _call=functools.partial(self._invoke, activity, args, kwargs),
                        )
                    )
                    value = await InContext(call, scope)
                return self._completed(value)
            return self._stopped_outcome(details=None)
        except ActivityProcessError as error:
            return Outcome.failed(error.reason, error.details)
        except ActivityFailed as failed:
            return Outcome.failed(*chosen_failure(failed, self._settings.converter))
        except CompleteLater:
            context.completes_later = True
            return Outcome(OutcomeKind.LATER)
        except BaseException as error:
            if anyio.current_effective_deadline() == -math.inf:
                raise  # the task running this is being cancelled: not the activity's doing
            outcome = self._escaped(error)
            if (
                outcome.kind is OutcomeKind.FAILED
                and activity.non_retryable
                and isinstance(error, activity.non_retryable)
            ):
                return Outcome.failed(mark_non_retryable(outcome.reason or ""), outcome.details)
            return outcome
        finally:
            context.coroutine = None

    async def _invoke(
        self, activity: Activity[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Call the activity (in the context :meth:`_call` runs it in)."""
        context = self.context
        assert context is not None
        if activity.is_coroutine:
            value = activity.function(*args, **kwargs)
            if not inspect.isawaitable(value):
                return value
            # Kept for the stall watch, which shows where the coroutine waits.
            context.coroutine = value
            return await value
        if activity.executor == "process":
            # The child decodes the task's input itself, by the same codec.
            assert self._processes is not None
            raw_input = unwrap_input(self._task.get("input"))[0]
            return await self._processes.run(activity, raw_input, context)
        value = await self._in_thread(activity.function, args, kwargs)
        if inspect.isawaitable(value):
            # A plain function that returned an awaitable (a wrapper around a coroutine
            # function that hid it): it is a coroutine after all.
            self._on_loop = context.in_thread = False
            if context.stop_reason is not None:
                self._activity_scope.cancel()
            context.coroutine = value
            value = await value
        return value

    async def _in_thread(
        self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        context = self.context
        assert context is not None
        watch = ThreadWatch()

        def call() -> Any:
            # Noted for the stall watch, which shows the thread's stack.
            context.activity_thread = threading.get_ident()
            try:
                return function(*args, **kwargs)
            finally:
                context.activity_thread = None
                watch.finished()

        try:
            # The thread runs in a copy of the calling context (anyio copies it).
            return await anyio.to_thread.run_sync(
                call, abandon_on_cancel=True, limiter=self._thread_limiter
            )
        finally:
            returned = watch.abandoned()
            if returned is not None:
                self.thread_returned = returned
                self.log.warning("activity thread abandoned while still running")

    def _escaped(self, error: BaseException) -> Outcome:
        """The outcome when ``error`` ended the activity (any exception, any group)."""
        context = self.context
        assert context is not None
        members = leaves(error)
        if context.stop_reason is not None and all(map(is_cancellation, members)):
            details = next(
                (
                    member.details
                    for member in members
                    if isinstance(member, ActivityCancelled) and member.details is not None
                ),
                None,
            )
            return self._stopped_outcome(details)
        if isinstance(error, asyncio.CancelledError):
            # A cancellation nobody requested (an awaited future was cancelled, or the
            # activity cancelled its own task): forget it, or it would hit the next task.
            task = asyncio.current_task()
            while task is not None and task.cancelling():
                task.uncancel()
        if not isinstance(error, Exception):
            self.log.warning("activity raised a BaseException", error=repr(error))
        return Outcome.from_exception(error)

    def _heartbeat_lateness(self) -> float | None:
        """For interceptors: how late the beat being sent left against its plan; None for
        a retry of a beat already reported."""
        heartbeater = self.heartbeater
        if heartbeater is None or heartbeater.planned_at == self._lateness_planned:
            return None
        self._lateness_planned = heartbeater.planned_at
        return max(0.0, anyio.current_time() - heartbeater.planned_at)

    def _completed(self, value: Any) -> Outcome:
        try:
            result = encode_result(value, self._settings.converter)
        except SWFLimitError as error:
            return Outcome.failed(f"result too large: {error}")
        except (TypeError, ValueError) as error:
            return Outcome.failed(f"result is not JSON-serializable: {error}")
        return Outcome(OutcomeKind.COMPLETED, result=result)

    def _stopped_outcome(self, details: Any) -> Outcome:
        context = self.context
        assert context is not None
        reason = context.stop_reason
        if reason is StopReason.CANCEL_REQUESTED:
            if details is None:
                encoded = context.details_json
            else:
                try:
                    encoded = self._settings.converter.encode(details)
                except (TypeError, ValueError):
                    encoded = self._settings.converter.encode(repr(details))
            return Outcome.canceled(encoded)
        if reason is StopReason.SHUTDOWN:
            return Outcome.failed(SHUTDOWN_REASON, context.details_json)
        if reason is StopReason.STALLED:
            return Outcome.failed(context.stalled_reason or "stalled", context.details_json)
        return Outcome(OutcomeKind.LEFT, reason="SWF closed the task")

    async def _enforce_grace(self) -> None:
        """After a stop request, give the activity the grace period, then answer without it.

        A blocking activity's thread is abandoned (Python cannot stop a thread); a coroutine
        that keeps running is left to finish in the background, its result ignored.
        """
        returned = self._returned
        assert returned is not None
        with anyio.move_on_after(self._settings.cancel_grace_period):
            await returned.wait()
            return
        if self.outcome is not None:
            return
        self.log.warning(
            "activity ignored the stop request for the grace period; answering without it",
            grace_period=self._settings.cancel_grace_period,
        )
        self._activity_scope.cancel()
        self.outcome = outcome = self._stopped_outcome(details=None)
        self._answered = anyio.Event()
        try:
            await self._answer(outcome)
        finally:
            self._stop_beating()
            self._answered.set()

    def _make_context(
        self, timeouts: TaskTimeouts, checkpoint: Any, activity: Activity[..., Any]
    ) -> ActivityContext:
        task = self._task
        execution = task["workflowExecution"]
        info = ActivityInfo(
            domain=self._settings.domain,
            task_list=self._settings.task_list,
            activity_id=task["activityId"],
            activity_type=task["activityType"]["name"],
            activity_version=task["activityType"]["version"],
            workflow_id=execution["workflowId"],
            run_id=execution["runId"],
            started_event_id=int(task["startedEventId"]),
            heartbeat_timeout=timeouts.heartbeat,
            start_to_close_timeout=timeouts.start_to_close,
            started_at=self._started_at,
            token_hash=self._token_hash,
            checkpoint=checkpoint,
        )
        return ActivityContext(
            info,
            in_thread=not activity.is_coroutine,
            converter=self._settings.converter,
            progress_timeout=effective_progress_timeout(
                activity.progress_timeout, self._settings.progress_timeout
            ),
            task_token=self._token,
        )

    # -- answering -------------------------------------------------------------------------

    async def _answer(self, outcome: Outcome) -> Outcome:
        """The one answer of this task (every path of :meth:`run` ends here exactly once).

        Returns the outcome as it turned out: ``LEFT`` if SWF could not be told.
        """
        interceptor = self._interceptor
        if interceptor is None:
            return await self._send_answer(outcome)
        assert self.description is not None
        sent: Outcome | None = None

        async def send() -> None:
            nonlocal sent
            if sent is None:
                sent = outcome  # before the call: an interceptor may send only once
                sent = await self._send_answer(outcome)

        try:
            await interceptor.answer(
                AnswerInput(
                    task=self.description,
                    outcome=outcome.label,
                    reason=outcome.reason,
                    duration=time.monotonic() - self._started,
                    heartbeats=self.heartbeater.beats_sent if self.heartbeater else 0,
                    _send=send,
                )
            )
        except Exception as error:
            self.log.error("an interceptor failed around the answer", error=repr(error))
        if sent is None:
            await send()  # an interceptor that did not go on must not cost the answer
        assert sent is not None
        return sent

    async def _send_answer(self, outcome: Outcome) -> Outcome:
        duration = round(time.monotonic() - self._started, 3)
        beats = self.heartbeater.beats_sent if self.heartbeater else 0
        if outcome.kind is OutcomeKind.LEFT:
            self.answered = True
            self.log.warning(
                "task left to SWF's timeout", why=outcome.reason, duration=duration, beats=beats
            )
            return outcome
        if outcome.kind is OutcomeKind.LATER:
            # The token itself went wherever the activity stored it; the log has its hash.
            self.log.info(
                "task left to be answered later by another process",
                duration=duration,
                beats=beats,
            )
            return outcome
        call = self._answer_call(outcome)
        # Heartbeats go on while the answer is retried, but an outage may stop them too:
        # keep retries a tenth of the heartbeat timeout apart at most, so that the answer
        # lands soon after the outage ends, not after SWF's heartbeat clock has run out.
        timeout = None if self.context is None else self.context.info.heartbeat_timeout
        most = _ANSWER_RETRY_MAX if timeout is None else min(_ANSWER_RETRY_MAX, timeout / 10)
        try:
            await retry_transient(
                call, backoff=Backoff(initial=0.1, maximum=most), what=_ANSWER_NAMES[outcome.kind]
            )
        except Exception as error:
            self.answered = True
            if is_task_closed(error):
                # After a lost reply and a retry, this means the first answer arrived.
                self.log.warning(
                    "SWF no longer knows the task; the answer was either recorded already "
                    "or the task closed meanwhile",
                    outcome=outcome.kind.value,
                )
                return outcome
            self.log.error(
                "could not answer the task; it is left to SWF's timeout",
                outcome=outcome.kind.value,
                error=repr(error),
            )
            self.outcome = left = Outcome(OutcomeKind.LEFT, reason=f"could not answer: {error!r}")
            return left
        self.answered = True
        fields: dict[str, Any] = {"duration": duration, "beats": beats}
        if outcome.reason is not None:
            fields["reason"] = outcome.reason
        self.log.info(f"task {outcome.kind.value}", **fields)
        return outcome

    def _answer_call(self, outcome: Outcome) -> Callable[[], Any]:
        client, token = self._client, self._token
        if outcome.kind is OutcomeKind.COMPLETED:
            if outcome.result is None:
                return lambda: client.respond_activity_task_completed(taskToken=token)
            result = outcome.result
            return lambda: client.respond_activity_task_completed(taskToken=token, result=result)
        if outcome.kind is OutcomeKind.CANCELED:
            details = outcome.details
            if details is None:
                return lambda: client.respond_activity_task_canceled(taskToken=token)
            return lambda: client.respond_activity_task_canceled(taskToken=token, details=details)
        arguments: dict[str, Any] = {"taskToken": token, "reason": outcome.reason or ""}
        if outcome.details is not None:
            arguments["details"] = outcome.details
        return lambda: client.respond_activity_task_failed(**arguments)


_ANSWER_NAMES = {
    OutcomeKind.COMPLETED: "RespondActivityTaskCompleted",
    OutcomeKind.FAILED: "RespondActivityTaskFailed",
    OutcomeKind.CANCELED: "RespondActivityTaskCanceled",
}


def _overrides(reason: StopReason, current: StopReason | None) -> bool:
    """Whether a stop for ``reason`` replaces one already requested for ``current``."""
    return reason is StopReason.CANCEL_REQUESTED and current is StopReason.SHUTDOWN
