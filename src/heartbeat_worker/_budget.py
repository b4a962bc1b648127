"""An account-wide heartbeat budget.

SWF meters ``RecordActivityTaskHeartbeat`` per account and region with a token bucket
(2,000 calls of burst, refilled at 160 per second). A worker that beats every running
activity at its nominal interval can exceed that on its own, and then every call,
including the ones that would have saved a task about to time out, is throttled.

The budget does two things. It *stretches* intervals, so that the planned rate fits
(running activities / interval <= rate), but never beyond a safety margin before each
activity's timeout. And it *orders* calls: when they must wait for the bucket, the one
whose heartbeat deadline is nearest goes first.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import anyio

from ._logging import get_logger

__all__ = ["HeartbeatBudget"]

_LATEST_SAFE_FRACTION = 0.75
"""A stretched interval stays below this fraction of the heartbeat timeout, leaving a
quarter of it for one failed call and its retry."""


@dataclass(order=True)
class _Waiter:
    deadline: float
    sequence: int
    wake: anyio.Event = field(compare=False, default_factory=anyio.Event)


class HeartbeatBudget:
    """A token bucket that serves the nearest deadline first."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("the heartbeat budget must be a positive number of calls per second")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._updated = anyio.current_time()
        self._waiters: list[_Waiter] = []
        self._sequence = itertools.count()
        self._members = 0
        self._warned_at_members = 0
        self._log = get_logger()

    # -- interval planning ---------------------------------------------------------------

    def join(self) -> None:
        self._members += 1

    def leave(self) -> None:
        self._members -= 1

    def interval(self, nominal: float, heartbeat_timeout: float | None) -> float:
        """The interval to use now: ``nominal``, stretched if the budget requires it."""
        fair_share = self._members / self.rate
        if fair_share <= nominal:
            return nominal
        if heartbeat_timeout is None:
            return fair_share
        latest_safe = heartbeat_timeout * _LATEST_SAFE_FRACTION
        if fair_share > latest_safe and self._members > self._warned_at_members:
            self._warned_at_members = self._members * 2  # warn again only if it doubles
            self._log.warning(
                "heartbeat budget too small to keep every activity alive",
                running_activities=self._members,
                budget_per_second=self.rate,
                needed_interval=round(fair_share, 3),
                heartbeat_timeout=heartbeat_timeout,
                needed_budget_per_second=round(self._members / latest_safe, 1),
            )
        return max(nominal, min(fair_share, latest_safe))

    # -- rate limiting -------------------------------------------------------------------

    def _refill(self) -> None:
        now = anyio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, deadline: float) -> None:
        """Wait for a call slot; among waiters, the earliest ``deadline`` goes first."""
        self._refill()
        if not self._waiters and self._tokens >= 1:
            self._tokens -= 1
            return
        waiter = _Waiter(deadline, next(self._sequence))
        heapq.heappush(self._waiters, waiter)
        try:
            while True:
                if self._waiters[0] is waiter:
                    self._refill()
                    if self._tokens >= 1:
                        self._tokens -= 1
                        heapq.heappop(self._waiters)
                        return
                    await anyio.sleep((1 - self._tokens) / self.rate)
                else:
                    await waiter.wake.wait()
                    waiter.wake = anyio.Event()
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                heapq.heapify(self._waiters)
            if self._waiters:
                self._waiters[0].wake.set()
