"""Background heartbeats: one scheduler per worker beats for every running activity.

Each activity's :class:`Heartbeater` keeps the task alive at a fraction of the heartbeat
timeout in force, carries the latest progress details the activity recorded, and is the
worker's only way of hearing that SWF wants the task cancelled (the heartbeat reply is
SWF's only channel for that). It also notices when the task is gone: SWF answers
``UnknownResourceFault``, or no heartbeat has been acknowledged for longer than the timeout,
or start-to-close has passed. In each case it reports a :class:`StopReason` and the task
execution decides what to do.

The heartbeaters own no task. One :class:`HeartbeatScheduler` keeps them in a heap by the
time of their next call, sleeps until the earliest, and hands due calls to a small pool of
runner tasks; so thousands of sleeping activities cost a heap entry each, not a task and a
timer each. A runner makes exactly one call and is free again: the call has a deadline of
its own, well inside the interval, so one hung request cannot hold a runner (or its task)
until SWF's timeout, and a retry goes back into the heap to wait for its moment instead of
sleeping in a runner. Due calls wait for a runner (and for the
:class:`~heartbeat_worker._budget.HeartbeatBudget`, when there is one) nearest heartbeat
deadline first.

A failed call is retried at most :data:`RETRIES` times, after a short jittered backoff and
never past the deadline; then the next beat waits for the regular interval, counted from the
first attempt. So an error that retrying does not cure (expired credentials, a denied
permission) costs at most ``1 + RETRIES`` calls per interval per activity, never a flood,
and the same warning is logged at most once per :data:`WARNING_PERIOD`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup
from structlog.typing import FilteringBoundLogger

from ._budget import HeartbeatBudget
from ._context import ActivityContext, StopReason
from ._heartbeat_status import HeartbeatStatus, LatenessHistogram
from ._repeated_warnings import WARNING_PERIOD, RepeatedWarnings
from ._swf import TaskClient, describe_error, is_task_closed

__all__ = [
    "DEFAULT_HEARTBEAT_FRACTION",
    "DEFAULT_INTERVAL_WITHOUT_TIMEOUT",
    "RETRIES",
    "WARNING_PERIOD",
    "HeartbeatScheduler",
    "Heartbeater",
    "call_timeout",
    "heartbeat_interval",
]

DEFAULT_HEARTBEAT_FRACTION = 1 / 3
"""Beat three times per heartbeat timeout. If one beat fails, its retries still have two
thirds of the timeout, and the next regular beat comes while a third is left; a larger
fraction leaves a single failure no room, a smaller one spends SWF's account-wide quota
(160 heartbeats per second) for little gain."""

DEFAULT_INTERVAL_WITHOUT_TIMEOUT = 30.0
"""A task whose heartbeat timeout is NONE still beats: the reply is the only way to hear
of a cancellation, so this bounds how late a cancel request is noticed."""

JITTER = 0.2
"""Each interval is shortened by up to this fraction at random, so activities started
together do not beat in lockstep, and no beat is ever later than planned."""

_FIRST_BEAT_MAX = 1.0
"""The first beat goes early, at most this long (or half the interval) after SWF started
the task: it confirms the task is alive, and a task that SWF has already cancelled or
timed out is stopped before it does much work. It is planned from the task's start, not
from when its heartbeater is added: the time spent in between (reading the poll reply,
looking up the timeouts) already counts against SWF's heartbeat timeout."""

_LOSS_MARGIN = 0.5
"""Seconds past the heartbeat timeout before the task is taken as timed out by SWF."""

RETRIES = 2
"""Retries of a failed beat before the next one waits for the regular interval. Two ride
out a throttled or dropped call; more would only multiply the calls an error that retrying
does not cure sends (it would be sent for every running activity)."""

_RETRY_FIRST_FRACTION = 1 / 20
_RETRY_MAX = 2.0
_RETRY_MAX_FRACTION = 0.1
"""The first retry waits about a twentieth of the interval, the next twice as long, at most
2 s or a tenth of the heartbeat timeout (all jittered): soon enough to land well before
SWF's deadline, spread enough that a throttled account is not hit again at once."""

