"""An account-wide heartbeat budget.

SWF meters ``RecordActivityTaskHeartbeat`` per account and region with a token bucket
(2,000 calls of burst, refilled at 160 per second). A worker that beats every running
activity at its nominal interval can exceed that on its own, and then every call,
including the ones that would have saved a task about to time out, is throttled.

The budget does three things:

*plan*
    :meth:`HeartbeatBudget.interval` stretches intervals so that the running activities
    together plan to use :data:`PLANNED_SHARE` of the budget, but never beyond
    :data:`LATEST_SAFE_FRACTION` of an activity's heartbeat timeout;
*warn*
    :meth:`~HeartbeatBudget.join` logs a warning, with the numbers, when the budget cannot
    give every running activity a beat within :data:`WARN_FRACTION` of its heartbeat
    timeout, even served in turn: some activities will time out;
*limit and order*
    calls wait in a queue that serves the nearest heartbeat deadline first, and leave it
    only while the last ``⌊rate⌋`` calls took more than a window of one second (plus
    :data:`ARRIVAL_SPREAD`): so no second, as the service counts them, ever sees more calls
    than the budget. When the planned beats need a little more than that, they wait in
    the queue, which stretches their intervals further, up to the deadline.

The class is plain data and arithmetic: the caller passes the current time, which keeps it
deterministic and testable. :class:`~heartbeat_worker._heartbeater.HeartbeatScheduler`
drives it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from ._logging import get_logger

__all__ = [
    "ARRIVAL_SPREAD",
    "LATEST_SAFE_FRACTION",
    "PLANNED_SHARE",
    "WARN_FRACTION",
    "HeartbeatBudget",
]

LATEST_SAFE_FRACTION = 0.75
"""A stretched interval stays below this fraction of the heartbeat timeout, leaving a
quarter of it for one failed call and its retry."""

PLANNED_SHARE = 0.9
"""Intervals are planned for this share of the budget; the rest absorbs the first beats of
newly started activities and retries, so that the queue rarely holds anything."""

WARN_FRACTION = 0.9
"""The warning comes when, served strictly in turn at the budget's rate, an activity would
wait longer than this fraction of its heartbeat timeout between beats."""

ARRIVAL_SPREAD = 0.05
"""Seconds added to the limiter's one-second window. Calls sent in a burst do not reach
the service at the instants they were sent; the margin keeps a burst that spans the edge
of a second from counting twice there."""


class HeartbeatBudget:
    """At most ``rate`` heartbeat calls per second, nearest deadline first.

    What waits in the queue is the caller's business (the scheduler queues heartbeaters).
    """

    def __init__(self, rate: float, *, jitter: float = 0.2) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError("the heartbeat budget must be a positive number of calls per second")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be a fraction between 0 and 1")
        self.rate = float(rate)
        # At most floor(rate) calls in any second; below one per second, one per 1/rate s.
        self.capacity = max(1, math.floor(self.rate))
        """Calls allowed within one :attr:`window`."""
        self.window = (1.0 if self.rate >= 1 else 1 / self.rate) + ARRIVAL_SPREAD
        self.jitter = jitter
        self._sent: deque[float] = deque(maxlen=self.capacity)
        self._queue: list[tuple[float, int, Any]] = []
        self._sequence = itertools.count()
        self.members = 0
        self.minimum_rate = 0.0
        """Calls per second needed to give every member a beat within
        :data:`WARN_FRACTION` of its heartbeat timeout."""
        self._warned_rate = 0.0
        self._log = get_logger()

    @property
    def sustained_rate(self) -> float:
        """The most calls per second the limiter lets through over time."""
        return self.capacity / self.window

    # -- planning --------------------------------------------------------------------------

    def _safe_interval(self, heartbeat_timeout: float) -> float:
        return heartbeat_timeout * LATEST_SAFE_FRACTION

    def join(self, heartbeat_timeout: float | None) -> None:
        """An activity starts heartbeating; warn if the budget cannot keep all alive."""
        self.members += 1
        if heartbeat_timeout is not None:
            self.minimum_rate += 1 / (heartbeat_timeout * WARN_FRACTION)
        self._check()

    def leave(self, heartbeat_timeout: float | None) -> None:
        self.members -= 1
        if heartbeat_timeout is not None:
            self.minimum_rate -= 1 / (heartbeat_timeout * WARN_FRACTION)
        if self.members == 0:
            self.minimum_rate = 0.0  # no drift from float sums
        if self.minimum_rate <= self.sustained_rate:
            self._warned_rate = 0.0

    @property
    def _mean_factor(self) -> float:
        """A jittered interval is on average this much shorter than planned, which makes
        the rate that much higher."""
        return 1 / (1 - self.jitter / 2)

    def _check(self) -> None:
        needed = self.minimum_rate
        if needed <= self.sustained_rate or needed < self._warned_rate * 1.5:
            return
        self._warned_rate = needed
        self._log.warning(
            "heartbeat budget too small to keep every activity alive; the activities whose "
            "heartbeat deadline is nearest are served first, others may time out",
            running_activities=self.members,
            budget_per_second=self.rate,
            sustained_per_second=round(self.sustained_rate, 1),
            needed_per_second=round(needed, 1),
        )

    def interval(self, nominal: float, heartbeat_timeout: float | None) -> float:
        """The interval to plan now for one member: ``nominal``, or longer if the running
        activities would otherwise exceed the planned share of the budget; at most the
        latest safe interval of ``heartbeat_timeout``. The caller shortens it by up to
        ``jitter`` at random, which this accounts for."""
        fair = self.members / (self.rate * PLANNED_SHARE) * self._mean_factor
        if fair <= nominal:
            return nominal
        if heartbeat_timeout is None:
            return fair
        return max(nominal, min(fair, self._safe_interval(heartbeat_timeout)))

    # -- limiting and ordering -------------------------------------------------------------

    def offer(self, deadline: float, item: Any) -> None:
        """Queue a call whose heartbeat deadline is ``deadline`` (``inf``: none)."""
        heapq.heappush(self._queue, (deadline, next(self._sequence), item))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def wait_time(self, now: float) -> float:
        """Seconds until the limiter lets a call through (0: now)."""
        if len(self._sent) < self.capacity:
            return 0.0
        return max(0.0, self._sent[0] + self.window - now)

    def take(self, now: float, live: Callable[[Any], bool] = lambda item: True) -> Any:
        """The queued call with the nearest deadline, if the limiter lets one through now;
        calls that are no longer ``live`` are dropped without using the budget."""
        queue = self._queue
        while queue and not live(queue[0][2]):
            heapq.heappop(queue)
        if not queue or self.wait_time(now) > 0:
            return None
        self._sent.append(now)
        return heapq.heappop(queue)[2]
