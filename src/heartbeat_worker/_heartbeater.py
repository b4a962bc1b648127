"""Background heartbeats: one scheduler per worker beats for every running activity.

Each activity's :class:`Heartbeater` keeps the task alive at a fraction of the heartbeat
timeout in force, carries the latest progress details the activity recorded, and is the
worker's only way of hearing that SWF wants the task cancelled (the heartbeat reply is
SWF's only channel for that). It also notices when the task is gone: SWF answers
``UnknownResourceFault``, or no heartbeat has been acknowledged for longer than the timeout,
or start-to-close has passed. In each case it reports a :class:`StopReason` and the task
execution decides what to do.

The heartbeaters own no task. One :class:`HeartbeatScheduler` keeps them in a heap by the
time of their next beat, sleeps until the earliest, and hands due beats to a small pool of
runner tasks that make the calls; so thousands of sleeping activities cost a heap entry
each, not a task and a timer each. With a :class:`~heartbeat_worker._budget.HeartbeatBudget`
the due beats wait in its queue, nearest heartbeat deadline first, and intervals stretch
to fit the budget.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from structlog.typing import FilteringBoundLogger

from ._budget import HeartbeatBudget
from ._context import ActivityContext, StopReason
from ._swf import Backoff, TaskClient, is_task_closed, retry_transient

__all__ = [
    "DEFAULT_HEARTBEAT_FRACTION",
    "DEFAULT_INTERVAL_WITHOUT_TIMEOUT",
    "HeartbeatScheduler",
    "Heartbeater",
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
"""The first beat goes early: it confirms the task is alive, and a task that SWF has
already cancelled or timed out is stopped before it does much work."""

_LOSS_MARGIN = 0.5
"""Seconds past the heartbeat timeout before the task is taken as timed out by SWF."""

_RETRY_MAX = 2.0
_RETRY_MAX_FRACTION = 0.1
"""A failed heartbeat is retried with exponential backoff up to 2 s between attempts, or a
tenth of the heartbeat timeout if that is less: after an outage, the next attempt must come
before SWF's deadline, and with a short timeout 2 s can overshoot it."""

_TICK = 0.01
"""Beats due within this many seconds go together, so that the scheduler wakes at most
about a hundred times a second however many activities beat."""

_BURST = 16
"""Under a budget, at most this many calls leave the queue per tick, and only for idle
runners: a call is then sent within milliseconds of the moment the budget counted it (a
burst of a whole second's budget would take tens of milliseconds of CPU to send, and its
tail could reach the service in the next second)."""


def heartbeat_interval(
    heartbeat_timeout: float | None,
    fraction: float,
    without_timeout: float = DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
) -> float:
    if heartbeat_timeout is None:
        return without_timeout
    return heartbeat_timeout * fraction