_CALL_TIMEOUT_FRACTION = 0.5
_CALL_TIMEOUT_MIN = 1.0
_CALL_TIMEOUT_MAX = 10.0
"""One call is abandoned after half the interval, but not before 1 s, nor after 10 s. A
heartbeat is answered in milliseconds, so a call that takes 10 s is hung, and a fresh
attempt on another connection still has most of the heartbeat timeout to land in. The
1 s floor is for a starved process: beside other busy processes on two cores, healthy
calls were measured taking up to half a second from send to reply, and abandoning them
would lose beats that SWF received."""

_SHORTEST_CALL = 0.1
"""No retry is planned with less than this many seconds left before the deadline: the last
attempt goes at the deadline itself."""

_ADMISSION_RECHECK = 1.0
"""Seconds between checks of the budget's room while admission is closed, besides the
checks when an activity stops beating."""

_TICK = 0.01
"""Beats due within this many seconds go together, so that the scheduler wakes at most
about a hundred times a second however many activities beat."""

_BURST = 16
"""Under a budget, at most this many calls leave the queue per tick (more only for a budget
above 800 calls/s: two ticks' worth), and only for idle runners: a call is then sent
within milliseconds of the moment the budget counted it (a burst of a whole second's
budget would take tens of milliseconds of CPU to send, and its tail could reach the
service in the next second). With four per tick, a run on a busy machine never had all
of 8,000 activities running: too few calls left per turn of a slowed loop."""

_ACKNOWLEDGED: Final = 0
_FAILED: Final = 1
_GONE: Final = 2


def heartbeat_interval(
    heartbeat_timeout: float | None,
    fraction: float,
    without_timeout: float = DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
) -> float:
    if heartbeat_timeout is None:
        return without_timeout
    return heartbeat_timeout * fraction


def call_timeout(interval: float) -> float:
    """How long one heartbeat call may take before it is abandoned and tried afresh."""
    return min(max(interval * _CALL_TIMEOUT_FRACTION, _CALL_TIMEOUT_MIN), _CALL_TIMEOUT_MAX)


