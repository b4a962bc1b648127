"""An account-wide heartbeat budget.

SWF meters ``RecordActivityTaskHeartbeat`` per account and region with a token bucket
(2,000 calls of burst, refilled at 160 per second). A worker that beats every running
activity at its nominal interval can exceed that on its own, and then every call,
including the ones that would have saved a task about to time out, is throttled.

The budget does four things:

*plan*
    :meth:`HeartbeatBudget.interval` stretches intervals so that the running activities
    together plan to use :data:`PLANNED_SHARE` of the budget. Up to
    :data:`LATEST_SAFE_FRACTION` of an activity's heartbeat timeout the interval is
    jittered as usual; beyond it, when the load demands it, the interval grows without
    jitter up to the ``ceiling`` fraction of the timeout (:data:`DEFAULT_CEILING`). What
    the ceiling leaves, ``(1 - ceiling) x timeout``, is the margin for a failed call and
    its retry: 3 s of a 60 s timeout at 0.95, 6 s at 0.9, 15 s at 0.75;
*admit*
    :meth:`~HeartbeatBudget.has_room` says whether one more activity (of the most
    demanding kind seen so far) still fits: every running activity beating once per
    ``ceiling x timeout`` within :data:`ADMISSION_SHARE` of the rate the limiter lets
    through. The worker stops polling while it does not, so that tasks it could not keep
    alive stay scheduled in SWF for another worker or a later moment; the budget logs once
    when admission closes and once when it reopens;
*warn*
    :meth:`~HeartbeatBudget.join` logs a warning, with the numbers, when the running
    activities need more than the budget even at the ceiling (admission turned off, or
    shorter timeouts than any seen before): some activities will time out;
*limit and order*
    calls, retries included, wait in a queue that serves the nearest heartbeat deadline
    first, and leave it only while the last ``⌊rate⌋`` calls took more than a window of one
    second (plus :data:`ARRIVAL_SPREAD`), and evenly paced: one per ``window / ⌊rate⌋``
    seconds, with :data:`PACING_TOLERANCE` of slack. So no second, as the service counts
    them, ever sees more calls than the budget, even when some calls reach it later than
    others.

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
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._logging import get_logger

__all__ = [
    "ACCOUNT_HEARTBEAT_RATE",
    "ADMISSION_LOG_PERIOD",
    "ADMISSION_SHARE",
    "ARRIVAL_SPREAD",
    "DEFAULT_CEILING",
    "LATEST_SAFE_FRACTION",
    "PACING_TOLERANCE",
    "PLANNED_SHARE",
    "HeartbeatBudget",
    "Plan",
    "parse_share",
]

ACCOUNT_HEARTBEAT_RATE = 160.0
"""SWF's refill rate of ``RecordActivityTaskHeartbeat`` per account and region (calls/s)."""

LATEST_SAFE_FRACTION = 0.75
"""Up to this fraction of the heartbeat timeout, stretched intervals keep their jitter; a
quarter of the timeout is then left for a failed call and its retries."""

DEFAULT_CEILING = 0.95
"""Beyond :data:`LATEST_SAFE_FRACTION`, intervals may stretch, unjittered, up to this
fraction of the heartbeat timeout. 0.95 keeps 8,000 activities with a 60 s timeout alive on
160 calls/s with 3 s to spare for each beat; lower it for more margin and fewer activities
(admission closes sooner), see the README's table."""

PLANNED_SHARE = 0.9
"""Intervals are planned for this share of the budget; the rest absorbs the first beats of
newly started activities and retries, so that the queue rarely holds anything."""

ADMISSION_SHARE = 0.95
"""Admission closes when the running activities, each beating once per ``ceiling x
timeout``, would need more than this share of the rate the limiter lets through: the
rest is for first beats and retries."""

ADMISSION_LOG_PERIOD = 10.0
"""Seconds after admission reopens during which a new closing is counted, not logged."""

ARRIVAL_SPREAD = 0.05
"""Seconds added to the limiter's one-second window. Calls sent in a burst do not reach
the service at the instants they were sent; the margin keeps a burst that spans the edge
of a second from counting twice there."""

PACING_TOLERANCE = 0.02
"""Seconds a call may leave ahead of its even pace (two of the scheduler's ticks). Without
pacing, the window alone let a whole second's calls leave in one burst; a burst that
reached the service a little late then landed in the next second beside that second's own
burst, and the service counted up to a burst more than the budget (176 calls in a second
on a budget of 160). Paced, a call that arrives late shifts the count of a second by one,
not by a burst."""