class Heartbeater:
    """The heartbeat state of one task; :meth:`HeartbeatScheduler.add` sets it going."""

    __slots__ = (
        "_call_scope",
        "_client",
        "_closes_at",
        "_context",
        "_log",
        "_on_stop",
        "_retry_max",
        "_task_token",
        "_timeout",
        "active",
        "beats_failed",
        "beats_sent",
        "interval",
        "last_acknowledged",
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
        self._retry_max = (
            _RETRY_MAX
            if self._timeout is None
            else min(_RETRY_MAX, self._timeout * _RETRY_MAX_FRACTION)
        )
        self._closes_at: float | None = None
        self._call_scope: anyio.CancelScope | None = None
        self.active = False
        self.beats_sent = 0
        self.beats_failed = 0
        self.last_acknowledged = 0.0
        self.planned_at = 0.0
        """When the next beat is planned (anyio clock): lateness is measured against it."""

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

    async def _record(self) -> dict[str, Any]:
        details = self._context.details_json
        if details is None:
            reply = await self._client.record_activity_task_heartbeat(taskToken=self._task_token)
        else:
            reply = await self._client.record_activity_task_heartbeat(
                taskToken=self._task_token, details=details
            )
        return dict(reply)

    async def beat(self) -> bool:
        """One heartbeat with its retries. Returns False once the task is known to be gone."""
        now = anyio.current_time()
        if self._closes_at is not None and now > self._closes_at + _LOSS_MARGIN:
            self._on_stop(StopReason.TASK_LOST, "start-to-close timeout has passed")
            return False
        deadline = None if self._timeout is None else self.deadline()
        try:
            if deadline is not None and now >= deadline:
                raise TimeoutError("RecordActivityTaskHeartbeat: waited past the deadline")
            reply = await retry_transient(
                self._record,
                deadline=deadline,
                backoff=Backoff(initial=0.05, maximum=self._retry_max),
                what="RecordActivityTaskHeartbeat",
            )
        except Exception as error:
            if is_task_closed(error):
                self._on_stop(StopReason.TASK_LOST, "SWF no longer knows the task")
                return False
            self.beats_failed += 1
            if deadline is not None and anyio.current_time() >= deadline:
                self._on_stop(
                    StopReason.TASK_LOST, "no heartbeat acknowledged within the heartbeat timeout"
                )
                return False
            # A heartbeat timeout of NONE, or an error that is not the task's end: keep
            # trying at the regular pace.
            self._log.warning("heartbeat failed", error=repr(error))
            return True
        self.beats_sent += 1
        self.last_acknowledged = now
        if reply.get("cancelRequested"):
            self._on_stop(StopReason.CANCEL_REQUESTED, "SWF requested cancellation")
        return True


class HeartbeatScheduler:
    """Beats for every heartbeater added, until it is removed or finds its task gone.

    Run :meth:`run` in a task for as long as heartbeaters may be added; it makes up to
    ``max_in_flight`` calls at a time.
    """

    def __init__(self, *, budget: HeartbeatBudget | None = None, max_in_flight: int = 64) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.budget = budget
        self.max_in_flight = max_in_flight
        self._due: list[tuple[float, int, Heartbeater]] = []
        self._sequence = itertools.count()
        self._send, self._receive = anyio.create_memory_object_stream[Heartbeater](math.inf)
        self._runners: TaskGroup | None = None
        self._runner_count = 0
        self._in_flight = 0
        self._wake = anyio.Event()
        self._sleeping_until = math.inf
        self.running = 0

    # -- membership ------------------------------------------------------------------------

    def add(self, heartbeater: Heartbeater) -> None:
        """Start beating for ``heartbeater``: first soon, then at its interval."""
        now = anyio.current_time()
        start_to_close = heartbeater._context.info.start_to_close_timeout
        heartbeater.active = True
        heartbeater.last_acknowledged = now
        heartbeater._closes_at = None if start_to_close is None else now + start_to_close
        self.running += 1
        if self.budget is not None:
            self.budget.join(heartbeater.heartbeat_timeout)
        first = now + random.uniform(0.5, 1.0) * min(_FIRST_BEAT_MAX, heartbeater.interval)
        self._plan(heartbeater, first)

    def remove(self, heartbeater: Heartbeater) -> None:
        """Stop beating for ``heartbeater``, cancelling a call in flight."""
        if not heartbeater.active:
            return
        heartbeater.active = False
        self.running -= 1
        if self.budget is not None:
            self.budget.leave(heartbeater.heartbeat_timeout)
        scope = heartbeater._call_scope
        if scope is not None:
            scope.cancel()

    def _plan(self, heartbeater: Heartbeater, at: float) -> None:
        heartbeater.planned_at = at
        heapq.heappush(self._due, (at, next(self._sequence), heartbeater))
        if at < self._sleeping_until:
            self._wake.set()

    def _next_interval(self, heartbeater: Heartbeater) -> float:
        interval = heartbeater.interval
        if self.budget is not None:
            interval = self.budget.interval(interval, heartbeater.heartbeat_timeout)
        return interval * (1 - random.uniform(0, JITTER))

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
        due, budget = self._due, self.budget
        while True:
            now = anyio.current_time()
            horizon = now + _TICK
            while due and due[0][0] <= horizon:
                heartbeater = heapq.heappop(due)[2]
                if not heartbeater.active:
                    continue
                if budget is None:
                    self._dispatch(heartbeater)
                else:
                    budget.offer(heartbeater.deadline(), heartbeater)
            wake_at = due[0][0] if due else math.inf
            if budget is not None:
                for _ in range(_BURST):
                    if self._in_flight >= self.max_in_flight:
                        break
                    taken = budget.take(now, _is_active)
                    if taken is None:
                        break
                    self._dispatch(taken)
                if budget.queued:
                    wake_at = min(wake_at, now + max(budget.wait_time(now), _TICK))
            self._sleeping_until = wake_at
            if wake_at > now:
                with anyio.move_on_after(wake_at - now):
                    await self._wake.wait()
                self._wake = anyio.Event()
            self._sleeping_until = math.inf

    def _dispatch(self, heartbeater: Heartbeater) -> None:
        """Hand a due beat to an idle runner (the stream wakes exactly one), starting
        another runner when none is idle, up to ``max_in_flight``."""
        idle = self._receive.statistics().tasks_waiting_receive
        self._in_flight += 1
        self._send.send_nowait(heartbeater)
        if idle == 0 and self._runner_count < self.max_in_flight and self._runners is not None:
            self._runner_count += 1
            self._runners.start_soon(self._runner)

    async def _runner(self) -> None:
        async for heartbeater in self._receive:
            try:
                if heartbeater.active:
                    await self._beat(heartbeater)
            finally:
                self._in_flight -= 1

    async def _beat(self, heartbeater: Heartbeater) -> None:
        keep = False
        with anyio.CancelScope() as scope:
            heartbeater._call_scope = scope
            try:
                keep = await heartbeater.beat()
            finally:
                heartbeater._call_scope = None
        if not heartbeater.active:
            return
        if keep:
            self._plan(
                heartbeater, heartbeater.last_acknowledged + self._next_interval(heartbeater)
            )
        else:
            self.remove(heartbeater)


def _ignore_stop(reason: StopReason, why: str) -> None:
    """The stop callback of a released heartbeater: its task has ended already."""


def _is_active(heartbeater: Heartbeater) -> bool:
    return heartbeater.active
