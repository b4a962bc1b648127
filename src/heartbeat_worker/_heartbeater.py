"""The background heartbeater that runs beside every activity.

It keeps the task alive at a fraction of the heartbeat timeout in force, carries the latest
progress details the activity recorded, and is the worker's only way of hearing that SWF
wants the task cancelled (the heartbeat reply is SWF's only channel for that). It also
notices when the task is gone: SWF answers ``UnknownResourceFault``, or no heartbeat has
been acknowledged for longer than the timeout, or start-to-close has passed. In each case
it reports a :class:`StopReason` and the task execution decides what to do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
from structlog.typing import FilteringBoundLogger

from ._budget import HeartbeatBudget
from ._context import ActivityContext, StopReason
from ._swf import Backoff, TaskClient, is_task_closed, retry_transient

__all__ = ["DEFAULT_HEARTBEAT_FRACTION", "Heartbeater", "heartbeat_interval"]

DEFAULT_HEARTBEAT_FRACTION = 1 / 3
"""Beat three times per heartbeat timeout. If one beat fails, its retries still have two
thirds of the timeout, and the next regular beat comes while a third is left; a larger
fraction leaves a single failure no room, a smaller one spends SWF's account-wide quota
(160 heartbeats per second) for little gain."""

DEFAULT_INTERVAL_WITHOUT_TIMEOUT = 30.0
"""A task whose heartbeat timeout is NONE still beats: the reply is the only way to hear
of a cancellation, so this bounds how late a cancel request is noticed."""

_JITTER = 0.2
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


def heartbeat_interval(
    heartbeat_timeout: float | None,
    fraction: float,
    without_timeout: float = DEFAULT_INTERVAL_WITHOUT_TIMEOUT,
) -> float:
    if heartbeat_timeout is None:
        return without_timeout
    return heartbeat_timeout * fraction


class Heartbeater:
    """Heartbeats for one task until cancelled or until it finds the task gone."""

    def __init__(
        self,
        context: ActivityContext,
        client: TaskClient,
        task_token: str,
        *,
        interval: float,
        on_stop: Callable[[StopReason, str], None],
        log: FilteringBoundLogger,
        budget: HeartbeatBudget | None = None,
    ) -> None:
        self._context = context
        self._client = client
        self._task_token = task_token
        self._interval = interval
        self._on_stop = on_stop
        self._log = log
        self._budget = budget
        self._timeout = context.info.heartbeat_timeout
        self._retry_max = (
            _RETRY_MAX
            if self._timeout is None
            else min(_RETRY_MAX, self._timeout * _RETRY_MAX_FRACTION)
        )
        self.beats_sent = 0
        self.beats_failed = 0
        self.last_acknowledged = anyio.current_time()

    async def run(self) -> None:
        start_to_close = self._context.info.start_to_close_timeout
        closes_at = None if start_to_close is None else anyio.current_time() + start_to_close
        next_beat = anyio.current_time() + random.uniform(0.5, 1.0) * min(
            _FIRST_BEAT_MAX, self._interval
        )
        if self._budget is not None:
            self._budget.join()
        try:
            while True:
                await anyio.sleep_until(next_beat)
                if closes_at is not None and anyio.current_time() > closes_at + _LOSS_MARGIN:
                    self._on_stop(StopReason.TASK_LOST, "start-to-close timeout has passed")
                    return
                if not await self._beat():
                    return
                interval = self._interval
                if self._budget is not None:
                    interval = self._budget.interval(interval, self._timeout)
                next_beat = self.last_acknowledged + interval * (1 - random.uniform(0, _JITTER))
        finally:
            if self._budget is not None:
                self._budget.leave()

    async def _beat(self) -> bool:
        """One heartbeat with its retries. Returns False once the task is known to be gone."""
        deadline = (
            None if self._timeout is None else self.last_acknowledged + self._timeout + _LOSS_MARGIN
        )
        sent_at = anyio.current_time()
        try:
            if self._budget is not None:
                with anyio.fail_after(None if deadline is None else deadline - sent_at):
                    await self._budget.acquire(deadline or float("inf"))
            sent_at = anyio.current_time()
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
            # A heartbeat timeout of NONE: keep trying at the regular pace.
            self._log.warning("heartbeat failed", error=repr(error))
            return True
        self.beats_sent += 1
        self.last_acknowledged = sent_at
        if reply.get("cancelRequested"):
            self._on_stop(StopReason.CANCEL_REQUESTED, "SWF requested cancellation")
        return True

    async def _record(self) -> dict[str, Any]:
        details = self._context.details_json
        if details is None:
            reply = await self._client.record_activity_task_heartbeat(taskToken=self._task_token)
        else:
            reply = await self._client.record_activity_task_heartbeat(
                taskToken=self._task_token, details=details
            )
        return dict(reply)
