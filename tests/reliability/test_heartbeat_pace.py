"""Heartbeats under errors that retrying does not cure, and under a stalled request.

An error such as ``ExpiredTokenException`` on every heartbeat must not turn the worker into
a flood of calls (it would spend the account's 160/s for every running task) nor of log
lines; one request that hangs must not cost its task while the heartbeat timeout still has
room for a fresh attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from heartbeat_worker import Worker, activity
from heartbeat_worker.devserver import DevServer

from . import activities
from .decide import Decider, attributes, report
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

HEARTBEAT = "RecordActivityTaskHeartbeat"
HEARTBEAT_TIMEOUT = 2.0  # steady's registered default
INTERVAL = HEARTBEAT_TIMEOUT / 3
RETRIES = 2  # heartbeat_worker._heartbeater.RETRIES: attempts per beat = 1 + RETRIES
SLOW_LOOKUP_TIMEOUT = 6


@activity(name="pace-slow-lookup", heartbeat_timeout=SLOW_LOOKUP_TIMEOUT, start_to_close_timeout=60)
async def slow_lookup(seconds: float) -> float:
    await anyio.sleep(seconds)
    return seconds


async def test_an_error_on_every_heartbeat_keeps_the_regular_pace_and_warns_once(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    count = 5
    server.faults.add("error", operation=HEARTBEAT, code="ExpiredTokenException")
    execution = await decider.schedule("steady", [30.0] * count, task_list="expired")
    async with make_worker([activities.steady], "expired", max_concurrency=count) as worker:
        began = anyio.current_time()
        with anyio.fail_after(15):
            await worker.wait_handled(count)
        lasted = anyio.current_time() - began
        found = await decider.wait_closed(execution, count)
    calls = server.faults.calls[HEARTBEAT]
    kinds = found.kinds()
    # No beat is ever acknowledged, so each task is lost to its heartbeat timeout; what
    # matters is what that cost on the way. The worker gives up 0.5 s past the timeout;
    # beats come at most every 0.8 x interval (jitter), each with its bounded retries.
    assert kinds == Counter({"ActivityTaskTimedOut": count}), kinds
    for events in found.closings.values():
        assert attributes(events[0])["timeoutType"] == "HEARTBEAT"
    beats_per_task = (HEARTBEAT_TIMEOUT + 0.5) / (INTERVAL * 0.8) + 1
    allowed = count * (1 + RETRIES) * beats_per_task
    assert calls <= allowed, f"{calls} heartbeat calls for {count} tasks in {lasted:.1f} s"
    warnings = logs.events("heartbeat failed")
    # On a busy machine a call may also go unanswered past its bound and be abandoned:
    # that is another error, worth its own line; nothing else may appear.
    expired = [r for r in warnings if "ExpiredTokenException" in r["error"]]
    others = [r["error"] for r in warnings if r not in expired]
    assert expired, "the failure was not logged"
    assert all("call abandoned" in error for error in others), others
    assert len(expired) <= 2, f"{len(expired)} identical warnings within {lasted:.1f} s"
    report(
        f"ExpiredTokenException on every heartbeat, {count} activities",
        {
            "heartbeat calls": calls,
            "allowed (regular pace plus bounded retries)": int(allowed),
            "'heartbeat failed' lines": len(warnings),
            "tasks handled within": f"{lasted:.2f} s",
        },
    )


async def test_one_stalled_heartbeat_call_does_not_cost_the_task(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker]
) -> None:
    execution = await decider.schedule("steady", [3 * HEARTBEAT_TIMEOUT], task_list="stall")
    async with make_worker([activities.steady], "stall", max_concurrency=1) as worker:
        # The next heartbeat request waits three heartbeat timeouts for its answer.
        stall = server.faults.add("latency", operation=HEARTBEAT, latency=3 * HEARTBEAT_TIMEOUT)
        with anyio.fail_after(5):
            while server.faults.total(kind="latency", operation=HEARTBEAT) == 0:  # noqa: ASYNC110 (a counter of the server's, no event to wait on)
                await anyio.sleep(0.005)
        server.faults.remove(stall)
        stalled = server.faults.total(kind="latency", operation=HEARTBEAT)
        found = await decider.wait_closed(execution, 1, deadline=20)
    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskCompleted": 1}), kinds
    assert worker.outcomes == {"completed": 1}
    report(
        f"one heartbeat request stalled for {3 * HEARTBEAT_TIMEOUT:g} s (heartbeat timeout 2 s)",
        {
            "requests stalled": stalled,
            "heartbeat calls": server.faults.calls[HEARTBEAT],
            "outcome": dict(kinds),
        },
    )


async def test_time_before_the_heartbeater_starts_counts_against_the_heartbeat_timeout(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker]
) -> None:
    # Whatever delays the heartbeater's start (here the timeout look-up; under CPU
    # contention, everything the loop has to do first) already runs on SWF's heartbeat
    # clock, which started when the poll brought the task. The first beat must be planned
    # from then: planned from the heartbeater's start instead, up to half a second later,
    # it comes after SWF's 6 s timeout.
    lookup = SLOW_LOOKUP_TIMEOUT - 0.45
    async with make_worker([slow_lookup], "lookup", max_concurrency=1) as worker:
        server.faults.add("latency", operation="DescribeActivityType", latency=lookup)
        execution = await decider.schedule("pace-slow-lookup", [1.0], task_list="lookup")
        found = await decider.wait_closed(execution, 1, deadline=30)
    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskCompleted": 1}), kinds
    assert worker.outcomes == {"completed": 1}
