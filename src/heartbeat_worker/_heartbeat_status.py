"""What the heartbeats are doing, as a read-out for people, dashboards and benchmarks.

:class:`HeartbeatStatus` is a frozen snapshot that :attr:`Worker.heartbeat_status
<heartbeat_worker.Worker.heartbeat_status>` builds on request: nothing is computed while
nobody asks. The one thing recorded as it happens is how late each call left against its
plan, in a :class:`LatenessHistogram` of fixed size (a count per bucket, the buckets 10%
apart from 1 ms to about 20 minutes), so that recording costs an index computation and an
increment, however long the worker runs, and two snapshots taken a while apart give the
percentiles of what happened in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["HeartbeatStatus", "LatenessHistogram", "LatenessSummary", "summarize"]

_SMALLEST = 0.001
"""Seconds: lateness below this counts as on time (bucket 0)."""

_GROWTH = 1.1
"""Each bucket's upper edge is this much above the previous one: percentiles are read to
within 10%."""

_BUCKETS = 150
"""1 ms x 1.1^148 is about 1,300 s: later than any heartbeat can usefully be."""

_LOG_GROWTH = math.log(_GROWTH)


def _edge(index: int) -> float:
    """The upper edge of bucket ``index`` (seconds)."""
    return 0.0 if index == 0 else _SMALLEST * _GROWTH ** (index - 1)


class LatenessHistogram:
    """Counts of lateness (seconds) in buckets 10% apart; :meth:`snapshot` to compare."""

    __slots__ = ("_counts", "largest")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.largest = 0.0
        """The largest lateness recorded, exactly."""

    def record(self, seconds: float) -> None:
        if seconds < _SMALLEST:
            self._counts[0] += 1
            return
        self.largest = max(self.largest, seconds)
        index = 1 + math.ceil(math.log(seconds / _SMALLEST) / _LOG_GROWTH)
        self._counts[min(index, _BUCKETS - 1)] += 1

    def snapshot(self) -> tuple[int, ...]:
        """The counts so far, for :meth:`summary` (``since``) or :func:`summarize`."""
        return tuple(self._counts)

    def summary(self, since: tuple[int, ...] | None = None) -> LatenessSummary:
        """p50, p99 and the maximum of what was recorded (since the snapshot ``since``)."""
        counts = self.snapshot()
        if since is not None:
            counts = tuple(now - then for now, then in zip(counts, since, strict=True))
        summary = summarize(counts)
        if since is None and summary.count:
            # The exact maximum is known for the whole life, not for a window.
            return LatenessSummary(summary.count, summary.p50, summary.p99, self.largest)
        return summary


def summarize(counts: tuple[int, ...] | list[int]) -> LatenessSummary:
    """Percentiles of bucket counts: each the upper edge of the bucket it falls in."""
    total = sum(counts)
    if not total:
        return LatenessSummary(0, 0.0, 0.0, 0.0)

    def percentile(fraction: float) -> float:
        rank = max(1, math.ceil(fraction * total))
        seen = 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank:
                return _edge(index)
        return _edge(len(counts) - 1)  # pragma: no cover (rank <= total)

    largest = max(index for index, count in enumerate(counts) if count)
    return LatenessSummary(total, percentile(0.5), percentile(0.99), _edge(largest))


@dataclass(frozen=True, slots=True)
class LatenessSummary:
    """How late heartbeat calls left against their plan, in seconds (0: on time)."""

    count: int
    p50: float
    p99: float
    max: float


@dataclass(frozen=True, slots=True)
class HeartbeatStatus:
    """A snapshot of the worker's heartbeats (see ``Worker.heartbeat_status``)."""

    running: int
    """Activities being kept alive."""
    calls: int
    """Heartbeat calls started since the worker started (retries included)."""
    failed: int
    """Of those, the calls that failed (and were retried, or gave the task up)."""
    in_flight: int
    """Calls waiting for their answer now."""
    waiting: int
    """Calls that are due and wait for a runner or for the budget."""
    lateness: LatenessSummary
    """How late calls left against their plan, since the worker started."""
    lateness_counts: tuple[int, ...]
    """The histogram behind :attr:`lateness`: subtract an earlier snapshot and pass the
    difference to :func:`summarize` for a window's figures."""
    budget_per_second: float | None
    """``max_heartbeats_per_second``, or None without a budget."""
    needed_per_second: float
    """Calls per second that keep every running activity alive at the budget's ceiling
    (0 without a budget)."""
    admission_per_second: float | None
    """What the running activities may need at most before the worker stops polling
    (None without a budget, or with admission control off)."""
    admitting: bool
    """Whether the worker would poll for one more task now, as far as heartbeats go."""
    admission_closures: int
    """How many times admission closed (each logged once, with its reopening)."""