class Heartbeater:
    """The heartbeat state of one task; :meth:`HeartbeatScheduler.add` sets it going."""

    __slots__ = (
        "_call_scope",
        "_client",
        "_closes_at",
        "_context",
        "_cycle_started",
        "_log",
        "_on_stop",
        "_retries",
        "_task_token",
        "_timeout",
        "active",
        "beats_failed",
        "beats_sent",
        "interval",
        "last_acknowledged",
        "last_error",
        "planned_at",
    )

    def __init__(
        self,
        context: ActivityContext,
        client: TaskClient,
        task_token: str,
        *,
        interval: float,
        on_stop: Callable[[StopReason, str], None],
        log: FilteringBoundLogger,
    ) -> None:
        self._context = context
        self._client = client
        self._task_token = task_token
        self.interval = interval
        self._on_stop = on_stop
        self._log = log
        self._timeout = context.info.heartbeat_timeout
        self._closes_at: float | None = None
        self._call_scope: anyio.CancelScope | None = None
        self._cycle_started = 0.0
        self._retries = 0
        self.active = False
        self.beats_sent = 0
        """Heartbeats SWF acknowledged."""
        self.beats_failed = 0
        """Heartbeat calls that failed (each retry counts)."""
        self.last_acknowledged = 0.0
        self.planned_at = 0.0
        """When the next call is planned (anyio clock): lateness is measured against it."""
        self.last_error: Exception | None = None

    @property
    def heartbeat_timeout(self) -> float | None:
        return self._timeout

    def release(self) -> None:
        """Drop the stop callback once the task no longer runs.

        The callback is a method of the task execution, which holds this heartbeater: left
        in place, the pair is a reference cycle that only the garbage collector frees, and
        at hundreds of tasks a second its collections cost more than the rest of a task.
        """
        self._on_stop = _ignore_stop

    def deadline(self) -> float:
        """When SWF takes the task as timed out, unless a beat is acknowledged first."""
        if self._timeout is None:
            return math.inf
        return self.last_acknowledged + self._timeout + _LOSS_MARGIN

    def retry_delay(self) -> float:
        """The jittered pause before retry number ``self._retries`` (1, 2...)."""
        ceiling = self.interval * _RETRY_FIRST_FRACTION * 2 ** (self._retries - 1)
        limit = _RETRY_MAX if self._timeout is None else self._timeout * _RETRY_MAX_FRACTION
        ceiling = min(ceiling, limit, _RETRY_MAX)
        return random.uniform(ceiling / 2, ceiling)

    async def _record(self) -> dict[str, Any]:
        details = self._context.details_json
        if details is None:
            reply = await self._client.record_activity_task_heartbeat(taskToken=self._task_token)
        else:
            reply = await self._client.record_activity_task_heartbeat(
                taskToken=self._task_token, details=details
            )
        return dict(reply)

    async def attempt(self, time_limit: float) -> int:
        """One heartbeat call, abandoned after ``time_limit`` seconds.

        Returns ``_ACKNOWLEDGED``, ``_FAILED`` (the error is in :attr:`last_error`) or
        ``_GONE`` once the task is known to be gone (the stop callback has been told why).

        The task is given up only on evidence: SWF's ``UnknownResourceFault``, or a call
        that failed with the deadline passed. A beat that comes due after the deadline is
        still sent: this process's clock says the deadline passed, but if the process was
        starved of CPU (or its loop blocked), its beats were late without any having
        failed, and SWF, whose answer settles it, may well still hold the task.
        """
        now = anyio.current_time()
        if self._closes_at is not None and now > self._closes_at + _LOSS_MARGIN:
            self._on_stop(StopReason.TASK_LOST, "start-to-close timeout has passed")
            return _GONE
        try:
            with anyio.fail_after(time_limit):
                reply = await self._record()
        except Exception as error:
            if is_task_closed(error):
                self._on_stop(StopReason.TASK_LOST, "SWF no longer knows the task")
                return _GONE
            self.beats_failed += 1
            if isinstance(error, TimeoutError):
                error = TimeoutError(f"no answer within {time_limit:.3g} s; call abandoned")
            self.last_error = error
            if anyio.current_time() >= self.deadline():
                self._on_stop(
                    StopReason.TASK_LOST, "no heartbeat acknowledged within the heartbeat timeout"
                )
                return _GONE
            return _FAILED
        self.beats_sent += 1
        if self.beats_sent == 1:
            # Outliving the first beat (at most a second in) marks a long task: say at INFO
            # that it runs. Short tasks, most of them, log only their answer.
            self._log.info("task running", heartbeat_interval=round(self.interval, 3))
        self.last_acknowledged = now
        self.last_error = None
        if reply.get("cancelRequested"):
            self._on_stop(StopReason.CANCEL_REQUESTED, "SWF requested cancellation")
        return _ACKNOWLEDGED