def parse_share(text: str) -> float:
    """``"1/4"``, ``"0.25"`` or ``"25%"`` as a fraction in (0, 1]; ValueError otherwise."""
    value = text.strip()
    try:
        share = float(value[:-1]) / 100 if value.endswith("%") else float(Fraction(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"expected a fraction such as 1/4, 0.25 or 25%, got {text!r}") from None
    if not 0 < share <= 1:
        raise ValueError(f"the share must be more than 0 and at most 1, got {text!r}")
    return share


@dataclass(frozen=True, slots=True)
class Plan:
    """The interval to plan for one member, and whether to jitter it."""

    interval: float
    jitter: bool


class HeartbeatBudget:
    """At most ``rate`` heartbeat calls per second, nearest deadline first.

    What waits in the queue is the caller's business (the scheduler queues heartbeaters).
    """

    def __init__(
        self,
        rate: float,
        *,
        jitter: float = 0.2,
        ceiling: float = DEFAULT_CEILING,
        admission: bool = True,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError("the heartbeat budget must be a positive number of calls per second")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be a fraction between 0 and 1")
        if not LATEST_SAFE_FRACTION <= ceiling <= 1:
            raise ValueError(f"the ceiling must be between {LATEST_SAFE_FRACTION} and 1")
        self.rate = float(rate)
        # At most floor(rate) calls in any second; below one per second, one per 1/rate s.
        self.capacity = max(1, math.floor(self.rate))
        """Calls allowed within one :attr:`window`."""
        self.window = (1.0 if self.rate >= 1 else 1 / self.rate) + ARRIVAL_SPREAD
        self.spacing = self.window / self.capacity
        """Seconds between calls at the sustained rate: the limiter's even pace."""
        self._paced_until = -math.inf
        self.jitter = jitter
        self.ceiling = ceiling
        self.admission = admission
        """Whether :meth:`has_room` may refuse (False: always room, as without admission)."""
        self._sent: deque[float] = deque(maxlen=self.capacity)
        self._queue: list[tuple[float, int, Any]] = []
        self._sequence = itertools.count()
        self.members = 0
        self.needed_rate = 0.0
        """Calls per second that keep every member alive at the ceiling: the sum of
        ``1 / (ceiling x timeout)``."""
        self.largest_need = 0.0
        """The need of the most demanding member seen so far: what admission reserves for
        the next task, whose timeout is unknown until it is polled."""
        self._joined_once = False
        self.admission_open = True
        """False from a closing until the next reopening (see :meth:`has_room`)."""
        self.admission_closed_count = 0
        self._closed_at = 0.0
        self._reopened_at = -math.inf
        self._close_logged = False
        self._closings_unlogged = 0
        self._warned_rate = 0.0
        self._log = get_logger()

    @property
    def sustained_rate(self) -> float:
        """The most calls per second the limiter lets through over time."""
        return self.capacity / self.window

    @property
    def admission_rate(self) -> float:
        """What the members may need at most for admission to stay open."""
        return self.sustained_rate * ADMISSION_SHARE

    # -- planning --------------------------------------------------------------------------

    def _need(self, heartbeat_timeout: float | None) -> float:
        # An activity without a heartbeat timeout can wait any time for its beat.
        return 0.0 if heartbeat_timeout is None else 1 / (heartbeat_timeout * self.ceiling)

    def join(self, heartbeat_timeout: float | None) -> None:
        """An activity starts heartbeating; warn if the budget cannot keep all alive."""
        self.members += 1
        self._joined_once = True
        need = self._need(heartbeat_timeout)
        self.needed_rate += need
        self.largest_need = max(self.largest_need, need)
        self._check()

    def leave(self, heartbeat_timeout: float | None) -> None:
        self.members -= 1
        self.needed_rate -= self._need(heartbeat_timeout)
        if self.members == 0:
            self.needed_rate = 0.0  # no drift from float sums
        if self.needed_rate <= self.sustained_rate:
            self._warned_rate = 0.0

    def _check(self) -> None:
        needed = self.needed_rate
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
            ceiling=self.ceiling,
        )

    @property
    def _mean_factor(self) -> float:
        """A jittered interval is on average this much shorter than planned, which makes
        the rate that much higher."""
        return 1 / (1 - self.jitter / 2)

    def plan(self, nominal: float, heartbeat_timeout: float | None) -> Plan:
        """The interval to plan now for one member: ``nominal``, or longer if the running
        activities would otherwise exceed the planned share of the budget.

        Up to :data:`LATEST_SAFE_FRACTION` of ``heartbeat_timeout`` the interval is to be
        jittered (the caller shortens it by up to ``jitter`` at random, which this accounts
        for); beyond it, it is exact, and at most ``ceiling`` x the timeout. With a ceiling
        of :data:`LATEST_SAFE_FRACTION`, intervals stop at it, jittered, as they always did.
        """
        fair = self.members / (self.rate * PLANNED_SHARE)
        if fair * self._mean_factor <= nominal:
            return Plan(nominal, jitter=True)
        if heartbeat_timeout is None:
            return Plan(fair * self._mean_factor, jitter=True)
        safe = heartbeat_timeout * LATEST_SAFE_FRACTION
        if fair * self._mean_factor <= safe or self.ceiling <= LATEST_SAFE_FRACTION:
            return Plan(max(nominal, min(fair * self._mean_factor, safe)), jitter=True)
        return Plan(max(nominal, min(fair, heartbeat_timeout * self.ceiling)), jitter=False)

    def interval(self, nominal: float, heartbeat_timeout: float | None) -> float:
        """:meth:`plan`'s interval alone."""
        return self.plan(nominal, heartbeat_timeout).interval

    # -- admission -------------------------------------------------------------------------

    def fits(self, reserved: int = 0, margin: float = 0.0) -> bool:
        """Whether one more activity fits beside the members and ``reserved`` more (tasks
        that polls already open may bring), with ``margin`` of the admission rate to
        spare."""
        if not self.admission:
            return True
        if not self._joined_once:
            # No task seen yet, so nothing known of what the next one needs: one at a time
            # until the first has joined.
            return reserved == 0
        needed = self.needed_rate + (reserved + 1) * self.largest_need
        return needed <= self.admission_rate * (1 - margin)

    def has_room(self, now: float, reserved: int = 0) -> bool:
        """:meth:`fits`, logging once when admission closes and once when it reopens.

        At the edge, admission closes again as soon as a task that finished is replaced:
        a closing within :data:`ADMISSION_LOG_PERIOD` of the last reopening is counted but
        not logged (nor its reopening); the next line logged says how many there were.
        """
        room = self.fits(reserved)
        if room == self.admission_open or not self._joined_once:
            return room  # nothing to say (before the first task, it waits for that task)
        self.admission_open = room
        fields: dict[str, Any] = {
            "running_activities": self.members,
            "open_polls": reserved,
            "needed_per_second": round(self.needed_rate, 1),
            "admission_per_second": round(self.admission_rate, 1),
            "budget_per_second": self.rate,
            "ceiling": self.ceiling,
        }
        if not room:
            self.admission_closed_count += 1
            self._closed_at = now
            self._close_logged = now - self._reopened_at >= ADMISSION_LOG_PERIOD
            if self._close_logged:
                if self._closings_unlogged:
                    fields["closed_meanwhile"] = self._closings_unlogged
                    self._closings_unlogged = 0
                self._log.warning(
                    "heartbeat budget full; not polling for new tasks until running "
                    "activities finish (the tasks stay scheduled in SWF)",
                    **fields,
                )
            else:
                self._closings_unlogged += 1
        else:
            self._reopened_at = now
            if self._close_logged:
                self._log.info(
                    "heartbeat budget has room again; polling for new tasks",
                    closed_for=round(now - self._closed_at, 3),
                    **fields,
                )
        return room

    # -- limiting and ordering -------------------------------------------------------------

    def offer(self, deadline: float, item: Any) -> None:
        """Queue a call whose heartbeat deadline is ``deadline`` (``inf``: none)."""
        heapq.heappush(self._queue, (deadline, next(self._sequence), item))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def wait_time(self, now: float) -> float:
        """Seconds until the limiter lets a call through (0: now)."""
        paced = self._paced_until - PACING_TOLERANCE - now
        if len(self._sent) < self.capacity:
            return max(0.0, paced)
        return max(0.0, paced, self.window - (now - self._sent[0]))

    def _count(self, at: float) -> None:
        self._sent.append(at)
        self._paced_until = max(self._paced_until, at) + self.spacing

    def count_call(self, now: float) -> None:
        """Count a call the queue did not hand out (an abandoned call that may still
        arrive) as if sent at ``now``."""
        self._count(max(now, self._sent[-1]) if self._sent else now)

    def take(self, now: float, live: Callable[[Any], bool] = lambda item: True) -> Any:
        """The queued call with the nearest deadline, if the limiter lets one through now;
        calls that are no longer ``live`` are dropped without using the budget."""
        queue = self._queue
        while queue and not live(queue[0][2]):
            heapq.heappop(queue)
        if not queue or self.wait_time(now) > 0:
            return None
        self._count(now)
        return heapq.heappop(queue)[2]