class HeartbeatScheduler:
    """Beats for every heartbeater added, until it is removed or finds its task gone.

    Run :meth:`run` in a task for as long as heartbeaters may be added; it makes up to
    ``max_in_flight`` calls at a time, each the one whose heartbeat deadline is nearest.
    """

    def __init__(self, *, budget: HeartbeatBudget | None = None, max_in_flight: int = 64) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.budget = budget
        self.max_in_flight = max_in_flight
        self._burst = _BURST if budget is None else max(_BURST, math.ceil(budget.rate * _TICK * 2))
        self.warnings = RepeatedWarnings()
        self.lateness = LatenessHistogram()
        """How late each call left against its plan."""
        self.calls = 0
        self.failed = 0
        self._reserved = 0
        self._room: anyio.Event | None = None
        self._due: list[tuple[float, int, Heartbeater]] = []
        self._ready: list[tuple[float, int, Heartbeater]] = []
        self._sequence = itertools.count()
        self._send, self._receive = anyio.create_memory_object_stream[Heartbeater](math.inf)
        self._runners: TaskGroup | None = None
        self._runner_count = 0
        self._in_flight = 0
        self._wake = anyio.Event()
        self._sleeping_until = math.inf
        self.running = 0

    # -- membership ------------------------------------------------------------------------

    def add(self, heartbeater: Heartbeater, *, started_at: float | None = None) -> None:
        """Start beating for ``heartbeater``: first soon, then at its interval.

        ``started_at`` (``anyio.current_time()``; default now) is when the poll brought the
        task: SWF's heartbeat and start-to-close clocks run from about then.
        """
        now = anyio.current_time()
        start = now if started_at is None else min(started_at, now)
        start_to_close = heartbeater._context.info.start_to_close_timeout
        heartbeater.active = True
        heartbeater.last_acknowledged = start
        heartbeater._closes_at = None if start_to_close is None else start + start_to_close
        self.running += 1
        if self.budget is not None:
            self.budget.join(heartbeater.heartbeat_timeout)
        early = min(_FIRST_BEAT_MAX, heartbeater.interval / 2)
        self._plan(heartbeater, max(now, start + random.uniform(0.5, 1.0) * early))

    def remove(self, heartbeater: Heartbeater) -> None:
        """Stop beating for ``heartbeater``, cancelling a call in flight."""
        if not heartbeater.active:
            return
        heartbeater.active = False
        self.running -= 1
        if self.budget is not None:
            self.budget.leave(heartbeater.heartbeat_timeout)
            self._room_may_have_changed()
        scope = heartbeater._call_scope
        if scope is not None:
            scope.cancel()

    def _plan(self, heartbeater: Heartbeater, at: float) -> None:
        heartbeater.planned_at = at
        heapq.heappush(self._due, (at, next(self._sequence), heartbeater))
        if at < self._sleeping_until:
            self._wake.set()

    def _next_interval(self, heartbeater: Heartbeater) -> float:
        if self.budget is None:
            return heartbeater.interval * (1 - random.uniform(0, JITTER))
        plan = self.budget.plan(heartbeater.interval, heartbeater.heartbeat_timeout)
        if not plan.jitter:
            return plan.interval  # near the ceiling: every second of the timeout counts
        return plan.interval * (1 - random.uniform(0, JITTER))

    # -- admission -------------------------------------------------------------------------

    async def admit(self, tasks: Callable[[], int] = lambda: 0) -> None:
        """Wait until the budget has room for one more activity, and reserve it: call
        :meth:`admitted` once the poll that may bring it has returned. Without a budget,
        returns at once.

        ``tasks()`` counts the tasks the caller runs: those not yet beating (still being
        prepared) are counted as coming, like the polls in flight.
        """
        budget = self.budget
        if budget is None:
            return
        while not budget.has_room(anyio.current_time(), self._coming(tasks())):
            if self._room is None:
                self._room = anyio.Event()
            # A task that ends before it beats changes nothing the scheduler sees: look
            # again now and then.
            with anyio.move_on_after(_ADMISSION_RECHECK):
                await self._room.wait()
        self._reserved += 1

    def _coming(self, tasks: int) -> int:
        return self._reserved + max(0, tasks - self.running)

    def admitted(self) -> None:
        """The poll that :meth:`admit` reserved room for has returned (its task, if any,
        has joined the budget by the time it runs)."""
        if self.budget is not None:
            self._reserved -= 1
            self._room_may_have_changed()

    def _room_may_have_changed(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    def status(self) -> HeartbeatStatus:
        budget = self.budget
        waiting = len(self._ready) if budget is None else budget.queued
        return HeartbeatStatus(
            running=self.running,
            calls=self.calls,
            failed=self.failed,
            in_flight=self._in_flight,
            waiting=waiting,
            lateness=self.lateness.summary(),
            lateness_counts=self.lateness.snapshot(),
            budget_per_second=None if budget is None else budget.rate,
            needed_per_second=0.0 if budget is None else budget.needed_rate,
            admission_per_second=(
                None if budget is None or not budget.admission else budget.admission_rate
            ),
            admitting=budget is None or budget.fits(self._reserved),  # polls in flight
            admission_closures=0 if budget is None else budget.admission_closed_count,
        )

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as runners:
            self._runners = runners
            try:
                await self._schedule()
            finally:
                self._runners = None
                runners.cancel_scope.cancel()

    async def _schedule(self) -> None:
        due, ready, budget = self._due, self._ready, self.budget
        while True:
            now = anyio.current_time()
            horizon = now + _TICK
            while due and due[0][0] <= horizon:
                _, sequence, heartbeater = heapq.heappop(due)
                if not heartbeater.active:
                    continue
                if budget is None:
                    heapq.heappush(ready, (heartbeater.deadline(), sequence, heartbeater))
                else:
                    budget.offer(heartbeater.deadline(), heartbeater)
            wake_at = due[0][0] if due else math.inf
            if budget is None:
                while ready and self._in_flight < self.max_in_flight:
                    heartbeater = heapq.heappop(ready)[2]
                    if heartbeater.active:
                        self._dispatch(heartbeater, now)
            else:
                for _ in range(self._burst):
                    if self._in_flight >= self.max_in_flight:
                        break
                    taken = budget.take(now, _is_active)
                    if taken is None:
                        break
                    self._dispatch(taken, now)
                if budget.queued and self._in_flight < self.max_in_flight:
                    wake_at = min(wake_at, now + max(budget.wait_time(now), _TICK))
            # With every runner busy, a runner that finishes wakes the loop.
            self._sleeping_until = wake_at
            if wake_at > now:
                with anyio.move_on_after(wake_at - now):
                    await self._wake.wait()
                self._wake = anyio.Event()
            self._sleeping_until = math.inf

    def _dispatch(self, heartbeater: Heartbeater, now: float) -> None:
        """Hand a due call to an idle runner (the stream wakes exactly one), starting
        another runner when none is idle, up to ``max_in_flight``."""
        if heartbeater._retries == 0:
            heartbeater._cycle_started = now
        self.lateness.record(now - heartbeater.planned_at)
        self.calls += 1
        idle = self._receive.statistics().tasks_waiting_receive
        self._in_flight += 1
        self._send.send_nowait(heartbeater)
        if idle == 0 and self._runner_count < self.max_in_flight and self._runners is not None:
            self._runner_count += 1
            self._runners.start_soon(self._runner)

    def _waiting(self) -> bool:
        return bool(self._ready) or (self.budget is not None and self.budget.queued > 0)

    async def _runner(self) -> None:
        async for heartbeater in self._receive:
            try:
                if heartbeater.active:
                    await self._beat(heartbeater)
            finally:
                self._in_flight -= 1
                if self._waiting():
                    self._wake.set()

    async def _beat(self, heartbeater: Heartbeater) -> None:
        result = _GONE
        with anyio.CancelScope() as scope:
            heartbeater._call_scope = scope
            try:
                result = await heartbeater.attempt(call_timeout(heartbeater.interval))
            finally:
                heartbeater._call_scope = None
        if not heartbeater.active:
            return
        if result == _ACKNOWLEDGED:
            heartbeater._retries = 0
            self._plan(
                heartbeater, heartbeater.last_acknowledged + self._next_interval(heartbeater)
            )
        elif result == _FAILED:
            self.failed += 1
            if self.budget is not None and isinstance(heartbeater.last_error, TimeoutError):
                # An abandoned call may still reach the service: count it once more, now,
                # so that its retry does not join it there within the same second.
                self.budget.count_call(anyio.current_time())
            self._plan(heartbeater, self._after_failure(heartbeater))
        else:
            self.remove(heartbeater)

    def _after_failure(self, heartbeater: Heartbeater) -> float:
        """When to try again after a failed call: a bounded, jittered retry, else the next
        regular beat (one interval after the first attempt of this one), never later than
        the deadline, where the attempt finds the task lost."""
        now = anyio.current_time()
        deadline = heartbeater.deadline()
        if heartbeater._retries < RETRIES:
            heartbeater._retries += 1
            at = now + heartbeater.retry_delay()
            what = "retrying"
        else:
            heartbeater._retries = 0
            at = heartbeater._cycle_started + self._next_interval(heartbeater)
            if at > deadline:
                # The next regular beat would come too late: one last attempt that can
                # still land before SWF's deadline, if there is time for one.
                last_chance = deadline - _LOSS_MARGIN - call_timeout(heartbeater.interval)
                if last_chance > now:
                    at = last_chance
            what = "next beat"
        if at > deadline - _SHORTEST_CALL:
            at = deadline  # the last attempt: SWF's answer, or its failure, settles it
        error = heartbeater.last_error
        self.warnings.warn(
            heartbeater._log,
            "heartbeat failed",
            "unknown error" if error is None else describe_error(error),
            then=what,
            retry_in=round(at - now, 3),
            acknowledged_ago=round(now - heartbeater.last_acknowledged, 3),
        )
        return at


def _ignore_stop(reason: StopReason, why: str) -> None:
    """The stop callback of a released heartbeater: its task has ended already."""


def _is_active(heartbeater: Heartbeater) -> bool:
    return heartbeater.active
